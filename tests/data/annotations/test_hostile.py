"""Hostile annotation files: each gives `file:line: problem; fix`, never a bare csv / float / int / JSON traceback."""

import json
from pathlib import Path

import pytest

from flux.data.annotations import AnnotationFiles, parse
from flux.errors import AnnotationError

HEADER = "label,youtube_id,time_start,time_end,split\n"


def kinetics_rows(count: int, start: int = 0) -> str:
    return "".join(f"abseiling,{index:011d},{index},{index + 10},val\n" for index in range(start, start + count))


def parse_kinetics(root: Path, text: str):
    (root / "val.csv").write_text(text, encoding="utf-8")
    return parse("kinetics_csv", AnnotationFiles(root, {"val": "val.csv"}))


@pytest.mark.parametrize("rows_after", [5, 3000])  # a small file, and one long enough to pass csv's field limit
def test_a_stray_quote_is_reported_at_its_own_line(tmp_path, rows_after):
    text = HEADER + kinetics_rows(3) + '"abseiling,xxxxxxxxxxx,0,10,val\n' + kinetics_rows(rows_after, start=10)
    with pytest.raises(AnnotationError, match=r"val\.csv:5: .*stray quote"):
        parse_kinetics(tmp_path, text)


@pytest.mark.parametrize(("value", "shown"), [("1e400", "'1e400'"), ("nan", "'nan'"), ("١٠", "'١٠'")])
def test_a_time_that_is_no_finite_number_is_named(tmp_path, value, shown):
    text = HEADER + kinetics_rows(2) + f"abseiling,yyyyyyyyyyy,{value},10,val\n"
    with pytest.raises(AnnotationError, match=rf"val\.csv:4: time_start {shown} is not a finite number"):
        parse_kinetics(tmp_path, text)


@pytest.mark.parametrize("label", ["²", "٣", "3.0"])
def test_a_label_in_other_digits_is_named(tmp_path, label):
    (tmp_path / "train.csv").write_text(f"a.mp4,1\nb.mp4,{label}\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=rf"train\.csv:2: label '{label}' is not an integer"):
        parse("path_label_csv", AnnotationFiles(tmp_path, {"train": "train.csv"}))


def test_ssv2_label_indices_in_other_digits_are_named(tmp_path):
    (tmp_path / "labels.json").write_text(json.dumps({"Holding something": "0", "Pushing something": "١"}))
    (tmp_path / "train.json").write_text(json.dumps([{"id": "1", "template": "Holding [something]"}]))
    with pytest.raises(AnnotationError, match=r"labels\.json:template 'Pushing something': index '١' is not an integer"):
        parse("ssv2_json", AnnotationFiles(tmp_path, {"labels": "labels.json", "train": "train.json"}))


def test_json_nested_deeper_than_python_reads_is_named(tmp_path):
    (tmp_path / "labels.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "train.json").write_text("[]")
    with pytest.raises(AnnotationError, match=r"labels\.json:1: JSON nested deeper than any annotation file"):
        parse("ssv2_json", AnnotationFiles(tmp_path, {"labels": "labels.json", "train": "train.json"}))


def test_an_activitynet_duration_of_1e400_is_named(tmp_path):
    (tmp_path / "train.json").write_text('{"v_abc": {"duration": 1e400, "timestamps": [[0, 1]], "sentences": ["a"]}}')
    with pytest.raises(AnnotationError, match=r"train\.json: key 'v_abc': 'duration' inf is not a positive number"):
        parse("anet_json", AnnotationFiles(tmp_path, {"train": "train.json"}))


def test_a_kinetics_clip_in_two_splits_is_a_leak(tmp_path):
    (tmp_path / "train.csv").write_text(HEADER + kinetics_rows(3), encoding="utf-8")
    (tmp_path / "val.csv").write_text(HEADER + kinetics_rows(2, start=2), encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"'00000000002_000002_000012' is in both the train and the val split"):
        parse("kinetics_csv", AnnotationFiles(tmp_path, {"train": "train.csv", "val": "val.csv"}))


def test_a_path_label_video_in_two_splits_is_a_leak(tmp_path):
    (tmp_path / "train.csv").write_text("a.mp4,0\nb.mp4,1\n", encoding="utf-8")
    (tmp_path / "val.csv").write_text("b.mp4,1\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=r"'b' is in both the train and the val split"):
        parse("path_label_csv", AnnotationFiles(tmp_path, {"train": "train.csv", "val": "val.csv"}))
