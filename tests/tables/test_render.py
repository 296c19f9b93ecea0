"""Table rendering: count formatting and verdicts by hand, and supplementary Table 8 from real manifests."""

import json
import re

import pandas as pd
import pytest

from flux.data.index import ManifestInfo, write_manifest
from flux.errors import ConfigError
from flux.tables.latex import latex_escape
from flux.tables.render import (
    corpus_mismatches,
    count_step,
    count_verdict,
    format_count,
    format_like,
    parse_count,
    run,
)
from tests.paths import REPO


@pytest.mark.parametrize(
    "count, text", [(0, "0"), (999, "999"), (1_000, "1K"), (658_412, "658K"), (2_880_000, "2.88M"), (10_727_607, "10.73M")]
)
def test_format_count(count, text):
    assert format_count(count) == text


@pytest.mark.parametrize(
    "text, value", [("658K", 658_000), ("2.88M", 2_880_000), ("0", 0), ("11.00M", 11_000_000), ("0.5M", 500_000)]
)
def test_parse_count(text, value):
    assert parse_count(text) == pytest.approx(value)


def test_parse_count_rejects_other_text():
    with pytest.raises(ConfigError, match="paper_numbers.yaml"):
        parse_count("about 600K")


def test_count_verdicts():
    # 5% of 658K is 32.9K
    assert count_verdict(690_000, 658_000, 0.05, "paper") == "ok"
    assert count_verdict(620_000, 658_000, 0.05, "paper") == "off"
    assert count_verdict(0, 0, 0.05, "paper") == "ok" and count_verdict(3, 0, 0.05, "paper") == "off"
    assert count_verdict(60, 658_000, 0.05, "tiny") == "n/a"


def test_latex_escape():
    assert latex_escape("synth_k400 & 50% #1") == r"synth\_k400 \& 50\% \#1"


def manifest(path, dataset, modality, captions, undecodable=0):
    rows = []
    for position, texts in enumerate(captions):
        rows.append(
            {
                "dataset": dataset,
                "sample_id": str(position),
                "split": "train",
                "media_path": f"raw/{dataset}/{position}",
                "media_type": modality,
                "label_id": -1,
                "label_name": None,
                "captions": texts,
                "start_sec": None,
                "source_start_sec": None,
                "source_end_sec": None,
                "end_sec": None,
                "duration_s": 1.0,
                "num_frames": 10,
                "fps": 10.0,
                "width": 64,
                "height": 48,
                "decodable": position >= undecodable,
                "error_kind": None if position >= undecodable else "truncated",
                "error_detail": None,
                "details": None,
            }
        )
    info = ManifestInfo(dataset, modality, "video_text", "vindlu_json", None, False, True, None)
    write_manifest(pd.DataFrame(rows), info, path)
    return str(path)


def test_supp_table8_from_manifests(tmp_path):
    roles = {
        "k710": ("kin", "video", [[]] * 5),  # 5 clips, no text, one undecodable below
        "coco": ("coco", "image", [["a", "b"]] * 3),
        "webvid10m": ("web", "video", [["c"]] * 4),
    }
    rows = []
    for role, (dataset, modality, captions) in roles.items():
        path = manifest(tmp_path / f"{dataset}.parquet", dataset, modality, captions, undecodable=1 if role == "k710" else 0)
        rows.append({"role": role, "dataset": dataset, "manifest": path})
    out = tmp_path / "tables" / "supp_table8.tex"
    job = {
        "table": "supp_table8",
        "scale": "tiny",
        "rows": rows,
        "missing_roles": ["vg"],
        "corpora": {"corpus_25m": ["webvid10m", "coco", "coco"]},
        "paper_numbers": str(REPO / "config" / "paper_numbers.yaml"),
        "config_digest": "abc123",
        "out": str(out),
    }
    run(job)
    tex = out.read_text()
    data = json.loads(out.with_suffix(".json").read_text())
    by_key = {row["key"]: row for row in data["rows"]}
    assert (by_key["k710"]["media_count"], by_key["k710"]["text_count"]) == (4, 0)  # the undecodable clip is not usable
    assert (by_key["coco"]["media_count"], by_key["coco"]["text_count"]) == (3, 6)
    # a corpus counts each dataset once: web (4 videos, 4 texts) + coco (3 images, 6 texts)
    assert (by_key["corpus_25m"]["media_count"], by_key["corpus_25m"]["text_count"]) == (7, 10)
    assert r"Kinetics-710 & kin & 4 & 658K & 0 & 0 & video & n/a \\" in tex
    assert r"COCO & coco & 3 & 113K & 6 & 567K & image & n/a \\" in tex
    assert "config sha256 abc123" in tex and "Tiny scale (embedded default)" in tex
    assert "webvid10m + coco & 7" in tex
    assert tex.count(r"\midrule") == 2 and r"\toprule" in tex and r"\bottomrule" in tex
    assert not re.search(r"<<|>>|%%", tex)


