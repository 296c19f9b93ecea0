"""Kinetics and other classification parsers on the real published files and on hand-made bad files."""

import json
from pathlib import Path

import pytest

from flux.data.annotations import AnnotationFiles, parse
from flux.errors import AnnotationError
from tests.paths import REAL_FIXTURES as REAL

needs_real = pytest.mark.usefixtures("real_fixtures")


def files(root: Path, **roles: str) -> AnnotationFiles:
    return AnnotationFiles(root, roles)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- Kinetics
@needs_real
def test_kinetics_real_val_and_unlabelled_test():
    parsed = parse("kinetics_csv", files(REAL / "kinetics400", val="kinetics-400_val.csv", test="kinetics-400_test.csv"))
    val = [r for r in parsed.records if r.split == "val"]
    test = [r for r in parsed.records if r.split == "test"]
    assert (len(val), len(test)) == (19_906, 38_685)
    # 15,929 rows quote their label: a real CSV reader must strip the quotes
    assert parsed.class_names == (REAL / "kinetics400/mmaction2/label_map_k400.txt").read_text().splitlines()
    first = val[0]
    assert (first.label_name, first.sample_id, first.source_start_sec, first.source_end_sec) == (
        "abseiling",
        "0wR5jVB-WPk_000417_000427",
        417.0,
        427.0,
    )
    assert first.media == "0wR5jVB-WPk_000417_000427.mp4" and first.alt_media == ("0wR5jVB-WPk.mp4",)
    assert first.start_sec is None  # a clip is cut already: used whole
    assert all(r.label_name is None for r in test)


@needs_real
def test_kinetics_real_label_map_must_cover_labels():
    parsed = parse(
        "kinetics_csv",
        files(REAL, val="kinetics600/kinetics-600_val.csv", labels="kinetics600/mmaction2/label_map_k600.txt"),
    )
    assert len(parsed.class_names) == 600 and len(parsed.records) == 30_000
    with pytest.raises(AnnotationError, match="not in this label map"):
        parse(
            "kinetics_csv", files(REAL, val="kinetics600/kinetics-600_val.csv", labels="kinetics400/mmaction2/label_map_k400.txt")
        )


@pytest.mark.parametrize(
    "body, problem",
    [
        ("label,youtube_id,time_start,time_end,split\nx,abc,1,11,train\nx,abc,1\n", ":3: 3 fields"),
        ("label,youtube_id,time_start,time_end,split\nx,abc,one,11,train\n", ":2: time_start 'one' is not a finite number"),
        ("label,youtube_id,time_start,time_end,split\nx,abc,5,5,train\n", ":2: invalid clip"),
        (
            "label,youtube_id,time_start,time_end,split\nx,abc,1,11,train\nx,abc,1,11,train\n",
            ":3: clip abc_000001_000011 repeats line 2",
        ),
        ("label,video,start\n", ":1: header"),
        ("", ":1: the file is empty"),
        ("label,youtube_id,time_start,time_end,split\n", ":1: no clips listed"),
    ],
)
def test_kinetics_malformed_rows_name_file_and_line(tmp_path, body, problem):
    write(tmp_path / "train.csv", body)
    with pytest.raises(AnnotationError) as error:
        parse("kinetics_csv", files(tmp_path, train="train.csv"))
    assert f"{tmp_path / 'train.csv'}{problem}" in str(error.value)


def test_missing_annotation_file_says_how_to_fetch(tmp_path):
    with pytest.raises(AnnotationError, match="flux download"):
        parse("kinetics_csv", files(tmp_path, train="absent.csv"))
    with pytest.raises(AnnotationError, match="unknown annotation format 'nope'"):
        parse("nope", files(tmp_path))


# ------------------------------------------------------------------------------------------- SSv2
@needs_real
def test_ssv2_real_validation():
    parsed = parse(
        "ssv2_json",
        files(REAL / "ssv2", labels="something-something-v2-labels.json", val="something-something-v2-validation.json"),
    )
    assert len(parsed.class_names) == 174 and len(parsed.records) == 24_777
    assert parsed.class_names == (REAL / "ssv2/mmaction2/label_map.txt").read_text().splitlines()
    first = parsed.records[0]
    # "Spinning [something] that quickly stops spinning" -> the labels file's bracket-free template
    assert (first.sample_id, first.label_name) == ("74225", "Spinning something that quickly stops spinning")
    assert first.media == "74225.webm" and first.alt_media == ("74225.mp4",)
    assert first.captions == ("spinning cube that quickly stops spinning",)


