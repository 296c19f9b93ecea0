"""The recipe table: every hyper-parameter of every training run, three values side by side: the paper's
settings table, the official code's effective value (with the file it comes from), and ours as the
configuration resolves it; a difference is marked and its reason read from config/recipe_reference.yaml.

It is built from the configuration alone (no data, no training), so a user checks a cluster configuration
before spending GPU hours: `snakemake results/tables/recipe.tex --configfile config/paper.yaml`. A difference
without a reason, a reason for another value than ours (its `ours`: so that an inherited or stale reason never
covers a value it was not written for), or a reason where nothing differs, is a configuration error naming the
run and parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flux.errors import ConfigError
from flux.io import csv_text
from flux.provenance import latex_comment, provenance
from flux.tables.job_spec import RecipeJob
from flux.tables.latex import SCALE_NOTE, environment, latex_escape
from flux.train.runs import teacher_layers
from flux.yamlfiles import read_yaml_file

Run = Mapping[str, Any]  # a resolved run as job specs carry it (flux.train.runs.run_to_dict), plus its facts


def _optional(value: Any) -> Any:
    return None if value in (None, 0, 0.0) else value


def _teacher_layers(run: Run) -> list[int] | None:
    depth = run["facts"]["teacher_depth"]
    return teacher_layers(depth, run["distill_layers"], run["teacher_layer_interval"]) if depth else None


def _crop(run: Run) -> str:
    augment = run["augment"]
    if augment.get("crop") == "multi_scale":
        return "multi-scale " + "/".join(f"{scale:g}" for scale in augment.get("scales", []))
    low, high = augment.get("scale", (0.08, 1.0))
    return f"random-resized {low:g}-{high:g}"


def _stages(*stages: str) -> Callable[[Run], bool]:
    return lambda run: run["stage"] in stages


TRAINED = _stages("umt", "clip", "finetune")


def _selects(run: Run) -> bool:
    """Budgets are a recipe's only where several are trained (Flux-UMT, Flux-Multi) or Flux-CLIP's one; a single
    budget or a direct input is the run's own design (its table row), not a recipe value."""
    return run["stage"] in ("umt", "clip") or run.get("method") == "multi"


# parameter -> (whether it applies to a run, how ours is read from the resolved run)
PARAMETERS: dict[str, tuple[Callable[[Run], bool], Callable[[Run], Any]]] = {
    "optimizer": (TRAINED, lambda run: "AdamW"),
    "betas": (TRAINED, lambda run: list(run["optim"]["betas"])),
    "eps": (TRAINED, lambda run: run["optim"]["eps"]),
    "weight_decay": (TRAINED, lambda run: run["optim"]["weight_decay"]),
    "lr": (TRAINED, lambda run: run["base_lr"]),
    "lr_scaling": (TRAINED, lambda run: f"x clips / {run['lr_reference_batch']}" if run["lr_reference_batch"] else "none"),
    "lr_effective": (TRAINED, lambda run: run["optim"]["lr"]),
    "min_lr": (TRAINED, lambda run: run["optim"]["min_lr"]),
    "warmup_start_lr": (TRAINED, lambda run: run["optim"]["warmup_lr"]),
    "schedule": (TRAINED, lambda run: "cosine"),
    "batch_size": (TRAINED, lambda run: run["batch_size"]),
    "clips_per_video": (_stages("umt", "finetune"), lambda run: run["augment"].get("repeats", 1)),
    "epochs": (TRAINED, lambda run: run["optim"]["epochs"]),
    "warmup_epochs": (TRAINED, lambda run: run["optim"]["warmup_epochs"]),
    "layer_decay": (TRAINED, lambda run: run["optim"]["layer_decay"]),
    "clip_grad": (TRAINED, lambda run: run["optim"]["clip_grad"]),
    "drop_path": (TRAINED, lambda run: run["model_options"].get("drop_path_rate", 0.0)),
    "head_drop_path": (_stages("finetune"), lambda run: 0.0),  # the model has none: the official one is never applied
    "frames": (TRAINED, lambda run: list(run["input"]["spec"]["frames"])),
    "resolutions": (TRAINED, lambda run: list(run["input"]["spec"]["resolutions"])),
    "token_threshold": (TRAINED, lambda run: [run["input"]["spec"]["token_min"], run["input"]["spec"]["token_max"]]),
    "budgets": (_selects, lambda run: list(run["budgets"])),
    "crop": (TRAINED, _crop),
    "flip": (TRAINED, lambda run: run["facts"]["flip"]),
    "rand_augment": (_stages("finetune"), lambda run: run["augment"].get("rand_augment")),
    "mixup": (_stages("finetune"), lambda run: run["augment"].get("mixup", 0.0)),
    "cutmix": (_stages("finetune"), lambda run: run["augment"].get("cutmix", 0.0)),
    "label_smoothing": (_stages("finetune"), lambda run: run["augment"].get("label_smoothing", 0.0)),
    "random_erasing": (_stages("finetune"), lambda run: run["augment"].get("random_erasing", 0.0)),
    "teacher_budget": (_stages("umt"), lambda run: run["teacher_budget"]),
    "distill_layers": (_stages("umt"), lambda run: run["distill_layers"]),
    "teacher_layers": (_stages("umt"), _teacher_layers),
    "distill_decoder": (_stages("umt"), lambda run: run["distill_decoder"]),
    "freeze": (_stages("clip"), lambda run: run["freeze"]),
    "temperature": (_stages("clip"), lambda run: run["temperature"]),
}


