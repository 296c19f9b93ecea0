"""Indexing: every annotated item keeps a manifest row; failures are counted by kind, never dropped."""

import json

import pandas as pd
import pytest
import yaml

from flux.data.index import MediaIndex, media_stem, read_manifest, run, summarize
from flux.data.video import PROBE_VERSION
from flux.errors import AnnotationError, DatasetMissingError
from tests.media import write_clip, write_corrupt, write_truncated

ENTRY = yaml.safe_load(
    """
title: tiny kinetics
modality: video
task: classification
annotations: {format: kinetics_csv, files: {train: annotations/train.csv, val: annotations/val.csv}}
source: {local: {links: media, hint: test}}
"""
)


def test_media_stem():
    assert media_stem("a/b.mp4") == "a/b" and media_stem("x.MKV") == "x"
    assert media_stem("0001_MOVIE_00.00.01.000-00.00.02.000") == "0001_MOVIE_00.00.01.000-00.00.02.000"
    assert media_stem("10052357@N03_7585070382_5762149bfc.") == "10052357@N03_7585070382_5762149bfc"


def test_media_index_resolution_order(tmp_path):
    for name in ("train/abseiling/aa_000001_000011.mp4", "bb.mkv", "cc.avi", "dup/dd.mp4", "dup2/dd.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    index = MediaIndex(tmp_path)
    assert index.resolve(["cc.avi"]) == "cc.avi"  # exact
    assert index.resolve(["bb.mp4"]) == "bb.mkv"  # same folder, other extension
    assert index.resolve(["aa_000001_000011.mp4"]) == "train/abseiling/aa_000001_000011.mp4"  # stem anywhere
    assert index.resolve(["zz.mp4", "cc.mp4"]) == "cc.avi"  # an alternative name
    assert index.resolve(["dd.mp4"]) is None  # ambiguous stems are not guessed
    assert index.resolve(["nothing.mp4"]) is None


@pytest.fixture
def dataset(tmp_path):
    data = tmp_path / "data"
    root = data / "raw" / "toy"
    media = root / "media"
    good = write_clip(media / "train" / "jumping" / "aaaaaaaaaaa_000000_000010.mp4", num_frames=20)
    write_clip(media / "bbbbbbbbbbb.mp4", motion="moving left", num_frames=16)  # named by YouTube id only
    write_truncated(good, media / "ccccccccccc_000005_000015.mp4")
    (media / "ddddddddddd_000000_000010.mp4").write_bytes(b"")
    (media / "fffffffffff_000000_000010.mp4").write_text("not a video")
    (media / "ggggggggggg_000000_000010.webm").write_bytes(good.read_bytes())  # mp4 bytes, webm name
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "jumping,aaaaaaaaaaa,0,10,train\n"
        "running,bbbbbbbbbbb,3,13,train\n"
        "running,ccccccccccc,5,15,train\n"
        "jumping,ddddddddddd,0,10,train\n"
        "jumping,eeeeeeeeeee,0,10,train\n"
        "running,ggggggggggg,0,10,train\n"
    )
    (root / "annotations" / "val.csv").write_text("label,youtube_id,time_start,time_end,split\nrunning,fffffffffff,0,10,val\n")
    job = {
        "dataset": "toy",
        "entry": ENTRY,
        "dataset_dir": str(root),
        "data_dir": str(data),
        "media_roots": {"toy": str(media)},
        "probe_cache": str(data / "cache" / "probes" / "toy.jsonl"),
        "reuse_probes": [],
        "manifest": str(data / "manifests" / "toy.parquet"),
        "report": str(data / "manifests" / "toy.report.json"),
    }
    return job