@needs_real
def test_ssv2_real_test_has_ids_only():
    parsed = parse(
        "ssv2_json", files(REAL / "ssv2", labels="something-something-v2-labels.json", test="something-something-v2-test.json")
    )
    assert len(parsed.records) == 27_157 and all(r.label_name is None for r in parsed.records)


def test_ssv2_unknown_template_is_an_error(tmp_path):
    write(tmp_path / "labels.json", json.dumps({"Moving something up": "0"}))
    write(tmp_path / "train.json", json.dumps([{"id": "1", "template": "Moving [something] down", "label": "x"}]))
    with pytest.raises(AnnotationError, match="item 0 .* not in"):
        parse("ssv2_json", files(tmp_path, labels="labels.json", train="train.json"))


# ------------------------------------------------------------------------------------------- UCF101
@needs_real
def test_ucf101_real_split1_crlf():
    root = REAL / "ucf101"
    parsed = parse("ucf101_splits", files(root, classes="classInd.txt", train="trainlist01.txt", test="testlist01.txt"))
    train = [r for r in parsed.records if r.split == "train"]
    test = [r for r in parsed.records if r.split == "test"]
    assert (len(parsed.class_names), len(train), len(test)) == (101, 9_537, 3_783)
    assert parsed.class_names == (root / "mmaction2/label_map.txt").read_text().splitlines()
    assert train[0].media == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi" and train[0].label_name == "ApplyEyeMakeup"
    assert test[-1].label_name == "YoYo"


def test_ucf101_label_id_must_match_folder(tmp_path):
    write(tmp_path / "classInd.txt", "1 A\r\n2 B\r\n")
    write(tmp_path / "train.txt", "A/v_A_g01_c01.avi 1\r\nB/v_B_g01_c01.avi 1\r\n")
    with pytest.raises(AnnotationError, match=r"train.txt:2: label id 1 disagrees with folder 'B'"):
        parse("ucf101_splits", files(tmp_path, classes="classInd.txt", train="train.txt"))


# ------------------------------------------------------------------------------------------- MiT, COIN, generic
@needs_real
def test_moments_in_time_real_categories(tmp_path):
    categories = (REAL / "moments_in_time/category_momentsv1.txt").read_text()
    write(tmp_path / "cats.txt", categories)
    write(tmp_path / "val.csv", "clapping/flickr-1.mp4,clapping,3,0\npraying/yt-2.mp4,praying,2,1\n")
    parsed = parse(
        "mit_csv", AnnotationFiles(tmp_path, {"classes": "cats.txt", "val": "val.csv"}, {"media_prefix": {"val": "validation/"}})
    )
    assert len(parsed.class_names) == 339 and parsed.class_names[:3] == ["clapping", "praying", "dropping"]
    assert [r.media for r in parsed.records] == ["validation/clapping/flickr-1.mp4", "validation/praying/yt-2.mp4"]
    write(tmp_path / "bad.csv", "clapping/x.mp4,clapping,3,0\nx/y.mp4,juggling geese,1,0\n")
    with pytest.raises(AnnotationError, match=r"bad.csv:2: label 'juggling geese'"):
        parse("mit_csv", files(tmp_path, classes="cats.txt", val="bad.csv"))


@needs_real
def test_coin_real_taxonomy_orders_classes(tmp_path):
    (tmp_path / "taxonomy.xlsx").write_bytes((REAL / "coin/taxonomy.xlsx").read_bytes())
    # recipe_type is the taxonomy's Target Id (sheet target_action_mapping), not the row order of the
    # domain sheet: target 0 is UseAnalyticalBalance, 1 PasteCarSticker
    database = {
        "vid1": {"recipe_type": 1, "class": "PasteCarSticker", "subset": "training", "start": 0.0, "end": 12.5, "annotation": []},
        "vid2": {"recipe_type": 0, "class": "UseAnalyticalBalance", "subset": "testing", "start": 1.0, "end": 30.0},
    }
    write(tmp_path / "COIN.json", json.dumps({"database": database}))
    parsed = parse("coin_json", files(tmp_path, annotations="COIN.json", taxonomy="taxonomy.xlsx"))
    assert len(parsed.class_names) == 180
    assert parsed.class_names[:3] == ["UseAnalyticalBalance", "PasteCarSticker", "AssembleBed"]
    assert [(r.sample_id, r.split, r.label_name, r.end_sec) for r in parsed.records] == [
        ("vid1", "train", "PasteCarSticker", 12.5),
        ("vid2", "test", "UseAnalyticalBalance", 30.0),
    ]
    database["vid3"] = {"recipe_type": 2, "class": "WashHair", "subset": "training"}
    write(tmp_path / "COIN.json", json.dumps({"database": database}))
    with pytest.raises(AnnotationError, match="vid3.*recipe_type 2 is 'AssembleBed'"):
        parse("coin_json", files(tmp_path, annotations="COIN.json", taxonomy="taxonomy.xlsx"))


