import pytest

from tests import slurm
from tests.media import index_dataset, write_clip
from tests.paths import require_real_fixtures


@pytest.fixture(scope="session")
def real_fixtures():
    return require_real_fixtures()


@pytest.fixture(scope="session", autouse=True)
def slurm_chain(request, tmp_path_factory):
    """The SLURM tests' micro chain (tests/slurm.py), started with the session when one of them is selected,
    so that the other tests run while it waits on SLURM; None when none is selected or SLURM cannot run."""
    if slurm.unavailable() or not any(item.path.name == "test_slurm.py" for item in request.session.items):
        yield None
        return
    from tests.test_workflow import workspace

    with slurm.running(tmp_path_factory.mktemp("slurm")):
        chain = slurm.MicroChain(workspace(tmp_path_factory.mktemp("slurm_micro")))
        try:
            yield chain
        finally:
            chain.stop()


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory):
    """A toy Kinetics-format dataset over real mp4 files: 4 train and 2 val clips of two motions, plus an empty
    (undecodable) file in each split; (data directory, manifest)."""
    data = tmp_path_factory.mktemp("data")
    media = data / "raw" / "toy" / "media"
    rows = ["label,youtube_id,time_start,time_end,split"]
    for position, label in enumerate(["moving left", "moving right"] * 3):
        video = f"vid{position:08d}"
        write_clip(media / f"{video}_000000_000010.mp4", motion=label, num_frames=12 + 4 * position, seed=position)
        rows.append(f"{label},{video},0,10,{'train' if position < 4 else 'val'}")
    for broken in ("vidbroken0", "vidbroken1"):
        (media / f"{broken}_000000_000010.mp4").write_bytes(b"")
    rows += ["moving left,vidbroken0,0,10,train", "moving right,vidbroken1,0,10,val"]
    entry = {
        "title": "toy",
        "modality": "video",
        "task": "classification",
        "annotations": {"format": "kinetics_csv", "files": {"train": "a/train.csv", "val": "a/val.csv"}},
        "source": {"local": {"links": "media", "hint": "-"}},
    }
    header, body = rows[0], rows[1:]
    manifest = index_dataset(
        data,
        "toy",
        entry,
        {
            "a/train.csv": "\n".join([header] + [r for r in body if r.endswith("train")]) + "\n",
            "a/val.csv": "\n".join([header] + [r for r in body if r.endswith("val")]) + "\n",
        },
    )
    return data, manifest
