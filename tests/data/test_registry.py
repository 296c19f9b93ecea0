"""`flux download` at dataset level: verified URL files, the user's directory linked in, a ready marker."""

import hashlib
import json

import pytest

from flux.data.registry import fetch_hint, run
from flux.data.spec import dataset_spec_from_entry
from flux.errors import ConfigError, DatasetMissingError


def entry(files=(), local=None):
    source = {}
    if files:
        source["files"] = list(files)
    if local:
        source["local"] = local
    return {
        "title": "t",
        "modality": "video",
        "task": "classification",
        "annotations": {"format": "kinetics_csv", "files": {"val": "annotations/val.csv"}},
        "source": source,
    }


@pytest.fixture
def published(tmp_path):
    annotation = tmp_path / "publisher" / "val.csv"
    annotation.parent.mkdir()
    annotation.write_text("label,youtube_id,time_start,time_end,split\njumping,abc,0,10,val\n")
    videos = tmp_path / "my_videos"
    videos.mkdir()
    remote = {
        "url": annotation.as_uri(),
        "path": "annotations/val.csv",
        "sha256": hashlib.sha256(annotation.read_bytes()).hexdigest(),
    }
    return remote, videos


def job(tmp_path, dataset_entry, local_path=None):
    return {
        "dataset": "toy",
        "entry": dataset_entry,
        "dataset_dir": str(tmp_path / "data" / "raw" / "toy"),
        "local_path": str(local_path) if local_path else None,
        "ready": str(tmp_path / "data" / "ready" / "toy.json"),
    }


def test_download_links_and_marks_ready(tmp_path, published):
    remote, videos = published
    spec = job(tmp_path, entry([remote], {"links": "media", "hint": "a folder of clips"}), videos)
    run(spec)
    root = tmp_path / "data" / "raw" / "toy"
    assert (root / "annotations" / "val.csv").read_text().startswith("label,")
    assert (root / "media").is_symlink() and (root / "media").resolve() == videos.resolve()
    marker = json.loads((tmp_path / "data" / "ready" / "toy.json").read_text())
    assert marker["kind"] == "fetch" and marker["files"][0]["verified"] and marker["files"][0]["sha256"] == remote["sha256"]
    assert marker["local"]["to"] == str(videos.resolve())
    run(spec)  # idempotent
    elsewhere = tmp_path / "other_videos"
    elsewhere.mkdir()
    run({**spec, "local_path": str(elsewhere)})  # relinked to the new directory
    assert (root / "media").resolve() == elsewhere.resolve()


def test_the_marker_records_the_annotations_as_fetched_and_how_files_are_known_whole(tmp_path, published):
    """The ready marker says how each file is known to be whole, the index report lists those nothing showed whole,
    and an annotation file edited after the fetch is noticed (the index rule's params: annotations_since_fetch)."""
    from flux.data.index import unverified_downloads
    from flux.data.registry import AS_FETCHED, annotations_since_fetch

    remote, videos = published
    unchecked = {**remote, "sha256": None}
    spec = job(tmp_path, entry([unchecked], {"links": "media", "hint": "a folder of clips"}), videos)
    run(spec)
    marker_path = tmp_path / "data" / "ready" / "toy.json"
    marker = json.loads(marker_path.read_text())
    assert marker["files"][0]["completeness"] == "length"  # a local mirror's size is known
    assert marker["annotations"]["val"]["sha256"] == remote["sha256"]
    assert unverified_downloads(marker_path) == []
    marker["files"][0]["completeness"] = "unverifiable"
    marker_path.write_text(json.dumps(marker))
    assert unverified_downloads(marker_path) == [{"path": "annotations/val.csv", "completeness": "unverifiable", "size": 64}]
    dataset = dataset_spec_from_entry("toy", spec["entry"])
    root = tmp_path / "data" / "raw" / "toy"
    assert annotations_since_fetch(dataset, root, marker_path) == AS_FETCHED
    (root / "annotations" / "val.csv").write_text("label,youtube_id,time_start,time_end,split\nrunning,abc,0,10,val\n")
    edited = annotations_since_fetch(dataset, root, marker_path)
    assert edited != AS_FETCHED and edited == annotations_since_fetch(dataset, root, marker_path)
    assert annotations_since_fetch(dataset, root, tmp_path / "no_marker.json") == AS_FETCHED


def test_a_real_directory_is_never_replaced_by_a_link(tmp_path, published):
    remote, videos = published
    (tmp_path / "data" / "raw" / "toy" / "media").mkdir(parents=True)
    with pytest.raises(DatasetMissingError, match="exists and is not a link"):
        run(job(tmp_path, entry([remote], {"links": "media", "hint": "h"}), videos))


def test_missing_local_directory_says_what_to_set(tmp_path, published):
    remote, _ = published
    with pytest.raises(DatasetMissingError, match=r"local_paths.toy.*a folder of clips.*dvc pull"):
        run(job(tmp_path, entry([remote], {"links": "media", "hint": "a folder of clips"})))
    assert not (tmp_path / "data" / "ready" / "toy.json").exists()


def test_restored_directory_needs_no_local_path(tmp_path, published):
    remote, videos = published
    restored = tmp_path / "data" / "raw" / "toy" / "media"
    restored.mkdir(parents=True)  # e.g. by `dvc pull`
    run(job(tmp_path, entry([remote], {"links": "media", "hint": "h"})))
    assert json.loads((tmp_path / "data" / "ready" / "toy.json").read_text())["local"]["link"] == str(restored)


def test_whole_directory_link_cannot_also_download(tmp_path, published):
    remote, videos = published
    with pytest.raises(ConfigError, match="cannot also download"):
        run(job(tmp_path, entry([remote], {"links": ".", "hint": "h"}), videos))


def test_fetch_hint_names_the_verb_of_the_source():
    synthetic = {"synthetic": {"layout": "kinetics", "splits": {"train": 1}}}
    assert "flux synth toy" in fetch_hint(dataset_spec_from_entry("toy", {**entry(), "source": synthetic}))
    derived = {"derived": {"builder": "kinetics710", "from": {"k400": "a"}}}
    assert "flux kinetics710 toy" in fetch_hint(dataset_spec_from_entry("toy", {**entry(), "source": derived}))
    assert "flux download toy" in fetch_hint(dataset_spec_from_entry("toy", entry(local={"links": ".", "hint": "h"})))