def test_coin_without_taxonomy_orders_by_recipe_type(tmp_path):
    database = {
        "a": {"recipe_type": 1, "class": "B", "subset": "training"},
        "b": {"recipe_type": 0, "class": "A", "subset": "testing"},
    }
    write(tmp_path / "COIN.json", json.dumps({"database": database}))
    assert parse("coin_json", files(tmp_path, annotations="COIN.json")).class_names == ["A", "B"]
    database["c"] = {"recipe_type": 0, "class": "C", "subset": "training"}
    write(tmp_path / "COIN.json", json.dumps({"database": database}))
    with pytest.raises(AnnotationError, match="recipe_type 0 names two classes"):
        parse("coin_json", files(tmp_path, annotations="COIN.json"))


def test_path_label_lists_with_space_and_comma(tmp_path):
    write(tmp_path / "train.txt", "k400/a.mp4 0\nk400/b.mp4  2\n")
    parsed = parse("path_label_csv", AnnotationFiles(tmp_path, {"train": "train.txt"}, {"separator": " "}))
    assert [(r.media, r.label_name) for r in parsed.records] == [("k400/a.mp4", "0"), ("k400/b.mp4", "2")]
    assert parsed.class_names == ["0", "1", "2"]
    write(tmp_path / "val.csv", "k400/a.mp4,zero\n")
    with pytest.raises(AnnotationError, match=r"val.csv:1: label 'zero' is not an integer"):
        parse("path_label_csv", files(tmp_path, val="val.csv"))


@pytest.mark.parametrize(
    "label_id, problem",
    [("0", "label id 0 outside 1..2"), ("7", "label id 7 outside 1..2"), ("x", "label id 'x' is not an integer")],
)
def test_ucf101_bad_label_ids_are_file_line_errors(tmp_path, label_id, problem):
    write(tmp_path / "classInd.txt", "1 A\r\n2 B\r\n")
    write(tmp_path / "train.txt", f"A/v_A_g01_c01.avi 1\r\nB/v_B_g01_c01.avi {label_id}\r\n")
    with pytest.raises(AnnotationError, match=rf"train.txt:2: {problem}"):
        parse("ucf101_splits", files(tmp_path, classes="classInd.txt", train="train.txt"))


def test_ssv2_non_numeric_label_index_and_duplicate_items(tmp_path):
    write(tmp_path / "labels.json", json.dumps({"Moving something up": "zero"}))
    with pytest.raises(AnnotationError, match="template 'Moving something up': index 'zero' is not an integer"):
        parse("ssv2_json", files(tmp_path, labels="labels.json"))
    write(tmp_path / "labels.json", json.dumps({"Moving something up": "0"}))
    write(tmp_path / "train.json", json.dumps([{"id": "1", "template": "Moving [something] up"}] * 2))
    with pytest.raises(AnnotationError, match="train.json: item 1: sample '1' repeats item 0"):
        parse("ssv2_json", files(tmp_path, labels="labels.json", train="train.json"))


def test_mit_non_numeric_category_index(tmp_path):
    write(tmp_path / "cats.txt", "clapping,0\npraying,one\n")
    write(tmp_path / "val.csv", "clapping/x.mp4,clapping\n")
    with pytest.raises(AnnotationError, match=r"cats.txt:2: class index 'one' is not an integer"):
        parse("mit_csv", files(tmp_path, classes="cats.txt", val="val.csv"))


def test_non_utf8_annotation_files(tmp_path):
    (tmp_path / "train.csv").write_bytes(
        b"label,youtube_id,time_start,time_end,split\njumping,abc,1,11,train\n\xff\xfe,bad,1,11,train\n"
    )
    with pytest.raises(AnnotationError, match=r"train.csv:3: not UTF-8 text"):
        parse("kinetics_csv", files(tmp_path, train="train.csv"))
    (tmp_path / "labels.json").write_bytes(b'{"caf\xe9": "0"}')
    with pytest.raises(AnnotationError, match=r"labels.json:1: not UTF-8 text"):
        parse("ssv2_json", files(tmp_path, labels="labels.json"))
