"""Datasets over real manifests of real mp4 files: flexible batches, bounded retries, complete eval views."""

import json
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from flux.data.datasets import FrameSampling, ImageText, VideoClassification, VideoText, collate_clips
from flux.data.sampling import FlexibleBatchSampler, FlexibleSpec
from flux.data.transforms import TrainTransform
from flux.errors import FluxError
from tests.media import index_dataset, write_clip, write_image


def test_flexible_batches_share_their_shape(kinetics):
    data, manifest = kinetics
    dataset = VideoClassification(manifest, data, "train", train=True, seed=1)
    assert len(dataset) == 4 and dataset.num_classes == 2  # the empty file is left out of training
    spec = FlexibleSpec.from_ranges((2, 6, 2), (28, 56, 14), (8, 32))
    sampler = FlexibleBatchSampler(len(dataset), 2, spec, seed=0)
    for workers in (0, 2):
        for batch in DataLoader(dataset, batch_sampler=sampler, num_workers=workers):
            _, channels, frames, height, width = batch["video"].shape
            assert channels == 3 and height == width
            assert spec.token_min <= spec.tokens(frames, height) <= spec.token_max
            assert batch["label"].tolist() == [int(dataset.rows.at[i, "label_id"]) for i in batch["index"].tolist()]


def test_training_item_is_deterministic_per_seed_and_epoch(kinetics):
    data, manifest = kinetics
    dataset = VideoClassification(manifest, data, "train", train=True, seed=3, frames=4, resolution=28)
    first = dataset[(1, 4, 28)]["video"]
    assert torch.equal(first, dataset[(1, 4, 28)]["video"])
    dataset.set_epoch(1)
    assert not torch.equal(first, dataset[(1, 4, 28)]["video"])
    assert dataset[2]["video"].shape == (3, 4, 28, 28)


def test_decode_failure_in_training_is_replaced_a_bounded_number_of_times(kinetics, tmp_path):
    source, _ = kinetics
    data = tmp_path / "data"
    shutil.copytree(source, data)  # files get broken below: work on a copy
    dataset = VideoClassification(
        data / "manifests" / "toy.parquet", data, "train", train=True, frames=2, resolution=28, max_retries=3
    )
    dataset._path(0).write_bytes(b"")  # broken after indexing
    item = dataset[0]
    assert item["index"] != 0 and item["decode_failures"] == 1 and dataset.failures.counts == {"empty": 1}
    assert json.loads(item["decode_failed"]) == [[dataset.rows.at[0, "media_path"], "empty"]]
    # with DataLoader workers (fresh copies of a dataset that has not met the file yet) the failure reaches the
    # trainer through the items
    fresh = VideoClassification(data / "manifests" / "toy.parquet", data, "train", train=True, frames=2, resolution=28)
    batches = list(DataLoader(fresh, batch_size=2, num_workers=2))
    assert sum(int(batch["decode_failures"].sum()) for batch in batches) == 1
    reported = [json.loads(text) for batch in batches for text in batch["decode_failed"]]
    assert [failure for failures in reported for failure in failures] == [[fresh.rows.at[0, "media_path"], "empty"]]
    for position in range(len(dataset)):
        dataset._path(position).write_bytes(b"")
    with pytest.raises(FluxError, match=f"every one of its {len(dataset)} items failed to decode at run time"):
        dataset[0]


def test_a_file_that_failed_is_never_drawn_again(kinetics, tmp_path):
    """Once a file fails at run time it is out: neither the sampler's draw nor a replacement decodes it again
    (before, a replacement could draw the file that had just failed, and a small dataset hit it again and again);
    the trainer hands known failures to a new epoch's datasets by media path (`exclude`)."""
    source, _ = kinetics
    data = tmp_path / "data"
    shutil.copytree(source, data)
    manifest = data / "manifests" / "toy.parquet"
    dataset = VideoClassification(manifest, data, "train", train=True, frames=2, resolution=28, max_retries=0)
    broken = dataset.rows.at[0, "media_path"]
    dataset._path(0).write_bytes(b"")
    with pytest.raises(FluxError, match="1 items in a row failed"):  # no retry allowed: the failure surfaces
        dataset[0]
    for epoch in range(5):
        dataset.set_epoch(epoch)
        items = [dataset[position] for position in range(len(dataset))]
        assert all(item["index"] != 0 and item["decode_failures"] == 0 for item in items)
    assert dataset.failures.counts == {"empty": 1}
    resumed = VideoClassification(manifest, data, "train", train=True, frames=2, resolution=28, max_retries=0)
    resumed.exclude({broken})
    assert resumed[0]["index"] != 0 and resumed.failures.counts == {}


