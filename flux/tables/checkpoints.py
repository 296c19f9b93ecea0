"""The checkpoints table: every evaluated external checkpoint (config/checkpoints.yaml) under each setting of its
protocols, with the publisher's number beside ours: the direct check that this pipeline's evaluation reproduces
the released models' (results/tables/checkpoints.{tex,csv,json}, built from metrics files like every table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flux.errors import FluxError
from flux.io import csv_text
from flux.provenance import latex_comment, provenance
from flux.tables.job_spec import CheckpointsJob
from flux.tables.latex import SCALE_NOTE, environment, latex_escape

COLUMNS = (
    "checkpoint",
    "model",
    "dataset",
    "split",
    "protocol",
    "setting",
    "views",
    "tokens",
    "head",
    "top1",
    "top5",
    "gflops_per_view",
    "params_m",
    "published",
    "published_metric",
    "delta",
    "published_source",
)


def _views(frames: int, clips: int, crops: int) -> str:
    """The model zoos' `#Frame`: frames x crops x clips."""
    return f"{frames}x{crops}x{clips}"


def rows(job: CheckpointsJob) -> list[dict[str, Any]]:
    table = []
    for checkpoint in job.checkpoints:
        published = {(number["protocol"], number["setting"]): number for number in checkpoint.published}
        for evaluation in checkpoint.evaluations:
            path = Path(evaluation.metrics)
            if not path.is_file():
                raise FluxError(f"{path} does not exist; build it first (snakemake {path})")
            record = json.loads(path.read_text())
            (role, results), *more = record["results"].items()
            if more:
                raise FluxError(f"{path}: the checkpoints table reads single-dataset protocols; this one has {len(more) + 1}")
            clips, crops = record["views"]
            for setting, result in results.items():
                number = published.get((evaluation.protocol, setting))
                ours = result.get(number["metric"]) if number else None
                frames = int(setting.split("x", 1)[0]) if not setting.startswith("to@") else result["input"][0]
                table.append(
                    {
                        "checkpoint": checkpoint.name,
                        "model": checkpoint.title,
                        "dataset": record["datasets"][role]["dataset"],
                        "split": record["datasets"][role]["split"],
                        "protocol": evaluation.protocol,
                        "setting": setting,
                        "views": _views(frames, clips, crops),
                        "tokens": result["budget"],
                        "head": result["head"],
                        "top1": result["top1"],
                        "top5": result.get("top5"),
                        "gflops_per_view": result.get("gflops"),
                        "params_m": record["params_m"],
                        "published": number["value"] if number else None,
                        "published_metric": number["metric"] if number else None,
                        "delta": round(ours - number["value"], 2) if number else None,
                        "published_source": number["source"] if number else None,
                    }
                )
    return table


def _number(value: Any, digits: int = 1) -> str:
    return "--" if value is None else f"{value:.{digits}f}"


def render(job: CheckpointsJob) -> tuple[str, dict[str, Any]]:
    table = rows(job)
    body = []
    for row in table:
        delta = "--" if row["delta"] is None else f"{row['delta']:+.1f}"
        cells = [
            latex_escape(row["model"]),
            latex_escape(f"{row['dataset']} ({row['split']})"),
            latex_escape(row["setting"]),
            latex_escape(row["views"]),
            str(row["tokens"]),
            str(row["head"]),
            _number(row["top1"]),
            _number(row["top5"]),
            _number(row["gflops_per_view"]),
            _number(row["params_m"]),
            _number(row["published"]),
            delta,
        ]
        body.append(" & ".join(cells) + " \\\\")
    record = provenance(job.config_digest)
    sources = sorted({row["published_source"] for row in table if row["published_source"]})
    caption = (
        "Released checkpoints evaluated by this pipeline beside their published top-1; views are frames x crops x "
        f"clips, GFLOPs per view. {SCALE_NOTE[job.scale].capitalize()}."
    )
    tex = (
        environment()
        .get_template("checkpoints.tex.j2")
        .render(
            provenance=latex_comment(record),
            caption=latex_escape(caption),
            body=body,
            sources=[latex_escape(source) for source in sources],
        )
    )
    files = {".csv": csv_text(table, list(COLUMNS))}
    return tex, {"table": "checkpoints", "scale": job.scale, "rows": table, "provenance": record, "files": files}
