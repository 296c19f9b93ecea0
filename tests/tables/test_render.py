"""Table rendering: count formatting and verdicts by hand, and supplementary Table 8 from real manifests."""

import json
import re

import pandas as pd
import pytest

from flux.data.index import ManifestInfo, write_manifest
from flux.errors import ConfigError
from flux.tables.render import count_verdict, format_count, latex_escape, parse_count, run
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