def test_supp_table8_at_paper_scale_checks_tolerance(tmp_path):
    path = manifest(tmp_path / "k.parquet", "kinetics710", "video", [[]] * 3)
    out = tmp_path / "t.tex"
    job = {
        "table": "supp_table8",
        "scale": "paper",
        "rows": [{"role": "k710", "dataset": "kinetics710", "manifest": path}],
        "missing_roles": [],
        "corpora": {},
        "paper_numbers": str(REPO / "config" / "paper_numbers.yaml"),
        "config_digest": "d",
        "out": str(out),
    }
    run(job)
    assert r"& 3 & 658K & 0 & 0 & video & off \\" in out.read_text()


@pytest.mark.parametrize("text, step", [("2.56M", 10_000), ("0.5M", 100_000), ("113K", 1_000), ("11.00M", 10_000), ("0", 1)])
def test_count_step_is_the_last_printed_digit(text, step):
    assert count_step(text) == step


@pytest.mark.parametrize(
    "count, text, shown", [(2_613_000, "2.56M", "2.61M"), (3_067_000, "2.62M", "3.07M"), (1_234, "5K", "1K")]
)
def test_format_like(count, text, shown):
    assert format_like(count, text) == shown


def test_corpus_totals_against_their_members_by_hand():
    rows = {
        "a": {"dataset": "A", "media": "1.5M", "texts": "3.0M"},
        "b": {"dataset": "B", "media": "250K", "texts": "250K"},
        "fine": {"dataset": "Fine", "media": "1.75M", "texts": "3.3M", "members": ["a", "b"]},  # 3.25M: half a digit off
        "off": {"dataset": "Off", "media": "1.76M", "texts": "3.24M", "members": ["a", "b"]},  # 1.75M and 3.25M
    }
    found = corpus_mismatches(rows, ["fine", "off"], "numbers.yaml")
    assert [(check["row"], check["field"], check["printed"], check["sum"]) for check in found] == [
        ("off", "media", "1.76M", "1.75M"),
        ("off", "texts", "3.24M", "3.25M"),
    ]
    assert found[0]["members"] == {"A": "1.5M", "B": "250K"}
    with pytest.raises(ConfigError, match=r"supp_table8.rows.off.members: \['c'\] are not rows"):
        corpus_mismatches({**rows, "off": {**rows["off"], "members": ["a", "c"]}}, ["off"], "numbers.yaml")


def test_the_paper_corpora_against_their_members():
    """The 2.5M corpus: 0.5M + 2.0M + 113K = 2.61M images/videos (printed 2.56M), 0.5M + 2.0M + 567K = 3.07M
    texts (printed 2.62M). The 25M corpus adds up: 25.683M (printed 25.68M) and 26.805M (printed 26.81M)."""
    import yaml

    rows = yaml.safe_load((REPO / "config" / "paper_numbers.yaml").read_text())["supp_table8"]["rows"]
    found = corpus_mismatches(rows, ["corpus_25m", "corpus_2_5m"], "paper_numbers.yaml")
    assert [(check["row"], check["field"], check["printed"], check["sum"]) for check in found] == [
        ("corpus_2_5m", "media", "2.56M", "2.61M"),
        ("corpus_2_5m", "texts", "2.62M", "3.07M"),
    ]