def test_eval_keeps_undecodable_videos_as_invalid_views(kinetics):
    data, manifest = kinetics
    dataset = VideoClassification(manifest, data, "val", train=False, frames=4, resolution=32, num_clips=2, num_crops=3)
    assert len(dataset) == 3 * 2 * 3  # 2 good + 1 empty video, 6 views each
    items = [dataset[k] for k in range(len(dataset))]
    assert {(i["index"], i["clip"], i["crop"]) for i in items} == {
        (v, c, s) for v in range(3) for c in range(2) for s in range(3)
    }
    broken = [i for i in items if not i["valid"]]
    assert len(broken) == 6 and {i["error_kind"] for i in broken} == {"empty"}
    assert all(torch.count_nonzero(i["video"]) == 0 and i["video"].shape == (3, 4, 32, 32) for i in broken)
    good = [i for i in items if i["valid"]]
    assert all(i["video"].shape == (3, 4, 32, 32) for i in good)


def test_the_crops_of_a_test_clip_share_one_decode(kinetics, monkeypatch):
    """Views are clip-major (view = clip x crops + crop): a video's crops of one clip are decoded once, not once
    per crop, and give exactly the views of a decode each."""
    import flux.data.datasets as datasets_module

    data, manifest = kinetics
    options = {"train": False, "frames": 4, "resolution": 32, "num_clips": 2, "num_crops": 3}
    separately = [VideoClassification(manifest, data, "val", **options)[key] for key in range(18)]
    decodes = []
    original = datasets_module.read_video
    monkeypatch.setattr(datasets_module, "read_video", lambda path, *a, **k: decodes.append(path) or original(path, *a, **k))
    dataset = VideoClassification(manifest, data, "val", **options)
    together = [dataset[key] for key in range(18)]
    assert len(decodes) == 2 * 2  # 2 decodable videos x 2 clips (the third video is indexed undecodable)
    assert all(torch.equal(a["video"], b["video"]) and a["valid"] == b["valid"] for a, b in zip(separately, together))


def test_eval_counts_indexed_undecodable_files_without_opening_them(kinetics, monkeypatch):
    """A file indexed as undecodable (e.g. `crash`: it killed the decoder process) must not be decoded again in
    the evaluation process: it is counted from the manifest."""
    import flux.data.datasets as datasets_module

    data, manifest = kinetics
    dataset = VideoClassification(manifest, data, "val", train=False, frames=4, resolution=32)
    broken = int(dataset.rows.index[~dataset.rows["decodable"]][0])
    dataset.rows.loc[broken, ["error_kind", "error_detail"]] = ["crash", "decoder process died"]
    broken_path = str(dataset._path(broken))
    original = datasets_module.read_video

    def guarded(path, *args, **kwargs):
        assert str(path) != broken_path, "an indexed-undecodable file was opened"
        return original(path, *args, **kwargs)

    monkeypatch.setattr(datasets_module, "read_video", guarded)
    items = [dataset[k] for k in range(len(dataset))]
    assert [i["error_kind"] for i in items if not i["valid"]] == ["crash"]
    assert dataset.failures.as_dict()["counts"] == {"crash": 1} and sum(i["valid"] for i in items) == 2


def test_direction_sensitive_dataset_refuses_flip(kinetics, tmp_path):
    data, manifest = kinetics
    from flux.data.index import read_manifest, write_manifest

    frame, info = read_manifest(manifest)
    no_flip = tmp_path / "noflip.parquet"
    write_manifest(frame, type(info)(**{**info.__dict__, "allow_flip": False}), no_flip)
    with pytest.raises(FluxError, match="allow_flip"):
        VideoClassification(no_flip, data, "train", train=True, train_transform=TrainTransform(flip=True))
    assert not VideoClassification(no_flip, data, "train", train=True).train_transform.flip  # the default follows the dataset