def test_index_keeps_every_item_and_counts_failures(dataset):
    run({**dataset, "threads": 2})
    frame, info = read_manifest(dataset["manifest"])
    assert info.class_names == ["jumping", "running"] and info.dataset == "toy"
    assert len(frame) == 7  # nothing dropped
    rows = frame.set_index("sample_id")
    good = rows.loc["aaaaaaaaaaa_000000_000010"]
    assert good.decodable and good.num_frames == 20 and (good.width, good.height) == (64, 48)
    assert good.media_path == "raw/toy/media/train/jumping/aaaaaaaaaaa_000000_000010.mp4"
    assert good.label_id == 0 and good.source_start_sec == 0.0 and good.source_end_sec == 10.0
    assert pd.isna(good.start_sec)  # a pre-cut clip is used whole
    assert rows.loc["bbbbbbbbbbb_000003_000013"].media_path == "raw/toy/media/bbbbbbbbbbb.mp4"
    assert rows.loc["bbbbbbbbbbb_000003_000013"].label_id == 1
    kinds = rows["error_kind"].to_dict()
    assert kinds["ccccccccccc_000005_000015"] == "truncated"
    assert kinds["ddddddddddd_000000_000010"] == "empty"
    assert kinds["eeeeeeeeeee_000000_000010"] == "missing"
    assert kinds["fffffffffff_000000_000010"] == "not_video"
    wrong = rows.loc["ggggggggggg_000000_000010"]
    assert wrong.error_kind == "wrong_extension" and wrong.decodable  # counted, but usable
    report = json.loads(open(dataset["report"]).read())
    assert report["items"] == 7 and report["decodable"] == 3 and report["undecodable"] == 4
    assert report["error_kinds"] == {"truncated": 1, "empty": 1, "missing": 1, "not_video": 1, "wrong_extension": 1}
    assert report["splits"]["train"] == {
        "items": 6,
        "decodable": 3,
        "undecodable": 3,
        "texts": 0,
        "error_kinds": {"truncated": 1, "empty": 1, "missing": 1, "wrong_extension": 1},
    }
    assert report["splits"]["val"]["undecodable"] == 1
    assert report == {**summarize(frame, info), "probe": "first and last frame", "unverified_downloads": []}


def test_single_worker_gives_the_same_manifest(dataset, tmp_path):
    run({**dataset, "threads": 2})
    parallel, _ = read_manifest(dataset["manifest"])
    serial_job = {
        **dataset,
        "probe_cache": str(tmp_path / "serial.jsonl"),
        "manifest": str(tmp_path / "serial.parquet"),
        "report": str(tmp_path / "serial.json"),
    }
    run({**serial_job, "threads": 1})
    serial, _ = read_manifest(serial_job["manifest"])
    assert serial.equals(parallel)


def test_missing_dataset_directory_says_what_to_run(dataset, tmp_path):
    with pytest.raises(DatasetMissingError, match="flux download toy.*dvc pull"):
        run({**dataset, "dataset_dir": str(tmp_path / "nowhere")})


def test_duplicate_clip_across_files_of_one_split(dataset):
    root = dataset["dataset_dir"]
    with open(f"{root}/annotations/val.csv", "a") as handle:
        handle.write("running,fffffffffff,0,10,val\n")
    with pytest.raises(AnnotationError, match="repeats line 2"):
        run(dataset)


def test_derived_records_resolve_under_their_source(tmp_path):
    data = tmp_path / "data"
    source_media = data / "raw" / "k400" / "media"
    write_clip(source_media / "aaaaaaaaaaa_000000_000010.mp4")
    root = data / "raw" / "k710"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split,source\njumping,aaaaaaaaaaa,0,10,train,k400\n"
    )
    job = {
        "dataset": "k710",
        "entry": {**ENTRY, "annotations": {"format": "kinetics_csv", "files": {"train": "annotations/train.csv"}}},
        "dataset_dir": str(root),
        "data_dir": str(data),
        "media_roots": {"k710": str(root / "media"), "k400": str(source_media)},
        "probe_cache": str(data / "cache" / "k710.jsonl"),
        "reuse_probes": [],
        "manifest": str(data / "manifests" / "k710.parquet"),
        "report": str(data / "manifests" / "k710.report.json"),
    }
    run(job)
    frame, _ = read_manifest(job["manifest"])
    assert frame.loc[0, "media_path"] == "raw/k400/media/aaaaaaaaaaa_000000_000010.mp4" and frame.loc[0, "decodable"]


def test_read_manifest_errors(tmp_path):
    with pytest.raises(DatasetMissingError, match="snakemake"):
        read_manifest(tmp_path / "absent.parquet")


def cache_lines(job) -> list[dict]:
    return [json.loads(line) for line in open(job["probe_cache"])]