def same(ours: Any, reference: Any) -> bool:
    """Equal as values: numbers to relative 1e-9 (1e-3 and 0.001 alike), lists element by element."""
    if isinstance(ours, (list, tuple)) and isinstance(reference, (list, tuple)):
        return len(ours) == len(reference) and all(same(a, b) for a, b in zip(ours, reference))
    numbers = (int, float)
    if isinstance(ours, numbers) and isinstance(reference, numbers) and not isinstance(ours, bool):
        return math.isclose(ours, reference, rel_tol=1e-9, abs_tol=1e-15)
    return ours == reference


def show(value: Any) -> str:
    if value is None:
        return "--"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(item) for item in value) + "]"
    return str(value)


def reference_of(run_id: str, chain: list[str], document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """parameter -> {paper, official, source, reason}: the run's recipe chain's entries, most specific last,
    then the run's own."""
    merged: dict[str, dict[str, Any]] = {}
    for entries in [document.get("recipes", {}).get(recipe, {}) for recipe in chain] + [document.get("runs", {}).get(run_id, {})]:
        for parameter, entry in entries.items():
            if parameter not in PARAMETERS:
                raise ConfigError(f"recipe reference: unknown parameter '{parameter}' (known: {', '.join(PARAMETERS)})")
            merged[parameter] = {**merged.get(parameter, {}), **entry}
    return merged


def rows(job: RecipeJob) -> list[dict[str, Any]]:
    """One row per (run, parameter): the three values, whether ours differs, and why."""
    document = read_yaml_file(Path(job.reference))
    unknown = sorted(set(document.get("runs", {})) - set(job.chains))
    if unknown:
        raise ConfigError(f"{job.reference}: runs {unknown} are not runs of the runs file")
    compared = job.scale == "paper"  # below paper scale ours are scaled or replaced: shown, not compared
    out, problems = [], []
    for run_id, run in job.runs.items():
        reference = reference_of(run_id, job.chains[run_id], document)
        for parameter, (applies, read) in PARAMETERS.items():
            if not applies(run):
                continue
            ours = read(run)
            entry = reference.get(parameter, {})
            paper, official = entry.get("paper"), entry.get("official")
            differs = [
                name
                for name, value in (("paper", paper), ("official", official))
                if compared and value is not None and not same(ours, value)
            ]
            reason = entry.get("reason") if compared else None
            where = f"{job.reference}: run {run_id} ({' > '.join(job.chains[run_id])}), {parameter}"
            if differs and not reason:
                problems.append(
                    f"{where}: ours {show(ours)} differs from the {' and '.join(differs)} value; give `ours` and a `reason`"
                )
            elif differs and not same(ours, entry.get("ours")):
                problems.append(
                    f"{where}: ours {show(ours)} is not the value its reason covers ({show(entry.get('ours'))}); "
                    f"give this run or recipe its own `ours` and `reason`"
                )
            if compared and reason and not differs:
                problems.append(f"{where}: a reason is given but ours equals every reference value; remove it")
            out.append(
                {
                    "run": run_id,
                    "stage": run["stage"],
                    "recipe": job.chains[run_id][-1] if job.chains[run_id] else "",
                    "parameter": parameter,
                    "paper": show(paper),
                    "official": show(official),
                    "official_source": entry.get("source", ""),
                    "ours": show(ours),
                    "differs_from": "+".join(differs),
                    "reason": reason or "",
                }
            )
    if problems:
        raise ConfigError("recipe table:\n" + "\n".join(problems))
    return out


def render(job: RecipeJob) -> tuple[str, dict[str, Any]]:
    """LaTeX (one block per recipe: runs with equal values share a line) and, under `files`, the CSV of every
    run and parameter."""
    table = rows(job)
    columns = ("recipe", "parameter", "paper", "official", "official_source", "ours", "differs_from", "reason")
    order = {parameter: index for index, parameter in enumerate(PARAMETERS)}
    groups: dict[tuple[str, ...], list[str]] = {}
    for row in sorted(table, key=lambda row: (row["recipe"], order[row["parameter"]], row["run"])):
        groups.setdefault(tuple(row[column] for column in columns), []).append(row["run"])
    body, previous, sources = [], None, {}
    for (recipe, parameter, paper, official, source, ours, differs, reason), runs in groups.items():
        if previous is not None and recipe != previous:
            body.append("\\midrule")
        previous = recipe
        if source:
            sources.setdefault(source, len(sources) + 1)
        mark = "\\textsuperscript{$\\neq$" + differs + "}" if differs else ""
        cells = [
            latex_escape(recipe),
            latex_escape(parameter.replace("_", " ")),
            latex_escape(paper),
            latex_escape(official) + (f"\\textsuperscript{{[{sources[source]}]}}" if source else ""),
            latex_escape(ours) + mark,
            "\\scriptsize " + latex_escape(", ".join(runs)),
            "\\scriptsize " + latex_escape(reason),
        ]
        body.append(" & ".join(cells) + " \\\\")
    record = provenance(job.config_digest)
    caption = (
        "Training recipes: the paper's settings tables, the official code's effective values and ours, run by run"
        f". {SCALE_NOTE[job.scale].capitalize()}"
        + ("." if job.scale == "paper" else "; ours are this configuration's, not compared with the paper's.")
    )
    tex = (
        environment()
        .get_template("recipe.tex.j2")
        .render(
            provenance=latex_comment(record),
            caption=latex_escape(caption),
            body=body,
            sources=[f"[{number}] {latex_escape(source)}" for source, number in sources.items()],
            excluded=latex_escape("; ".join(job.excluded)),
        )
    )
    differences = sum(1 for row in table if row["differs_from"])
    data = {
        "table": "recipe",
        "scale": job.scale,
        "differences": differences,
        "rows": table,
        "provenance": record,
        "files": {".csv": csv_text(table)},
    }
    return tex, data
