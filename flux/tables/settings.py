"""Supplementary Tables 5-7: the training settings actually used, read from the resolved runs of this
configuration (in its units: the embedded default's frames, pixels and tokens are scaled, its epochs and
batch sizes are its own), beside the paper's column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flux.errors import ConfigError
from flux.io import csv_text
from flux.provenance import latex_comment, provenance
from flux.tables.job_spec import SettingsJob
from flux.tables.latex import SCALE_NOTE, environment, latex_escape
from flux.tables.sources import load_paper_numbers


def _range(values: list[int]) -> str:
    if len(values) == 1:
        return str(values[0])
    step = values[1] - values[0]
    return (
        f"({values[0]}, {values[-1]}, stride={step})" if all(b - a == step for a, b in zip(values, values[1:])) else str(values)
    )


def _augment(run: dict[str, Any]) -> str:
    augment = run["augment"]
    parts = []
    if augment.get("crop") == "multi_scale":
        parts.append(f"MultiScaleCrop {sorted(augment.get('scales', []))}")
    elif augment.get("crop"):
        parts.append(f"RandomResizedCrop {list(augment.get('scale', []))}")
    if augment.get("rand_augment"):
        parts.append(f"RandAug {augment['rand_augment']}")
    for key in ("mixup", "cutmix"):
        if augment.get(key):
            parts.append(f"{key} {augment[key]}")
    if augment.get("random_erasing"):
        parts.append(f"random erasing {augment['random_erasing']}")
    return ", ".join(parts) or "none"


def _lr(run: dict[str, Any]) -> str:
    """The recipe's lr; a base lr with the lr it trains at after the linear scaling rule."""
    if run["lr_reference_batch"] is None:
        return f"{run['optim']['lr']:g}"
    return f"{run['base_lr']:g} (trains at {run['optim']['lr']:.3g})"


def _batch(run: dict[str, Any]) -> str:
    repeats = run["augment"].get("repeats", 1)
    return f"{run['batch_size']}" + (f" ({repeats} clips each)" if repeats > 1 else "")


EXTRACTORS: dict[str, Callable[[dict[str, Any]], str]] = {
    "optimizer": lambda run: "AdamW",
    "momentum": lambda run: "$\\beta_1, \\beta_2$ = " + ", ".join(f"{beta:g}" for beta in run["optim"]["betas"]),
    "weight_decay": lambda run: f"{run['optim']['weight_decay']:g}",
    "lr_schedule": lambda run: "cosine decay",
    "lr": _lr,
    "layer_decay": lambda run: f"{run['optim']['layer_decay']:g}" if run["optim"]["layer_decay"] else "none",
    "batch_size": _batch,
    "warmup_epochs": lambda run: f"{run['optim']['warmup_epochs']:g}",
    "epochs": lambda run: f"{run['optim']['epochs']:g}",
    "teacher_tokens": lambda run: str(run["teacher_budget"]),
    "student_tokens": lambda run: ", ".join(map(str, run["budgets"])) or "all",
    "frames": lambda run: _range(run["input"]["spec"]["frames"]),
    "resolution": lambda run: _range(run["input"]["spec"]["resolutions"]),
    "token_threshold": lambda run: f"({run['input']['spec']['token_min']}, {run['input']['spec']['token_max']})",
    "drop_path": lambda run: f"{run['model_options'].get('drop_path_rate', 0.0):g}",
    "label_smoothing": lambda run: f"{run['augment'].get('label_smoothing', 0.0):g}",
    "flip": lambda run: run["facts"]["flip"],  # flux.jobs.training_flip
    "augmentation": _augment,
    "freeze": lambda run: run["freeze"],
    "datasets": lambda run: ", ".join(run["datasets"]),
}


def _paper_cells(row: dict[str, Any]) -> list[str]:
    """The paper's cell(s) of a row as printed, the first carrying the dagger of the paper's footnote."""
    cells = [latex_escape(value) for value in (row["paper"] if isinstance(row["paper"], list) else [row["paper"]])]
    if "footnote" in row:
        cells[0] += "\\textsuperscript{$\\dagger$}"
    return cells


def _paper_text(printed: str | list[str], paper_columns: list[str] | None) -> str:
    """One CSV field: the paper's value, or each paper column's ('SthSth V2: no; Others: yes')."""
    return "; ".join(f"{name}: {value}" for name, value in zip(paper_columns, printed)) if paper_columns else printed


def render_settings(job: SettingsJob) -> tuple[str, dict[str, Any]]:
    table = job.table
    paper = load_paper_numbers(Path(job.paper_numbers), table)
    runs = job.runs
    shown = [run for run in paper["columns"] if run in runs]
    paper_columns = paper.get("paper_columns")  # the paper's own columns (supp Table 5: SthSth V2, Others)
    rows = []
    for key, reference in paper["settings"].items():
        if key not in EXTRACTORS:
            raise KeyError(f"{job.paper_numbers}: {table}.settings.{key} has no extractor; known: {', '.join(EXTRACTORS)}")
        printed = reference["paper"]
        if isinstance(printed, list) != bool(paper_columns) or (paper_columns and len(printed) != len(paper_columns)):
            shape = f"a list of {len(paper_columns)} values, one per paper_columns entry" if paper_columns else "one string"
            raise ConfigError(f"{job.paper_numbers}: {table}.settings.{key}.paper must be {shape}, as the paper prints it")
        values = [EXTRACTORS[key](runs[run]) for run in shown]
        row = {"setting": key, "label": latex_escape(reference["label"]), "values": values, "paper": printed}
        rows.append({**row, **{extra: reference[extra] for extra in ("footnote", "official") if extra in reference}})
    official = any("official" in row for row in rows)  # the released code's values, apart from the paper's
    paper_headers = [f"paper: {latex_escape(name)}" for name in paper_columns] if paper_columns else ["paper"]
    record = provenance(job.config_digest)
    caption = f"{paper['caption']}. {SCALE_NOTE[job.scale].capitalize()}."
    body = [
        " & ".join(
            [
                row["label"],
                *[value if value.startswith("$") else latex_escape(value) for value in row["values"]],
                *_paper_cells(row),
                *([latex_escape(row.get("official", ""))] if official else []),
            ]
        )
        + " \\\\"
        for row in rows
    ]
    tex = (
        environment()
        .get_template("settings.tex.j2")
        .render(
            provenance=latex_comment(record),
            table=table,
            scale=job.scale,
            caption=latex_escape(caption),
            column_spec="l" + "l" * len(shown) + "l" * len(paper_headers) + ("l" if official else ""),
            header=" & ".join(
                ["config", *[latex_escape(run) for run in shown], *paper_headers, *(["official code"] if official else [])]
            ),
            body=body,
            missing=latex_escape(", ".join(run for run in paper["columns"] if run not in runs)),
            footnotes=[latex_escape(row["footnote"]) for row in rows if "footnote" in row],
        )
    )
    lines = [
        {
            "setting": row["setting"],
            "label": row["label"],
            "run": run,
            "value": value,
            "paper": _paper_text(row["paper"], paper_columns),
            "official": row.get("official"),
        }
        for row in rows
        for run, value in zip(shown, row["values"])
    ]
    files = {".csv": csv_text(lines, ["setting", "label", "run", "value", "paper", "official"])}
    return tex, {"table": table, "scale": job.scale, "columns": shown, "rows": rows, "provenance": record, "files": files}