def test_probe_cache_resumes_and_notices_changed_files(dataset):
    run({**dataset, "threads": 2})
    first = cache_lines(dataset)
    assert len(first) == 6  # every file that exists (the missing one has nothing to cache)
    run({**dataset, "threads": 2})
    assert len(cache_lines(dataset)) == 6  # nothing probed again
    media = dataset["media_roots"]["toy"]
    write_clip(f"{media}/ddddddddddd_000000_000010.mp4", num_frames=9)  # the empty file is repaired
    run({**dataset, "threads": 1})
    lines = cache_lines(dataset)
    assert len(lines) == 7 and lines[-1]["path"].endswith("ddddddddddd_000000_000010.mp4") and lines[-1]["probe"]["decodable"]
    frame, _ = read_manifest(dataset["manifest"])
    assert frame.set_index("sample_id").loc["ddddddddddd_000000_000010", "num_frames"] == 9
    with open(dataset["probe_cache"], "a") as handle:
        handle.write('{"path": "torn')  # a job killed mid-write
    run({**dataset, "threads": 1})
    assert read_manifest(dataset["manifest"])[0].equals(frame)


def test_failures_an_older_probe_cached_are_probed_again(dataset):
    """Probe version 1 took decord's timing-dependent errors for verdicts: its failures are probed again, its
    successes (which no timing made up) are kept."""
    run({**dataset, "threads": 1})
    old = [{key: value for key, value in line.items() if key != "probe_version"} for line in cache_lines(dataset)]
    for line in old:
        line["probe"]["error_detail"] = "what probe 1 said"
    with open(dataset["probe_cache"], "w") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in old)
    run({**dataset, "threads": 1})
    again = cache_lines(dataset)[len(old) :]
    assert sorted(line["path"] for line in again) == sorted(line["path"] for line in old if not line["probe"]["decodable"])
    assert {line["probe_version"] for line in again} == {PROBE_VERSION} and len(again) == 3
    details = read_manifest(dataset["manifest"])[0].set_index("media_path")["error_detail"]
    assert details["raw/toy/media/ccccccccccc_000005_000015.mp4"] != "what probe 1 said"  # truncated: probed again
    assert details["raw/toy/media/ggggggggggg_000000_000010.webm"] == "what probe 1 said"  # wrong_extension: decodable, kept


def test_a_thorough_index_finds_a_file_corrupt_in_the_middle_and_probes_again(dataset):
    """The default probe decodes the first and last frame, so a file corrupt in the middle passes (training then
    meets it); `indexing.thorough` decodes every frame. Probes cached by a default index do not stand in for
    thorough ones."""
    media = dataset["media_roots"]["toy"]
    good = f"{media}/train/jumping/aaaaaaaaaaa_000000_000010.mp4"
    write_corrupt(write_clip(f"{media}/../corrupt.mp4", num_frames=240), good)
    run({**dataset, "threads": 1})
    sample = "aaaaaaaaaaa_000000_000010"
    first = read_manifest(dataset["manifest"])[0].set_index("sample_id").loc[sample]
    assert first.decodable, first.to_dict()
    run({**dataset, "threads": 1, "thorough": True})
    row = read_manifest(dataset["manifest"])[0].set_index("sample_id").loc[sample]
    assert not row.decodable and row.error_kind == "corrupt" and "unreadable" in row.error_detail
    report = json.loads(open(dataset["report"]).read())
    assert report["probe"] == "every frame" and report["error_kinds"]["corrupt"] == 1
    assert [line["thorough"] for line in cache_lines(dataset)] == [False] * 6 + [True] * 6


def test_a_decoder_crash_costs_only_its_file(dataset, monkeypatch):
    import os

    import flux.data.index as index_module

    real_probe = index_module.probe

    def crashing_probe(path, modality, num_threads=1, thorough=False):
        if str(path).endswith("ccccccccccc_000005_000015.mp4"):
            os._exit(11)  # what a segfaulting decoder does to its process
        return real_probe(path, modality, num_threads, thorough)

    monkeypatch.setattr(index_module, "probe", crashing_probe)
    run({**dataset, "threads": 2})
    frame, _ = read_manifest(dataset["manifest"])
    kinds = frame.set_index("sample_id")["error_kind"].to_dict()
    assert kinds["ccccccccccc_000005_000015"] == "crash"
    assert frame.set_index("sample_id").loc["aaaaaaaaaaa_000000_000010", "decodable"]
    assert kinds["ddddddddddd_000000_000010"] == "empty"