def test_video_text_paragraphs_and_images(tmp_path):
    data = tmp_path / "data"
    media = data / "raw" / "vt" / "media"
    write_clip(media / "a.mp4", num_frames=10)
    write_clip(media / "b.mp4", motion="growing", num_frames=10)
    entry = {
        "title": "vt",
        "modality": "video",
        "task": "video_text",
        "paragraph": True,
        "annotations": {"format": "vindlu_json", "files": {"test": "test.json"}},
        "source": {"local": {"links": "media", "hint": "-"}},
    }
    annotations = [{"video": "a.mp4", "caption": ["it appears.", "then it moves."]}, {"video": "b.mp4", "caption": "it grows."}]
    manifest = index_dataset(data, "vt", entry, {"test.json": json.dumps(annotations)})
    dataset = VideoText(manifest, data, "test", train=False, frames=4, resolution=28)
    assert dataset.texts(0) == ["it appears. then it moves."] and dataset.texts(1) == ["it grows."]
    assert dataset[0]["video"].shape == (3, 4, 28, 28) and dataset[0]["valid"]
    train = VideoText(manifest, data, "test", train=True, frames=2, resolution=28)
    assert train[(0, 2, 28)]["text"] == "it appears. then it moves."

    image_media = data / "raw" / "im" / "media"
    write_image(image_media / "x.jpg")
    image_entry = {
        **entry,
        "modality": "image",
        "task": "image_text",
        "paragraph": False,
        "annotations": {"format": "vindlu_json", "files": {"train": "train.json"}},
    }
    image_manifest = index_dataset(
        data, "im", image_entry, {"train.json": json.dumps([{"image": "x.jpg", "caption": ["one", "two"]}])}
    )
    images = ImageText(image_manifest, data, "train", train=True, resolution=28)
    item = images[(0, 1, 28)]
    assert item["video"].shape == (3, 1, 28, 28) and item["text"] in ("one", "two")
    with pytest.raises(FluxError, match="holds videos"):
        ImageText(manifest, data, "test", train=False)


def test_frame_sampling_schemes():
    rng = np.random.default_rng(0)
    assert FrameSampling("tsn").test(100, 25.0, 8, 0, 1) == [6, 18, 31, 43, 56, 68, 80, 93]
    assert len(FrameSampling("dense", stride=2).train(100, 25.0, 8, rng)) == 8
    assert len(FrameSampling("sparse", clips=2, clip_seconds=1.0).train(100, 25.0, 8, rng)) == 8
    with pytest.raises(ValueError):
        FrameSampling("sparse", clips=3).train(100, 25.0, 8, rng)
    with pytest.raises(ValueError):
        FrameSampling("uniform")


def test_repeated_augmentation_decodes_once_and_lays_clips_side_by_side(kinetics, monkeypatch):
    """`repeats` (the official --num_sample): one decode, independently augmented clips, flattened per video."""
    data, manifest = kinetics
    transform = TrainTransform(flip=True, erase_probability=0.5)
    dataset = VideoClassification(manifest, data, "train", train=True, seed=3, repeats=2, train_transform=transform)
    decodes = []
    original = dataset._decode
    monkeypatch.setattr(dataset, "_decode", lambda *args: decodes.append(args) or original(*args))
    item = dataset[(1, 4, 28)]
    assert len(decodes) == 1 and item["video"].shape == (2, 3, 4, 28, 28)
    assert not torch.equal(item["video"][0], item["video"][1])  # two draws of crop, flip and erasing
    batch = collate_clips([dataset[(position, 4, 28)] for position in (0, 1, 2)])
    assert batch["video"].shape == (6, 3, 4, 28, 28)
    labels = [int(dataset.rows.at[position, "label_id"]) for position in (0, 1, 2)]
    assert batch["label"].tolist() == [label for label in labels for _ in range(2)]
    assert batch["index"].tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(batch["video"][2], item["video"][0]) and torch.equal(batch["video"][3], item["video"][1])
    single = collate_clips([VideoClassification(manifest, data, "train", train=True, seed=3)[(1, 4, 28)]])
    assert single["video"].shape == (1, 3, 4, 28, 28)  # one clip per video: batches as before
    with pytest.raises(FluxError, match="repeats must be at least 1"):
        VideoClassification(manifest, data, "train", train=True, repeats=0)