def test_supp_table8_footnotes_the_paper_corpus_sums(tmp_path):
    roles = {"smit": ("smit", "video"), "internvid2m": ("ivid", "video"), "coco": ("coco", "image")}
    rows = [
        {"role": role, "dataset": dataset, "manifest": manifest(tmp_path / f"{dataset}.parquet", dataset, modality, [["t"]])}
        for role, (dataset, modality) in roles.items()
    ]
    out = tmp_path / "supp_table8.tex"
    job = {
        "table": "supp_table8",
        "scale": "tiny",
        "rows": rows,
        "missing_roles": [],
        "corpora": {"corpus_2_5m": ["smit", "internvid2m", "coco"]},
        "paper_numbers": str(REPO / "config" / "paper_numbers.yaml"),
        "config_digest": "d",
        "out": str(out),
    }
    run(job)
    tex = out.read_text()
    assert (
        "The paper prints 2.56M images/videos for the 2.5M corpus; its members' printed counts "
        "(S-MiT0.5M 0.5M + InternVid2M 2.0M + COCO 113K) sum to 2.61M." in tex
    )
    assert "The paper prints 2.62M texts for the 2.5M corpus" in tex and "sum to 3.07M." in tex
    assert "Kinetics-710's size is given differently elsewhere" in tex  # the paper numbers' free-text notes
    assert [check["field"] for check in json.loads(out.with_suffix(".json").read_text())["paper_checks"]] == ["media", "texts"]


@pytest.mark.parametrize("files", [["config.yaml"], ["paper.yaml"]])
def test_every_table_and_figure_spec_reads_back_typed_and_writes_the_same_json(files):
    from flux.config import load_config
    from flux.jobs import figure_fields, table_fields
    from flux.tables.job_spec import TABLE_JOBS, FigureJob, table_job

    config = load_config([REPO / "config" / name for name in files])
    kinds = set()
    for table in ["claims", *config.tables, "recipe", *(["checkpoints"] if config.evaluated_checkpoints else [])]:
        spec = table_fields(config, table)
        typed = table_job(spec)
        kinds.add(type(typed))
        assert typed.to_dict() == spec and list(typed.to_dict()) == list(spec)  # same keys, same order: same param text
    for name in config.figures:
        spec = figure_fields(config, name)
        assert list(FigureJob.from_dict(spec).to_dict().items()) == list(spec.items())
    assert kinds == set(TABLE_JOBS.values()) - (set() if config.evaluated_checkpoints else {TABLE_JOBS["checkpoints"]})


def test_a_table_spec_of_an_unknown_kind_or_shape_is_named():
    from flux.tables.job_spec import table_job

    with pytest.raises(ConfigError, match="unknown kind 'heatmap'"):
        table_job({"table": "main_table2", "kind": "heatmap"})
    with pytest.raises(ConfigError, match=r"missing keys \['config_digest', 'keys'"):
        table_job({"table": "main_table2", "kind": "cells", "scale": "tiny"})


def test_a_tables_workflow_inputs_are_the_files_its_spec_names():
    from flux.tables.job_spec import CheckpointsJob, Table8Job

    rows = [
        {"role": role, "dataset": "d", "manifest": manifest} for role, manifest in (("k710", "b.parquet"), ("k400", "a.parquet"))
    ]
    table8 = Table8Job.from_dict(
        {"table": "supp_table8", "scale": "tiny", "rows": [*rows, {**rows[0], "role": "k600"}], "missing_roles": [],
         "corpora": {}, "paper_numbers": "numbers.yaml", "config_digest": "", "out": "t.tex"}
    )  # fmt: skip
    assert table8.inputs() == {"manifests": ["a.parquet", "b.parquet"], "paper_numbers": "numbers.yaml"}
    entry = {"name": "m", "title": "M", "published": [], "evaluations": [{"protocol": "p", "metrics": "m/p.json"}]}
    checkpoints = CheckpointsJob.from_dict(
        {"table": "checkpoints", "kind": "checkpoints", "scale": "paper", "checkpoints": [entry, {**entry, "name": "n",
         "evaluations": [{"protocol": "p", "metrics": "n/p.json"}]}], "config_digest": "", "out": "c.tex"}
    )  # fmt: skip
    assert checkpoints.inputs() == {"metrics": ["m/p.json", "n/p.json"]}
