"""Kinetics-710 merge: hand-computed counts on a small fixture, and the real published class maps."""

import json

import pytest

from flux.data.annotations.base import AnnotationRecord
from flux.data.annotations.kinetics import clip_id, read_kinetics_csv
from flux.data.kinetics710 import KineticsRelease, build_kinetics710, write_kinetics710
from flux.errors import AnnotationError
from tests.paths import REAL_FIXTURES as REAL

# The 15 class names of K400/K600/K700 that the published K710 map spells differently.
REAL_RENAMES = {
    "balloon blowing": "inflating balloons",
    "changing wheel": "changing wheel (not on bike)",
    "cooking sausages": "cooking sausages (not on barbeque)",
    "drinking": "sipping cup",
    "dying hair": "dyeing hair",
    "garbage collecting": "person collecting garbage",
    "hugging": "hugging (not baby)",
    "making bed": "making the bed",
    "opening bottle": "opening bottle (not wine)",
    "picking fruit": "picking apples",
    "skiing (not slalom or crosscountry)": "skiing mono",
    "sniffing": "smelling feet",
    "tying tie": "tying necktie",
    "passing american football (not in game)": "passing American football (not in game)",
    "throwing ball (not baseball or American football)": "throwing ball",
}


def clip(video: str, split: str, label: str | None, start: int = 0) -> AnnotationRecord:
    sample = clip_id(video, start, start + 10)
    return AnnotationRecord(sample, split, f"{sample}.mp4", label_name=label, source_start_sec=start, source_end_sec=start + 10)


def small_releases() -> list[KineticsRelease]:
    k400 = KineticsRelease(
        "k400",
        ["jumping", "running"],
        [
            clip("a", "train", "jumping"),
            clip("a", "train", "jumping", start=30),  # same video, second segment: a duplicate id
            clip("b", "train", "running"),
            clip("c_x", "train", "running"),  # an id with an underscore
            clip("d", "val", "jumping"),
        ],
    )
    k600 = KineticsRelease(
        "k600",
        ["jumping", "running fast", "sitting"],
        [
            clip("b", "train", "running fast"),  # duplicate across releases: K400's row wins
            clip("e", "train", "sitting"),
            clip("f", "train", "sitting"),  # in K700 val: leak
            clip("g", "val", "jumping"),
        ],
    )
    k700 = KineticsRelease(
        "k700",
        ["jumping", "running", "sitting", "waving"],
        [
            clip("h", "train", "waving"),
            clip("d", "train", "jumping"),  # in K400 val: leak
            clip("f", "val", "sitting"),
            clip("i", "test", None),
            clip("g", "val", "jumping"),  # already in K600 val
        ],
    )
    return [k400, k600, k700]


def test_small_merge_counts_by_hand():
    result = build_kinetics710(small_releases(), renames={"running fast": "running"})
    # union of train ids: a, b, c_x, e, f, h, d = 7; dropped for overlap: f (k700/val), d (k400/val)
    assert result.report["train_union_unique_ids"] == 7
    assert result.report["train_ids_dropped_for_overlap"] == 2
    assert result.report["dropped_overlap_by_split"] == {"k400/val": 1, "k700/val": 1}
    # duplicate rows: a's second segment, b again in K600
    assert result.report["train_duplicate_rows_removed"] == 2
    assert [r.sample_id for r in result.train] == [clip_id(v, 0, 10) for v in ("a", "b", "c_x", "e", "h")]
    assert [r.source for r in result.train] == ["k400", "k400", "k400", "k600", "k700"]
    assert [r.sample_id.split("_")[0] for r in result.val] == ["d", "g", "f"]
    # K400 classes first in K400 order, then the rest alphabetically
    assert result.class_names == ["jumping", "running", "sitting", "waving"]
    assert result.head_maps == {"k400": [0, 1], "k600": [0, 1, 2], "k700": [0, 1, 2, 3]}
    assert {r.label_name for r in result.train} <= set(result.class_names)


def test_rename_errors_are_explicit():
    with pytest.raises(AnnotationError, match="no release has"):
        build_kinetics710(small_releases(), renames={"swimming": "diving"})
    with pytest.raises(AnnotationError, match="does not match the merged classes"):
        build_kinetics710(small_releases(), reference_class_names=["jumping", "running", "sitting"])


