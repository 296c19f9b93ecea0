"""Retrieval annotation parsers on the real published files (counts from the fixtures README and from
inspecting the files) and on small hand-made files for every error path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from flux.data.annotations import retrieval  # noqa: F401  (registers the formats)
from flux.data.annotations.base import PARSERS, AnnotationFiles, AnnotationRecord, parse
from flux.errors import AnnotationError
from tests.paths import REAL_FIXTURES as REAL

needs_real = pytest.mark.usefixtures("real_fixtures")
LOGGER = "flux.data.annotations.retrieval"


def run(fmt: str, root: Path, **files: str) -> list[AnnotationRecord]:
    parsed = parse(fmt, AnnotationFiles(root, files))
    assert parsed.class_names is None
    return parsed.records


def by_id(records: list[AnnotationRecord]) -> dict[str, AnnotationRecord]:
    result = {record.sample_id: record for record in records}
    assert len(result) == len(records), "sample ids must be unique"
    return result


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, data: object) -> Path:
    return write(path, json.dumps(data, indent=1))


def test_all_formats_registered() -> None:
    assert {"msrvtt", "didemo_json", "anet_json", "lsmdc_tsv", "msvd", "vindlu_json"} <= set(PARSERS)


# --- MSR-VTT -----------------------------------------------------------------------------------------


@needs_real
def test_msrvtt_1k_a_test_real() -> None:
    records = run("msrvtt", REAL / "msrvtt", test="MSRVTT_JSFUSION_test.csv")
    assert len(records) == 1000
    assert all(record.split == "test" and len(record.captions) == 1 for record in records)
    assert records[0] == AnnotationRecord(
        "video9770", "test", "video9770.mp4", captions=("a person is connecting something to system",)
    )
    assert records[499].sample_id == "video7771"
    assert records[499].captions == ("a golf player is trying to hit the ball into the pit",)
    assert records[-1].sample_id == "video9871"
    assert records[-1].captions == ("bearded guy in grey tshirt talking to the camera",)


@needs_real
def test_msrvtt_train_9k_with_captions(tmp_path: Path) -> None:
    train_ids = [line.strip() for line in (REAL / "msrvtt/MSRVTT_train.9k.csv").read_text().splitlines()[1:]]
    sentences = [
        {"video_id": video_id, "caption": f" caption {n} of {video_id} ", "sen_id": n}
        for n in range(2)
        for video_id in train_ids + ["video9770"]
    ]
    write_json(tmp_path / "MSRVTT_data.json", {"videos": [], "sentences": sentences})
    records = run(
        "msrvtt",
        tmp_path,
        train=str(REAL / "msrvtt/MSRVTT_train.9k.csv"),
        test=str(REAL / "msrvtt/MSRVTT_JSFUSION_test.csv"),
        captions="MSRVTT_data.json",
    )
    train = [record for record in records if record.split == "train"]
    assert len(train) == 9000 and len(records) == 10000
    assert train[0].sample_id == "video0" and train[-1].sample_id == "video9999"
    assert train[0].media == "video0.mp4"
    assert train[0].captions == ("caption 0 of video0", "caption 1 of video0")  # order kept, stripped
    test_video = by_id(records)["video9770"]
    assert test_video.captions == ("a person is connecting something to system",)  # test captions from the csv


def test_msrvtt_train_needs_captions_role(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", "video_id\nvideo0\n")
    with pytest.raises(AnnotationError, match="'captions' role"):
        run("msrvtt", tmp_path, train="train.csv")


def test_msrvtt_train_video_without_captions(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", "video_id\nvideo0\nvideo1\n")
    write_json(tmp_path / "data.json", {"sentences": [{"video_id": "video0", "caption": "a cat"}]})
    with pytest.raises(AnnotationError, match=r"train\.csv:3: video 'video1' has no caption"):
        run("msrvtt", tmp_path, train="train.csv", captions="data.json")


def test_msrvtt_train_list_without_header_and_bad_sentence(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", "video0\n")
    write_json(tmp_path / "data.json", {"sentences": [{"video_id": "video0", "caption": "a cat"}, {"caption": "x"}]})
    with pytest.raises(AnnotationError, match=r"data\.json: sentences\[1\]: needs 'video_id'"):
        run("msrvtt", tmp_path, train="train.csv", captions="data.json")
    write_json(tmp_path / "data.json", {"sentences": [{"video_id": "video0", "caption": "a cat"}]})
    assert run("msrvtt", tmp_path, train="train.csv", captions="data.json")[0].captions == ("a cat",)


TEST_HEADER = "key,vid_key,video_id,sentence\n"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            TEST_HEADER + "ret0,msr1,video1,a dog\nret1,msr1,video1,a cat\n",
            r"test\.csv:3: video 'video1' repeats line 2",
        ),
        (TEST_HEADER + "ret0,msr1,video1\n", r"test\.csv:2: 3 fields where the header has 4"),
        (TEST_HEADER + "ret0,msr1,video1, \n", r"test\.csv:2: empty video_id or sentence"),
        ("key,vid,caption\nret0,msr1,a dog\n", r"test\.csv:1: header .* lacks"),
        (TEST_HEADER, r"test\.csv:1: header but no rows"),
        ("", r"test\.csv: file is empty"),
    ],
)
def test_msrvtt_test_csv_errors(tmp_path: Path, text: str, pattern: str) -> None:
    write(tmp_path / "test.csv", text)
    with pytest.raises(AnnotationError, match=pattern):
        run("msrvtt", tmp_path, test="test.csv")


def test_msrvtt_train_test_overlap_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "test.csv", TEST_HEADER + "ret0,msr1,video1,a dog\n")
    write(tmp_path / "train.csv", "video_id\nvideo1\n")
    write_json(tmp_path / "data.json", {"sentences": [{"video_id": "video1", "caption": "a dog"}]})
    with pytest.raises(AnnotationError, match="'video1' is in both the train and the test split"):
        run("msrvtt", tmp_path, train="train.csv", test="test.csv", captions="data.json")


def test_msrvtt_train_list_duplicate(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", "video_id\nvideo0\nvideo0\n")
    write_json(tmp_path / "data.json", {"sentences": [{"video_id": "video0", "caption": "a cat"}]})
    with pytest.raises(AnnotationError, match=r"train\.csv:3: video 'video0' repeats line 2"):
        run("msrvtt", tmp_path, train="train.csv", captions="data.json")


# --- DiDeMo ------------------------------------------------------------------------------------------


@needs_real
def test_didemo_real_without_list() -> None:
    records = run("didemo_json", REAL / "didemo", test="test_data.json")
    # 4,021 moments of 1,037 distinct `video` strings, but only 1,004 videos: 33 are spelled with two extensions
    assert len(records) == 1004
    assert sum(len(record.captions) for record in records) == 4021
    first = records[0]
    assert first.sample_id == "26292851@N04_4253489686_265c3c8051"
    assert first.media == "26292851@N04_4253489686_265c3c8051.m4v"
    assert first.alt_media == ("26292851@N04_4253489686_265c3c8051.mp4",)
    assert first.captions == (
        "someone kicks the bug towards some rocks.",
        "a man in a red shirt stomps on a centipede.",
        "man in white shirt is seen",
        "close up of a millipede on the rocks",
        "first time foot swipes at wiggly thing",
    )
    assert first.start_sec is None and first.end_sec is None


@needs_real
def test_didemo_real_with_list(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        records = run("didemo_json", REAL / "didemo", test="test_data.json", test_list="test_list.txt")
    assert not caplog.records  # list and json name the same 1,004 videos (by stem)
    assert len(records) == 1004
    assert sum(len(record.captions) for record in records) == 4021
    assert records[0].sample_id == "10015567@N08_3655084291_d8b58466fa"  # list order
    assert records[0].media == "10015567@N08_3655084291_d8b58466fa.mov"
    assert records[-1].media == "97352149@N00_6143993297_5d524acf9d.mp4"
    videos = by_id(records)
    mixed = videos["39457011@N00_5403825464_79c0f43b72"]  # `.mov` 4 times and `.mp4` twice in the json
    assert mixed.media == "39457011@N00_5403825464_79c0f43b72.mov"
    assert mixed.alt_media == ("39457011@N00_5403825464_79c0f43b72.mp4",)
    assert len(mixed.captions) == 6
    listed_mp4 = videos["51727341@N00_4913494887_25ba94c153"]  # json's first spelling is .mov, the list's .mp4
    assert listed_mp4.media.endswith(".mp4") and listed_mp4.alt_media == ("51727341@N00_4913494887_25ba94c153.mov",)
    bare = videos["10052357@N03_7585070382_5762149bfc"]  # published with a bare trailing dot
    assert bare.media == "10052357@N03_7585070382_5762149bfc."
    assert bare.alt_media == ("10052357@N03_7585070382_5762149bfc.mp4",)


def moment(video: str, description: str) -> dict[str, object]:
    return {"annotation_id": 1, "description": description, "video": video, "times": [[0, 0]], "num_segments": 6}


def test_didemo_list_mismatches_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_json(
        tmp_path / "test.json",
        [moment("a.mov", "first"), moment("b.avi", "only b"), moment("a.mp4", "second"), moment("c.mp4", "unlisted")],
    )
    write(tmp_path / "list.txt", "b.avi\na.mp4\nmissing.mov\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        records = run("didemo_json", tmp_path, test="test.json", test_list="list.txt")
    assert [(r.sample_id, r.media, r.alt_media, r.captions) for r in records] == [
        ("b", "b.avi", ("b.mp4",), ("only b",)),
        ("a", "a.mp4", ("a.mov",), ("first", "second")),
    ]
    messages = " | ".join(record.getMessage() for record in caplog.records)
    assert "1 listed item(s) have no annotation" in messages and "missing" in messages
    assert "1 annotated item(s) are not in list.txt and are excluded: c" in messages


@pytest.mark.parametrize(
    ("items", "pattern"),
    [
        ([moment("a.mp4", "x"), {"video": "b.mp4"}], r"test\.json: item 1: needs 'video' and 'description'"),
        ([moment("a.mp4", "  ")], r"test\.json: item 0 \(video a\.mp4\): caption is empty"),
        ([moment(".mp4", "x")], r"test\.json: item 0: 'video' '\.mp4' is not a file name"),
        ([], r"test\.json: expected a non-empty JSON list"),
    ],
)
def test_didemo_item_errors(tmp_path: Path, items: list[object], pattern: str) -> None:
    write_json(tmp_path / "test.json", items)
    with pytest.raises(AnnotationError, match=pattern):
        run("didemo_json", tmp_path, test="test.json")


def test_didemo_list_duplicate_video(tmp_path: Path) -> None:
    write_json(tmp_path / "test.json", [moment("a.mp4", "x")])
    write(tmp_path / "list.txt", "a.mp4\nb.avi\na.mov\n")
    with pytest.raises(AnnotationError, match=r"list\.txt:3: 'a\.mov' is the same video as 'a\.mp4'"):
        run("didemo_json", tmp_path, test="test.json", test_list="list.txt")


def test_didemo_list_without_overlap(tmp_path: Path) -> None:
    write_json(tmp_path / "test.json", [moment("a.mp4", "x")])
    write(tmp_path / "list.txt", "b.mp4\n")
    with pytest.raises(AnnotationError, match="no video is left"):
        run("didemo_json", tmp_path, test="test.json", test_list="list.txt")


def test_invalid_and_empty_json(tmp_path: Path) -> None:
    write(tmp_path / "bad.json", '[\n {"video": "a.mp4",\n  "description": "x" ,,\n]')
    with pytest.raises(AnnotationError, match=r"bad\.json:3: invalid JSON \(.* at column \d+\)"):
        run("didemo_json", tmp_path, test="bad.json")
    write(tmp_path / "empty.json", " \n")
    with pytest.raises(AnnotationError, match=r"empty\.json: file is empty"):
        run("didemo_json", tmp_path, test="empty.json")


def test_missing_file_and_no_split_role(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="does not exist"):
        run("didemo_json", tmp_path, test="nope.json")
    with pytest.raises(AnnotationError, match="no split role"):
        run("anet_json", tmp_path, captions="x.json")


# --- ActivityNet Captions ----------------------------------------------------------------------------


@needs_real
def test_anet_val_1_real() -> None:
    records = run("anet_json", REAL / "activitynet_captions", val="val_1.json")
    assert len(records) == 4917
    assert sum(len(record.captions) for record in records) == 17505
    first = records[0]
    assert (first.sample_id, first.split, first.media, first.alt_media) == (
        "v_uqiMw7tQ1Cc",
        "val",
        "v_uqiMw7tQ1Cc.mp4",
        ("uqiMw7tQ1Cc.mp4",),
    )
    assert first.captions == (
        "A weight lifting tutorial is given.",
        "The coach helps the guy in red with the proper body placement and lifting technique.",  # 2 spaces stripped
    )
    assert (first.start_sec, first.end_sec) == (0.0, 55.15)
    assert records[-1].sample_id == "v_5nOc03oiFvk" and records[-1].end_sec == 213.44
    assert len(records[-1].captions) == 3


@needs_real
def test_anet_val_1_with_text_list(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        records = run("anet_json", REAL / "activitynet_captions", val="val_1.json", val_ids="val_1_list.txt")
    assert len(records) == 4916
    assert "v_0dkIbKXXFzI" not in by_id(records)  # annotated but in neither list
    assert records[0].sample_id == "v_uqiMw7tQ1Cc"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and "1 annotated item(s) are not in val_1_list.txt" in messages[0]


@needs_real
def test_anet_val_1_with_json_list(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        records = run("anet_json", REAL / "activitynet_captions", val="val_1.json", val_ids="val_ids.json")
    assert len(records) == 4916  # 4,925 listed; 9 have no annotation, v_0dkIbKXXFzI is not listed
    assert records[0].sample_id == "v_JDg--pjY5gg" and records[-1].sample_id == "v_t0ZuC58UIOM"  # list order
    messages = " | ".join(record.getMessage() for record in caplog.records)
    assert "9 listed item(s) have no annotation in val_1.json" in messages
    assert "1 annotated item(s) are not in val_ids.json" in messages


def anet_entry(*sentences: str, duration: object = 10.0) -> dict[str, object]:
    return {"duration": duration, "timestamps": [[0, 1]] * len(sentences), "sentences": list(sentences)}


def test_anet_list_without_prefix(tmp_path: Path) -> None:
    write_json(tmp_path / "val.json", {"v_a": anet_entry("one", " two"), "v_b": anet_entry("three")})
    write(tmp_path / "ids.txt", "b\n")
    records = run("anet_json", tmp_path, val="val.json", val_ids="ids.txt")
    assert [(r.sample_id, r.media, r.alt_media, r.captions) for r in records] == [("v_b", "v_b.mp4", ("b.mp4",), ("three",))]
    write_json(tmp_path / "ids.json", ["v_a", "v_a"])
    with pytest.raises(AnnotationError, match=r"ids\.json: item 1: id 'v_a' repeats item 0"):
        run("anet_json", tmp_path, val="val.json", val_ids="ids.json")


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"v_a": {"duration": 3.0, "sentences": []}}, r"val\.json: key 'v_a': 'sentences' is missing or empty"),
        ({"v_a": anet_entry("x", duration="long")}, r"key 'v_a': 'duration' 'long' is not a positive number"),
        ({"v_a": {**anet_entry("x", "y"), "timestamps": [[0, 1]]}}, r"key 'v_a': 'timestamps' does not have one"),
        ({"v_a": anet_entry("x", "")}, r"key 'v_a' sentence 1: caption is empty"),
        ({"v_a": anet_entry("x"), "a": anet_entry("y")}, r"key 'a': video v_a is listed twice"),
        ({"v_a": ["x"]}, r"key 'v_a': expected a video id mapping to an object"),
        ([], r"val\.json: expected a non-empty JSON object"),
    ],
)
def test_anet_errors(tmp_path: Path, data: object, pattern: str) -> None:
    write_json(tmp_path / "val.json", data)
    with pytest.raises(AnnotationError, match=pattern):
        run("anet_json", tmp_path, val="val.json")


def test_text_id_list_errors(tmp_path: Path) -> None:
    write_json(tmp_path / "val.json", {"v_a": anet_entry("x")})
    write(tmp_path / "ids.txt", "v_a\nv_b v_c\n")
    with pytest.raises(AnnotationError, match=r"ids\.txt:2: expected one id per line"):
        run("anet_json", tmp_path, val="val.json", val_ids="ids.txt")
    write(tmp_path / "ids.txt", "v_a\n\nv_a\n")
    with pytest.raises(AnnotationError, match=r"ids\.txt:3: id 'v_a' repeats line 1"):
        run("anet_json", tmp_path, val="val.json", val_ids="ids.txt")
    write(tmp_path / "ids.txt", "\n")
    with pytest.raises(AnnotationError, match=r"ids\.txt: file is empty"):
        run("anet_json", tmp_path, val="val.json", val_ids="ids.txt")


# --- LSMDC -------------------------------------------------------------------------------------------


@needs_real
def test_lsmdc_real() -> None:
    records = run("lsmdc_tsv", REAL / "lsmdc", test="LSMDC16_challenge_1000_publictect.csv")
    assert len(records) == 1000
    assert all(len(record.captions) == 1 for record in records)
    first = records[0]
    assert first.sample_id == "3086_UGLY_TRUTH_00.23.23.000-00.23.28.886"
    assert first.media == "3086_UGLY_TRUTH/3086_UGLY_TRUTH_00.23.23.000-00.23.28.886.avi"
    assert first.alt_media == ("3086_UGLY_TRUTH_00.23.23.000-00.23.28.886.avi",)
    assert first.captions == ("SOMEONE stands below, hands on her hips.",)
    assert (first.start_sec, first.end_sec) == (0.0, 5.886)
    assert records[-1].media == "1034_Super_8/1034_Super_8_00.47.36.947-00.47.39.171.avi"
    assert records[-1].captions == ("People are in his bedroom.",)
    clips = by_id(records)
    padded = clips["1012_Unbreakable_00.56.36.981-00.56.38.167"]  # extracted 00.56.36.574-00.56.38.574
    assert padded.end_sec == 2.0
    assert clips["3064_SPARKLE_2012_01.10.49.683-01.10.52.477"].captions == (
        "throws one last punch in the direction of the club.",
    )
    assert len({record.media.split("/")[0] for record in records}) == 17  # movie folders


LSMDC_ROW = "1004_Juno_00.00.01.000-00.00.03.000\t00.00.01.000\t00.00.03.000\t00.00.01.000\t00.00.03.000\tHe runs."


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        (
            "1004_Juno_00.00.05.000-00.00.06.000\t00.00.05.000\t00.00.06.000\tHe sits.",
            r"x\.csv:2: 4 tab-separated columns, expected 6",
        ),
        (
            "Juno_1\t00.00.05.000\t00.00.06.000\t00.00.05.000\t00.00.06.000\tHe sits.",
            r"x\.csv:2: clip id 'Juno_1' is not",
        ),
        (
            "1004_Juno_00.00.05.000-00.00.06.000\t00.00.05\t00.00.06.000\t00.00.05.000\t00.00.06.000\tHe sits.",
            r"x\.csv:2: timestamp '00\.00\.05' is not",
        ),
        (
            "1004_Juno_00.00.05.000-00.00.06.000\t00.00.05.000\t00.00.06.000\t00.00.05.500\t00.00.06.000\tHe sits.",
            r"x\.csv:2: timestamps .* do not form a clip",
        ),
        (LSMDC_ROW, r"x\.csv:2: clip '1004_Juno_00\.00\.01\.000-00\.00\.03\.000' repeats line 1"),
        (
            "1004_Juno_00.00.05.000-00.00.06.000\t00.00.05.000\t00.00.06.000\t00.00.05.000\t00.00.06.000\t \t",
            r"x\.csv:2: 5 tab-separated",
        ),
    ],
)
def test_lsmdc_errors(tmp_path: Path, line: str, pattern: str) -> None:
    write(tmp_path / "x.csv", f"{LSMDC_ROW}\n{line}\n")
    with pytest.raises(AnnotationError, match=pattern):
        run("lsmdc_tsv", tmp_path, test="x.csv")


def test_lsmdc_quotes_kept_and_empty_file(tmp_path: Path) -> None:
    row = LSMDC_ROW.replace("He runs.", '"Stop!" SOMEONE shouts.')
    write(tmp_path / "x.csv", row + "\n")
    assert run("lsmdc_tsv", tmp_path, test="x.csv")[0].captions == ('"Stop!" SOMEONE shouts.',)
    write(tmp_path / "x.csv", "\n\n")
    with pytest.raises(AnnotationError, match=r"x\.csv: file is empty"):
        run("lsmdc_tsv", tmp_path, test="x.csv")


# --- MSVD --------------------------------------------------------------------------------------------


def real_msvd_ids(split: str) -> list[str]:
    return [line.strip() for line in (REAL / f"msvd/{split}_list.txt").read_text().splitlines() if line.strip()]


@needs_real
def test_msvd_real_lists_with_generated_descriptions(tmp_path: Path) -> None:
    ids = [video_id for split in ("train", "val", "test") for video_id in real_msvd_ids(split)]
    lines = ["# MSVD descriptions (generated for the test)", "# <video id> <caption>"]
    lines += [f"{video_id} caption {n} for {video_id}" for video_id in ids for n in range(3)]
    lines.append("unlisted_0_1 a caption of a video in no list")
    write(tmp_path / "AllVideoDescriptions.txt", "\n".join(lines) + "\n")
    lists = {split: str(REAL / f"msvd/{split}_list.txt") for split in ("train", "val", "test")}
    records = run("msvd", tmp_path, captions="AllVideoDescriptions.txt", **lists)
    counts = {split: sum(record.split == split for record in records) for split in ("train", "val", "test")}
    assert counts == {"train": 1200, "val": 100, "test": 670}
    first = records[0]
    assert (first.sample_id, first.split, first.media) == ("-4wsuPCjDBc_5_15", "train", "-4wsuPCjDBc_5_15.avi")
    assert first.captions == tuple(f"caption {n} for -4wsuPCjDBc_5_15" for n in range(3))
    assert records[-1].sample_id == "zzit5b_-ukg_5_20" and records[-1].split == "test"
    assert by_id(records)["bQJQGoJF7_k_162_169"].split == "val"


def test_msvd_json_captions(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "a_1_2\nb_3_4\n")
    write_json(tmp_path / "caps.json", {"a_1_2": ["a dog runs", " a dog is running "], "b_3_4": "a cat"})
    records = run("msvd", tmp_path, train="train.txt", captions="caps.json")
    assert [(r.sample_id, r.captions) for r in records] == [
        ("a_1_2", ("a dog runs", "a dog is running")),
        ("b_3_4", ("a cat",)),
    ]


def test_msvd_errors(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "a_1_2\nb_3_4\n")
    write(tmp_path / "test.txt", "b_3_4\n")
    write(tmp_path / "caps.txt", "# comment\na_1_2 a dog runs\n")
    with pytest.raises(AnnotationError, match=r"caps\.txt: no captions for 1 video\(s\) of the train list .*train\.txt: b_3_4"):
        run("msvd", tmp_path, train="train.txt", captions="caps.txt")
    write(tmp_path / "caps.txt", "a_1_2 a dog runs\nb_3_4\n")
    with pytest.raises(AnnotationError, match=r"caps\.txt:2: expected '<video id> <caption>', got 'b_3_4'"):
        run("msvd", tmp_path, train="train.txt", captions="caps.txt")
    write(tmp_path / "caps.txt", "a_1_2 a dog runs\nb_3_4 a cat\n")
    with pytest.raises(AnnotationError, match="'b_3_4' is in both the train and the test split"):
        run("msvd", tmp_path, train="train.txt", test="test.txt", captions="caps.txt")
    write(tmp_path / "caps.txt", "# only a comment\n")
    with pytest.raises(AnnotationError, match=r"caps\.txt: has only comments"):
        run("msvd", tmp_path, train="train.txt", captions="caps.txt")
    write_json(tmp_path / "caps.json", {"a_1_2": [], "b_3_4": "x"})
    with pytest.raises(AnnotationError, match=r"caps\.json: key 'a_1_2': expected a caption string"):
        run("msvd", tmp_path, train="train.txt", captions="caps.json")
    with pytest.raises(AnnotationError, match="annotation role 'captions' is not configured"):
        run("msvd", tmp_path, train="train.txt")


# --- VindLU JSON -------------------------------------------------------------------------------------


def test_vindlu_videos_string_and_list_captions(tmp_path: Path) -> None:
    write_json(
        tmp_path / "train.json",
        [
            {"video": "clips/v1.mp4", "caption": " a man cooks ", "duration": 3.0},
            {"video": "clips/v2.webm", "caption": ["a dog", "a brown dog"]},
            {"video": "clips/v1.mp4", "caption": ["he adds salt"]},
        ],
    )
    write_json(tmp_path / "test.json", [{"video": "v3.mp4", "caption": "a car"}])
    records = run("vindlu_json", tmp_path, train="train.json", test="test.json")
    assert [(r.sample_id, r.split, r.media, r.captions) for r in records] == [
        ("clips/v1", "train", "clips/v1.mp4", ("a man cooks", "he adds salt")),
        ("clips/v2", "train", "clips/v2.webm", ("a dog", "a brown dog")),
        ("v3", "test", "v3.mp4", ("a car",)),
    ]


def test_vindlu_images_merge_repeated_media(tmp_path: Path) -> None:
    image = "train2014/COCO_train2014_000000000009.jpg"
    items = [{"image": image, "caption": f"caption {n}"} for n in range(5)]
    items.append({"image": "train2014/COCO_train2014_000000000025.jpg", "caption": "a giraffe"})
    write_json(tmp_path / "coco.json", items)
    records = run("vindlu_json", tmp_path, train="coco.json")
    assert len(records) == 2
    assert records[0].sample_id == "train2014/COCO_train2014_000000000009"
    assert records[0].media == image
    assert records[0].captions == tuple(f"caption {n}" for n in range(5))


@pytest.mark.parametrize(
    ("items", "pattern"),
    [
        ([{"video": "a.mp4", "caption": "x"}, {"caption": "y"}], r"x\.json: item 1: has neither 'video' nor 'image'"),
        ([{"video": "a.mp4", "image": "a.jpg", "caption": "y"}], r"x\.json: item 0: has both 'video' and 'image'"),
        (
            [{"video": "a.mp4", "caption": "x"}, {"image": "b.jpg", "caption": "y"}],
            r"item 1: uses 'image' but item 0 uses 'video'",
        ),
        ([{"video": "a.mp4"}], r"item 0: has no 'caption'"),
        ([{"video": "a.mp4", "caption": []}], r"item 0: 'caption' must be a string or a non-empty list"),
        ([{"video": "a.mp4", "caption": ["ok", 3]}], r"item 0 \(a\.mp4\): caption 3 is not a string"),
        ([{"video": "", "caption": "x"}], r"item 0: 'video' '' is not a path"),
        (
            [{"video": "a.mp4", "caption": "x"}, {"video": "a.webm", "caption": "y"}],
            r"item 1: 'a\.webm' and 'a\.mp4' \(item 0\) share",
        ),
        (["a.mp4"], r"item 0: is not an object"),
        ({"video": "a.mp4"}, r"x\.json: expected a non-empty JSON list"),
    ],
)
def test_vindlu_errors(tmp_path: Path, items: object, pattern: str) -> None:
    write_json(tmp_path / "x.json", items)
    with pytest.raises(AnnotationError, match=pattern):
        run("vindlu_json", tmp_path, train="x.json")


def test_vindlu_same_media_in_two_splits(tmp_path: Path) -> None:
    write_json(tmp_path / "train.json", [{"video": "a.mp4", "caption": "x"}])
    write_json(tmp_path / "val.json", [{"video": "a.mp4", "caption": "x"}])
    with pytest.raises(AnnotationError, match="'a' is in both the train and the val split"):
        run("vindlu_json", tmp_path, train="train.json", val="val.json")