def test_written_files_round_trip(tmp_path):
    result = build_kinetics710(small_releases(), renames={"running fast": "running"})
    outputs = write_kinetics710(result, tmp_path, {"train": "a/train.csv", "val": "a/val.csv", "labels": "a/labels.txt"})
    train = read_kinetics_csv(outputs["train"], "train")
    assert [r.sample_id for r in train] == [r.sample_id for r in result.train]
    assert [r.source for r in train] == [r.source for r in result.train]
    assert outputs["labels"].read_text().splitlines() == result.class_names
    assert json.loads(outputs["head_maps"].read_text()) == result.head_maps
    assert not list(tmp_path.rglob(".*.tmp"))
    assert outputs["head_maps"].parent == tmp_path / "a"


def real_lines(relative: str) -> list[str]:
    return (REAL / relative).read_text().splitlines()


def real_records(relative: str, split: str) -> list[AnnotationRecord]:
    return read_kinetics_csv(REAL / relative, split)


@pytest.fixture(scope="module")
def real_releases(real_fixtures) -> list[KineticsRelease]:
    k400 = real_records("kinetics400/kinetics-400_val.csv", "val") + real_records("kinetics400/kinetics-400_test.csv", "test")
    k600 = (
        real_records("kinetics600/kinetics-600_train.csv", "train")
        + real_records("kinetics600/kinetics-600_val.csv", "val")
        + real_records("kinetics600/kinetics-600_test.csv", "test")
        + real_records("kinetics600/kinetics_600_holdout_test.csv", "test")
    )
    k700 = real_records("kinetics700/validate.csv", "val") + real_records("kinetics700/test.csv", "test")
    # class lists as each release's CSVs define them (alphabetical), as the official maps are
    names = lambda records: sorted({r.label_name for r in records if r.label_name})  # noqa: E731
    assert names(k400) == real_lines("kinetics400/mmaction2/label_map_k400.txt")
    assert names(k600) == real_lines("kinetics600/mmaction2/label_map_k600.txt")
    assert names(k700) == real_lines("kinetics700/mmaction2/label_map_k700.txt")
    return [
        KineticsRelease("kinetics400", names(k400), k400),
        KineticsRelease("kinetics600", names(k600), k600),
        KineticsRelease("kinetics700", names(k700), k700),
    ]


def test_real_class_lists_give_the_published_710_map(real_releases):
    published = real_lines("kinetics710/mmaction2/label_map_k710.txt")
    result = build_kinetics710(real_releases, REAL_RENAMES, reference_class_names=published)
    assert result.class_names == published
    for name, release in zip(("k400", "k600", "k700"), real_releases):
        expected = json.loads((REAL / f"kinetics710/mmaction2/map_{name}.json").read_text())
        assert result.head_maps[release.dataset] == expected, name
    # without the reference, the derived map has the same classes and the same K400 block
    derived = build_kinetics710(real_releases, REAL_RENAMES)
    assert len(derived.class_names) == 710
    assert set(derived.class_names) == set(published)
    assert derived.class_names[:400] == published[:400]


def test_real_union_has_725_raw_names_and_needs_the_renames(real_releases):
    raw = set().union(*(set(r.class_names) for r in real_releases))
    assert len(raw) == 725
    with pytest.raises(AnnotationError, match="does not match"):
        build_kinetics710(real_releases, reference_class_names=real_lines("kinetics710/mmaction2/label_map_k710.txt"))


def test_real_train_overlap_with_eval_splits(real_releases):
    result = build_kinetics710(real_releases, REAL_RENAMES)
    # Only the K600 train CSV is published in the fixtures: 392,622 rows, 391,782 unique ids, of which
    # 942 appear in a val/test split (fixtures README, "youtube_ids (train vs. val/test)").
    assert result.report["train_union_unique_ids"] == 391_782
    assert result.report["train_ids_dropped_for_overlap"] == 942
    assert result.report["train_duplicate_rows_removed"] == 392_622 - 391_782
    assert result.report["train_clips"] == 391_782 - 942
    assert result.report["missing_train_splits"] == ["kinetics400", "kinetics700"]
    assert result.report["dropped_overlap_by_split"]["kinetics600/val"] == 142
    assert result.report["dropped_overlap_by_split"]["kinetics700/val"] == 403
