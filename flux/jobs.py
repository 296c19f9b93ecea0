"""Job specs: the JSON a rule hands to its `flux` CLI verb.

The Snakefile passes `job_spec(config, verb, target)` as a rule param (so Snakemake's params trigger
reruns exactly when a job's settings change), and `flux <verb> <target> --config ...` builds the very
same spec by hand. Paths in a spec are the rule's inputs and outputs, computed by `Config`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flux.config import Config
from flux.data.job_spec import DownloadJob, IndexJob, Kinetics710Job, SynthJob
from flux.data.scenes import RENDER_VERSION
from flux.errors import ConfigError
from flux.eval.spec import EvaluateSpec
from flux.models.import_spec import ImportSpec
from flux.tables.job_spec import DocumentJob, FigureJob, PdfJob, table_job
from flux.tables.sources import SETTINGS_TABLES, TABLE8_ROLES, claim_sides
from flux.train.inheritance import heads_record, parent_plan, trained_heads
from flux.train.spec import TrainSpec
from flux.verbs import resolve
from flux.verbs import verb as verb_entry

# Registry fields that change no data job's output (descriptions; the split evaluation scores and the frame
# sampling, which training and evaluation specs carry themselves): kept out of data specs, so that editing
# them does not make Snakemake redo hours of downloading or probing.
DESCRIPTIVE_FIELDS = ("title", "homepage", "licence", "evaluation_split", "frame_sampling")


def semantic_entry(entry: dict[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in entry.items() if key not in DESCRIPTIVE_FIELDS}
    source = dict(kept["source"])
    if "local" in source:
        source["local"] = {**source["local"], "hint": ""}
    kept["source"] = source
    return kept


def _dataset(config: Config, dataset: str, verb: str) -> dict[str, Any]:
    if dataset not in config.datasets:
        raise ConfigError(f"`flux {verb} {dataset}`: unknown dataset; known: {', '.join(sorted(config.datasets))}")
    return {
        "dataset": dataset,
        "entry": semantic_entry(dict(config.datasets[dataset].raw)),
        "dataset_dir": str(config.dataset_dir(dataset)),
    }


def synth_spec(config: Config, dataset: str) -> dict[str, Any]:
    spec = _dataset(config, dataset, "synth")
    if config.datasets[dataset].source_kind != "synthetic":
        raise ConfigError(f"`flux synth {dataset}`: {dataset} is not a synthetic dataset; use `flux download {dataset}`")
    settings = config.synthetic
    spec.update(
        render_version=RENDER_VERSION,
        settings={
            "seed": settings.seed,
            "count_scale": settings.count_scale,
            "duration_s": list(settings.duration_s),
            "fps": list(settings.fps),
        },
        ready=str(config.ready_marker(dataset)),
    )
    return SynthJob.from_dict(spec).to_dict()  # the typed spec's shape, checked when the workflow plans


def download_spec(config: Config, dataset: str) -> dict[str, Any]:
    spec = _dataset(config, dataset, "download")
    if config.datasets[dataset].source_kind == "synthetic":
        raise ConfigError(f"`flux download {dataset}`: {dataset} is synthetic; use `flux synth {dataset}`")
    local = config.local_paths.get(dataset)
    spec.update(local_path=str(local) if local else None, ready=str(config.ready_marker(dataset)))
    return DownloadJob.from_dict(spec).to_dict()  # the typed spec's shape, checked when the workflow plans


def kinetics710_spec(config: Config, dataset: str) -> dict[str, Any]:
    spec = _dataset(config, dataset, "kinetics710")
    derived = config.datasets[dataset].derived
    if derived is None or derived.builder != "kinetics710":
        raise ConfigError(f"`flux kinetics710 {dataset}`: {dataset} is not derived with the kinetics710 builder")
    spec.update(
        # a list: precedence (which release's row wins a duplicate) must survive JSON key sorting
        sources=[{"role": role, **_dataset(config, source, "kinetics710")} for role, source in derived.sources.items()],
        ready=str(config.ready_marker(dataset)),
    )
    return Kinetics710Job.from_dict(spec).to_dict()  # the typed spec's shape, checked when the workflow plans


def media_root(config: Config, dataset: str) -> str:
    return str(config.dataset_dir(dataset) / config.datasets[dataset].media_dir)


def index_spec(config: Config, dataset: str) -> dict[str, Any]:
    spec = _dataset(config, dataset, "index")
    derived = config.datasets[dataset].derived
    sources = list(derived.sources.values()) if derived is not None else []
    spec.update(
        media_roots={name: media_root(config, name) for name in [dataset, *sources]},
        data_dir=str(config.data_dir),
        probe_cache=str(config.probe_cache_path(dataset)),
        reuse_probes=[str(config.probe_cache_path(source)) for source in sources],
        ready=str(config.ready_marker(dataset)),
        manifest=str(config.manifest_path(dataset)),
        report=str(config.index_report_path(dataset)),
    )
    if config.thorough_index:  # only when set: the default spec (and so every manifest's params) stays as it was
        spec["thorough"] = True
    return IndexJob.from_dict(spec).to_dict()  # the typed spec's shape, checked when the workflow plans


def run_role(config: Config, run_id: str) -> str:
    """The role a fine-tuning run trains on, or whose classes an external checkpoint's classifier scores (its
    evaluation dataset by default)."""
    if run_id in config.external:
        return config.external[run_id].role
    dataset = config.runs[run_id].datasets[0]
    return next(role for role, bound in config.roles.items() if bound == dataset)


def evaluation_roles(config: Config, run_id: str, protocol: Mapping[str, Any]) -> list[str]:
    return list(protocol.get("roles") or [run_role(config, run_id)])


def evaluation_splits(config: Config, role: str, protocol: Mapping[str, Any]) -> list[str]:
    """The splits a protocol scores on a role's dataset, in preference order (the first the manifest has):
    the protocol's own, else the dataset's `evaluation_split`, else val then test."""
    if protocol.get("splits"):
        return list(protocol["splits"])
    split = config.datasets[config.roles[role]].evaluation_split
    return [split] if split else ["val", "test"]


def evaluate_spec(config: Config, target: str) -> dict[str, Any]:
    """`target` is `<run>/<protocol>`: one checkpoint under one protocol of config/tables.yaml."""
    from flux.eval.protocols import expand_protocol

    run_id, _, name = target.partition("/")
    protocols = config.table_document["protocols"]
    if (run_id not in config.runs and run_id not in config.evaluated_checkpoints) or name not in protocols:
        raise ConfigError(
            f"`flux evaluate {target}`: give <run>/<protocol> with a run of the runs file (or a checkpoint of "
            f"`checkpoints.evaluate`) and a protocol of tables.yaml"
        )
    protocol = protocols[name]
    expanded = expand_protocol(name, protocol, evaluated_heads(config, run_id), config.unit_scale)
    roles = evaluation_roles(config, run_id, protocol)
    lineage = hashlib.sha256(
        json.dumps(
            {
                "run": run_lineage(config, run_id),
                "protocol": protocol,
                "prompts": config.table_document["prompts"],
                "data": {role: data_settings(config, config.roles[role]) for role in roles},
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()
    spec = {
        "eval": target,
        "run": run_id,
        "protocol": name,
        "task": protocol["task"],
        "views": [min(views, cap) for views, cap in zip(protocol["views"], config.max_views or protocol["views"])],
        "aggregate": protocol.get("aggregate", "softmax_mean"),
        "roles": [
            {
                "role": role,
                "dataset": config.roles[role],
                "manifest": str(config.manifest_path(config.roles[role])),
                "splits": evaluation_splits(config, role, protocol),
                "frame_sampling": config.datasets[config.roles[role]].frame_sampling,
            }
            for role in roles
        ],
        "settings": expanded.settings,
        "token_optimization": expanded.searches,
        "prompts": list(config.table_document["prompts"]),
        "checkpoint": str(config.checkpoint_path(run_id)),
        "text_encoder": str(config.teacher.text_encoder) if config.teacher.text_encoder else None,
        "data_dir": str(config.data_dir),
        "seed": config.seed,
        "workers": config.training.workers,
        "lineage": lineage,
        "out": str(config.metrics_path(run_id, name)),
    }
    if config.clip_cache:
        spec["clip_cache"] = str(config.clip_cache_dir)
    if name in config.max_videos:
        spec["max_videos"] = config.max_videos[name]
    if protocol["task"] == "chat":
        spec["max_new_tokens"] = config.chat.max_new_tokens
    return EvaluateSpec.from_dict(spec).to_dict()  # the typed spec's shape, checked when the workflow plans


def evaluated_heads(config: Config, run_id: str) -> dict[int, int]:
    """head -> tokens, for the heads evaluation may read: a run's trained heads, or an external checkpoint's."""
    if run_id in config.external:
        return dict(config.external[run_id].heads)
    return trained_heads(config.runs, run_id)


def import_spec(config: Config, name: str) -> dict[str, Any]:
    """`flux import <name>`: an external checkpoint of `checkpoints.evaluate` into this pipeline's format."""
    if name not in config.evaluated_checkpoints:
        raise ConfigError(
            f"`flux import {name}`: not a checkpoint of `checkpoints.evaluate` (selected: "
            f"{', '.join(config.evaluated_checkpoints) or 'none'})"
        )
    entry = config.external[name]
    dataset = config.roles[entry.role]
    spec = {
        "name": name,
        "preprocessing": dict(entry.preprocessing),
        "model": entry.model,
        "model_options": dict(entry.model_options),
        "trained_heads": heads_record(entry.heads),
        "label_dataset": dataset,
        "label_manifest": str(config.manifest_path(dataset)),
        "url": entry.url,
        "sha256": entry.sha256,
        "local_hint": entry.local_hint,
        "file": str(config.checkpoint_files[name]) if name in config.checkpoint_files else None,
        "file_key": f"checkpoints.files.{name}",
        "download_dir": str(config.external_download_dir(name)),
        "checkpoint": str(config.checkpoint_path(name)),
        "summary": str(config.run_dir(name) / "final.json"),
        "head_map": None,
        "head_map_key": dataset,
    }
    if entry.head_map:
        spec["head_map"] = str(config.head_map_path(config.roles[entry.head_map]))
    # what shapes the imported weights: not the descriptive fields (title, how to get a file by hand), whose edits
    # must not re-import and re-evaluate a model (the published numbers are the table's, not the import's)
    semantic = {key: value for key, value in spec.items() if key != "local_hint"}
    spec["lineage"] = hashlib.sha256(json.dumps(semantic, sort_keys=True, default=str).encode()).hexdigest()
    return ImportSpec.from_dict(spec).to_dict()  # the typed spec's shape, checked when the workflow plans


def table_evaluations(config: Config, table: str) -> list[tuple[str, str]]:
    """(run, protocol) pairs a table reads: runs not trained in this configuration are left out."""
    from flux.tables.layout import table_runs

    layout = config.table_document["tables"].get(table)
    if layout is None:
        return []
    return [(run, layout["protocol"]) for run in table_runs(table, layout) if config.measured_as(run)]


def table_spec(config: Config, table: str) -> dict[str, Any]:
    """The spec of a table, in the shape of its typed spec (flux.tables.job_spec, checked when the workflow plans)."""
    return table_job(table_fields(config, table)).to_dict()


def table_fields(config: Config, table: str) -> dict[str, Any]:
    """What a table's spec holds, as its builder writes it (the typed spec keeps its keys and their order)."""
    if table == "recipe":
        spec = recipe_table_spec(config)
    elif table == "checkpoints":
        spec = checkpoints_table_spec(config)
    elif table in config.table_document["tables"]:
        spec = cells_table_spec(config, table)
    elif table in SETTINGS_TABLES:
        spec = settings_table_spec(config, table)
    elif table == "supp_table8":
        spec = table8_spec(config)
    elif table == "claims":
        spec = claims_spec(config)
    else:
        raise ConfigError(f"`flux table {table}`: unknown table; define it in config/tables.yaml")
    return spec


def table8_spec(config: Config) -> dict[str, Any]:
    table = "supp_table8"
    rows = [
        {"role": role, "dataset": config.roles[role], "manifest": str(config.manifest_path(config.roles[role]))}
        for role in TABLE8_ROLES
        if role in config.roles
    ]
    return {
        "table": table,
        "scale": config.scale,
        "rows": rows,
        "missing_roles": [role for role in TABLE8_ROLES if role not in config.roles],
        "corpora": {name: list(members) for name, members in config.corpora.items()},
        "paper_numbers": str(config.paper_numbers_path),
        "config_digest": config.digest,
        "out": str(config.table_path(table)),
    }


def claims_spec(config: Config) -> dict[str, Any]:
    """Every claim of config/tables.yaml with the metrics file of each side (None where this configuration does not
    train the run) and the positions of its paper cells."""
    document = config.table_document
    claims = []
    for entry in document.get("claims", []):
        metric = entry.get("log") or entry.get("metric", "top1")
        sides = claim_sides(entry)
        paper = entry.get("paper") or {}
        claim = {
            "id": entry["id"],
            "claim": entry["claim"],
            "note": entry.get("note", ""),
            "protocol": entry.get("protocol"),
            "role": entry.get("role"),
            "sides": [_claim_side(config, entry, side, metric) for side in sides],
            "paper_table": paper.get("table"),
            "paper_better": _paper_cells(document, entry, "better"),
            "paper_against": _paper_cells(document, entry, "against"),
        }
        if "log" in entry:
            claim["log"] = entry["log"]
        claims.append(claim)
    return {
        "table": "claims",
        "kind": "claims",
        "scale": config.scale,
        "claims": claims,
        "paper_numbers": str(config.paper_numbers_path),
        "config_digest": _table_digest(config),
        "out": str(config.table_path("claims")),
    }


def _claim_side(config: Config, entry: Mapping[str, Any], side: Mapping[str, Any], metric: str) -> dict[str, Any]:
    spec = {
        "run": side["run"],
        "keys": list(side.get("keys", [])),
        "metric": side.get("metric", metric),
        "metrics": _claim_source(config, entry, side["run"]),
    }
    if config.claim_replicas and side.get("replicas") and spec["metrics"]:
        for replica in side["replicas"]:
            differ = config.seed_replica_differences(side["run"], replica)
            if differ:
                raise ConfigError(
                    f"claims.{entry['id']}: {replica} is no seed replica of {side['run']} (they differ in {', '.join(differ)}); "
                    f"a replica repeats its run with another `seed` in the runs file"
                )
        spec["replicas"] = [_claim_source(config, entry, replica) for replica in side["replicas"]]
        if None in spec["replicas"]:
            raise ConfigError(f"claims.{entry['id']}: this configuration trains {side['run']} but not all of {side['replicas']}")
    return spec


def _claim_source(config: Config, entry: Mapping[str, Any], run: str) -> str | None:
    """A claim side's file: the run's metrics under the claim's protocol, or its training log (`log` claims); None
    where this configuration does not train the run."""
    measured = config.measured_as(run)
    if measured is None:
        return None
    if "log" in entry:
        return str(config.run_dir(measured) / "metrics.jsonl")
    return str(config.metrics_path(measured, entry["protocol"]))


def _paper_cells(document: Mapping[str, Any], entry: Mapping[str, Any], side: str) -> list[list[Any]]:
    """A claim's paper cells of one side as [row, column position] in config/paper_numbers.yaml's value lists."""
    from flux.tables.layout import columns_of

    paper = entry.get("paper") or {}
    if side not in paper:
        return []
    columns = [column.id for column in columns_of(paper["table"], document["tables"][paper["table"]])]
    unknown = sorted({column for _, column in paper[side] if column not in columns})
    if unknown:
        raise ConfigError(f"claims.{entry['id']}.paper.{side}: {unknown} are not columns of {paper['table']} ({columns})")
    return [[row, columns.index(column)] for row, column in paper[side]]


def cells_table_spec(config: Config, table: str) -> dict[str, Any]:
    from flux.eval.protocols import expand_protocol
    from flux.tables.layout import table_runs

    layout = config.table_document["tables"][table]
    protocol = config.table_document["protocols"][layout["protocol"]]
    evaluations = table_evaluations(config, table)
    return {
        "table": table,
        "kind": "cells",
        "scale": config.scale,
        "layout": layout,
        "metrics": {run: str(config.metrics_path(config.measured_as(run), name)) for run, name in evaluations},
        "keys": {
            run: sorted(expand_protocol(name, protocol, trained_heads(config.runs, run), config.unit_scale).keys)
            for run, name in evaluations
        },
        "untrained": [run for run in table_runs(table, layout) if not config.measured_as(run)],
        "run_facts": {run: {"pretraining_data": pretraining_data(config, run)} for run, _ in evaluations},
        "paper_numbers": str(config.paper_numbers_path),
        "config_digest": _table_digest(config),
        "out": str(config.table_path(table)),
    }


def pretraining_data(config: Config, run_id: str) -> str:
    """The data of the run's Flux-UMT ancestor (itself included) as the tables print it ("K710+MiT+SSv2"), or
    "--" for a run with no pre-training in its chain."""
    labels = config.table_document.get("data_labels", {})
    role_of = {dataset: role for role, dataset in reversed(list(config.roles.items()))}
    run = config.runs[run_id]
    while run.stage != "umt":
        if run.parent is None:
            return "--"
        run = config.runs[run.parent]
    roles = [role_of[dataset] for dataset in run.datasets]
    unnamed = [role for role in roles if role not in labels]
    if unnamed:
        raise ConfigError(f"tables file: data_labels lacks {unnamed} (run {run.id}'s data); add how to print them")
    return "+".join(labels[role] for role in roles)


def recipe_table_spec(config: Config) -> dict[str, Any]:
    """Every run the configuration trains with the facts its recipe row needs (teacher depth, flips); the other runs
    of the runs file (an imported teacher, another run's job, runs not selected) are named as not trained here."""
    from flux.models.sizes import SIZES
    from flux.train.runs import run_to_dict

    imported = [run for run in config.runs if config.runs[run].stage == "teacher" and config.teacher.weights]
    teacher_depth = SIZES[config.runs["teacher"].model].depth if "teacher" in config.runs else None
    unflipped = sorted({role for role, dataset in config.roles.items() if not config.datasets[dataset].allow_flip})
    flip = "yes" + (f", except {', '.join(unflipped)}" if unflipped else "")  # the registry's rule, for every run
    excluded = [f"{run} (imported from teacher.weights)" for run in imported]
    excluded += [f"{run} ({other}'s job: training.same_runs)" for run, other in config.same_runs.items()]
    unselected = [run for run in config.runs if run not in config.selected_runs and run not in config.same_runs]
    if unselected:  # named where few (the claims' seed replicas at paper scale), else counted (a small selection)
        named = ", ".join(unselected) if len(unselected) <= 8 else f"{len(unselected)} other runs of the runs file"
        excluded.append(f"{named} (not selected: training.runs, evaluation.claim_replicas)")
    runs = {}
    for run_id, run in config.runs.items():
        if run_id in imported or run_id not in config.selected_runs:
            continue
        facts = {"teacher_depth": teacher_depth if run.stage == "umt" else None, "flip": flip}
        runs[run_id] = {**run_to_dict(run), "facts": facts}
    return {
        "table": "recipe",
        "kind": "recipe",
        "scale": config.scale,
        "runs": runs,
        "chains": {run_id: list(run.recipes) for run_id, run in config.runs.items()},
        "reference": str(config.recipe_reference_path),
        "excluded": excluded,
        "config_digest": _table_digest(config),
        "out": str(config.results_dir / "tables" / "recipe.tex"),
    }


def checkpoints_table_spec(config: Config) -> dict[str, Any]:
    """Every evaluated external checkpoint, the metrics file of each of its protocols, its published numbers."""
    if not config.evaluated_checkpoints:
        raise ConfigError("`flux table checkpoints`: no checkpoint is selected; list registry entries under checkpoints.evaluate")
    checkpoints = []
    for name in config.evaluated_checkpoints:
        entry = config.external[name]
        checkpoints.append(
            {
                "name": name,
                "title": entry.title,
                "evaluations": [
                    {"protocol": protocol, "metrics": str(config.metrics_path(name, protocol))}
                    for protocol in config.evaluated_protocols(name)
                ],
                "published": [vars(number) for number in entry.published],
            }
        )
    return {
        "table": "checkpoints",
        "kind": "checkpoints",
        "scale": config.scale,
        "checkpoints": checkpoints,
        "config_digest": _table_digest(config),
        "out": str(config.results_dir / "tables" / "checkpoints.tex"),
    }


def training_flip(config: Config, run_id: str) -> str:
    """Whether a run's training clips are flipped: each dataset's registry entry decides (SSv2's are not)."""
    datasets = config.runs[run_id].datasets
    unflipped = [dataset for dataset in datasets if not config.datasets[dataset].allow_flip]
    if not unflipped:
        return "yes"
    return "no" if len(unflipped) == len(datasets) else f"yes, except {', '.join(unflipped)}"


def settings_table_spec(config: Config, table: str) -> dict[str, Any]:
    from flux.train.runs import run_to_dict

    stage = {"supp_table5": "umt", "supp_table6": "finetune", "supp_table7": "clip"}[table]
    return {
        "table": table,
        "kind": "settings",
        "scale": config.scale,
        "stage": stage,
        "runs": {
            run: {**run_to_dict(config.runs[run]), "facts": {"flip": training_flip(config, run)}}
            for run in config.selected_runs
            if config.runs[run].stage == stage
        },
        "unit_scale": {"frames": config.unit_scale.frames, "resolution": config.unit_scale.resolution},
        "paper_numbers": str(config.paper_numbers_path),
        "config_digest": _table_digest(config),
        "out": str(config.table_path(table)),
    }


def _table_digest(config: Config) -> str:
    return hashlib.sha256((config.digest + json.dumps(config.table_document, sort_keys=True)).encode()).hexdigest()


def document_spec(config: Config, target: str) -> dict[str, Any]:
    figures = config.table_document.get("figures", {})
    spec = {
        "tables": [str(config.table_path(table)) for table in ("claims", *config.tables)],  # the claims first
        "figures": [{"path": str(config.figure_path(name)), "caption": figures[name]["caption"]} for name in config.figures],
        "scale": config.scale,
        "config_digest": _table_digest(config),
        "out": str(config.results_dir / "tables" / "all.tex"),
    }
    return DocumentJob.from_dict(spec).to_dict()  # the typed spec's shape, checked when the workflow plans


def figure_spec(config: Config, name: str) -> dict[str, Any]:
    """The spec of a figure, in the shape of its typed spec (flux.tables.job_spec.FigureJob)."""
    return FigureJob.from_dict(figure_fields(config, name)).to_dict()


def figure_fields(config: Config, name: str) -> dict[str, Any]:
    figures = config.table_document.get("figures", {})
    if name not in figures:
        raise ConfigError(f"`flux figure {name}`: unknown figure; known: {', '.join(figures)}")
    figure = figures[name]
    spec: dict[str, Any] = {"figure": name, "kind": figure["kind"], "caption": figure["caption"], "scale": config.scale}
    if "panels" in figure:

        def metrics(runs: Mapping[str, str], protocol: str) -> dict[str, str]:
            measured = {label: config.measured_as(run) for label, run in runs.items()}
            return {label: str(config.metrics_path(run, protocol)) for label, run in measured.items() if run}

        spec["panels"] = []
        for panel in figure["panels"]:
            drawn = {key: value for key, value in panel.items() if key not in ("runs", "baselines")}
            drawn["metrics"] = metrics(panel["runs"], panel["protocol"])
            if "baselines" in panel:
                drawn["baseline_metrics"] = metrics(panel["baselines"], panel["protocol"])
            if "bands" in panel:  # the sides this configuration runs: the embedded default's 196-252 are all 56 px
                drawn["pixels"] = {str(r): config.unit_scale.pixels(r) for band in panel["bands"].values() for r in band}
            spec["panels"].append(drawn)
    else:
        spec["groups"] = figure.get("groups", [])
        measured = {label: config.measured_as(run) for label, run in figure["runs"].items()}
        spec["runs"] = {
            label: {"log": str(config.run_dir(run) / "metrics.jsonl"), "summary": str(config.run_dir(run) / "final.json")}
            for label, run in measured.items()
            if run
        }
    spec["config_digest"] = _table_digest(config)
    spec["out"] = str(config.figure_path(name))
    return spec


def figure_inputs(config: Config, name: str) -> list[str]:
    spec = FigureJob.from_dict(figure_fields(config, name))
    if spec.panels is not None:
        return [
            path for panel in spec.panels for path in (*panel["metrics"].values(), *panel.get("baseline_metrics", {}).values())
        ]
    return [path for files in spec.runs.values() for path in files.values()]


def pdf_spec(config: Config, target: str) -> dict[str, Any]:
    tables = config.results_dir / "tables"
    return PdfJob(document=str(tables / "all.tex"), out=str(tables / "all.pdf")).to_dict()


def data_settings(config: Config, dataset: str) -> dict[str, Any]:
    """Everything in the configuration that shapes a dataset's manifest: its source (or, for a derived
    dataset, its builder and its sources') and its indexing."""
    derived = config.datasets[dataset].derived
    if derived is not None:
        sources = [data_settings(config, source) for source in derived.sources.values()]
        made = {"derived": kinetics710_spec(config, dataset), "sources": sources}
    elif config.datasets[dataset].source_kind == "synthetic":
        made = synth_spec(config, dataset)
    else:
        made = download_spec(config, dataset)
    return {"made": made, "index": index_spec(config, dataset)}


def run_lineage(config: Config, run_id: str) -> str:
    """sha256 of a run's settings, its data's and its ancestors' (parent chain, and the teacher for Flux-UMT
    and Flux-CLIP): the configuration digest of the run's provenance and of its Snakemake params. Unlike a
    digest of the whole configuration it changes only when an edit reaches the run (an edited table retrains
    nothing), and it still reaches the run when its checkpoint inputs are treated as ancient (a
    `consider-ancient` profile after `dvc pull`), through which Snakemake does not propagate reruns."""
    key = ("lineage", run_id)
    if key not in config.memo:
        config.memo[key] = _lineage(config, run_id)
    return config.memo[key]


def chat_datasets(config: Config) -> list[str]:
    """The chat stage's training data: what its runs read (the tiny LM's corpus too)."""
    found = [dataset for run in config.runs_of_stage("chat") for dataset in config.runs[run].datasets]
    return list(dict.fromkeys(found)) or ([config.roles["chat"]] if "chat" in config.roles else [])


def llm_spec(config: Config, target: str = "tiny") -> dict[str, Any]:
    from flux.train.spec import LanguageModelSpec

    if config.chat.llm:
        raise ConfigError(f"chat.llm is set ({config.chat.llm}): the chat stage reads that LLM, no tiny one is trained")
    datasets = chat_datasets(config)
    if not datasets:
        raise ConfigError("the tiny LM learns from the chat stage's data: bind the `chat` role (roles.chat)")
    settings = dict(config.chat.tiny_llm)
    spec = LanguageModelSpec(
        manifests={dataset: str(config.manifest_path(dataset)) for dataset in datasets},
        model={key: settings[key] for key in ("embed_dim", "depth", "num_heads", "max_length")},
        epochs=float(settings["epochs"]),
        batch_size=int(settings["batch_size"]),
        lr=float(settings["lr"]),
        seed=config.seed,
        out=str(config.tiny_llm_path),
        summary=str(config.tiny_llm_path.with_suffix(".json")),
    )
    data = {dataset: data_settings(config, dataset) for dataset in datasets}
    lineage = hashlib.sha256(json.dumps({"spec": spec.to_dict(), "data": data}, sort_keys=True, default=str).encode()).hexdigest()
    return replace(spec, lineage=lineage).to_dict()


def llm_lineage(config: Config) -> str:
    """The chat stage's LLM: the tiny one's training, or the configured folder's path."""
    return llm_spec(config)["lineage"] if not config.chat.llm else str(config.chat.llm)


def _lineage(config: Config, run_id: str) -> str:
    if run_id in config.external:
        return import_spec(config, run_id)["lineage"]
    run = config.runs[run_id]
    parts: dict[str, Any] = {
        "settings": _train_settings(config, run_id).to_dict(),
        "data": {dataset: data_settings(config, dataset) for dataset in run.datasets},
    }
    if run.parent:
        parts["parent"] = run_lineage(config, run.parent)
    if run.stage in ("umt", "clip"):
        parts["teacher"] = run_lineage(config, "teacher")
    if run.stage == "chat":
        parts["llm"] = llm_lineage(config)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def train_spec(config: Config, run_id: str) -> dict[str, Any]:
    return replace(_train_settings(config, run_id), lineage=run_lineage(config, run_id)).to_dict()


def _train_settings(config: Config, run_id: str) -> TrainSpec:
    from flux.train.runs import run_to_dict

    if run_id not in config.runs:
        raise ConfigError(f"`flux train {run_id}`: unknown run; the runs are in config/runs.yaml")
    run = config.runs[run_id]
    scale = config.unit_scale
    manifests = {dataset: str(config.manifest_path(dataset)) for dataset in run.datasets}
    return TrainSpec(
        run=run_to_dict(run),
        seed=config.seed + config.run_seeds.get(run_id, 0),
        data_dir=str(config.data_dir),
        manifests=manifests,
        frame_sampling={dataset: config.datasets[dataset].frame_sampling for dataset in run.datasets},
        parent_checkpoint=str(config.checkpoint_path(run.parent)) if run.parent else None,
        teacher_checkpoint=str(config.checkpoint_path("teacher")) if run.stage in ("umt", "clip") else None,
        text_encoder=str(config.teacher.text_encoder) if run.stage == "clip" and config.teacher.text_encoder else None,
        teacher_weights=str(config.teacher.weights) if run.stage == "teacher" and config.teacher.weights else None,
        teacher_grid=list(config.teacher.grid) if config.teacher.grid else None,
        checkpoint=str(config.checkpoint_path(run_id)),
        trained_heads=heads_record(trained_heads(config.runs, run_id)),
        parent_plan=plan.to_dict() if (plan := parent_plan(config.runs, run_id)) else None,
        summary=str(config.run_dir(run_id) / "final.json"),
        metrics=str(config.run_dir(run_id) / "metrics.jsonl"),
        state_dir=str(config.state_dir(run_id)),
        workers=config.training.workers,
        checkpoint_every=config.training.checkpoint_every,
        log_every=config.training.log_every,
        precision=config.training.precision,
        backend=config.training.backend,
        zero_stage=config.training.zero_stage,
        reference_input=[scale.frame(8), scale.pixels(224)],
        val_manifest=manifests[run.datasets[0]] if run.stage == "finetune" else None,
        validation_videos=config.training.validation_videos if run.stage == "finetune" else None,
        head_map=str(config.head_map_path(run.head_map)) if run.head_map else None,
        head_map_key=run.datasets[0] if run.head_map else None,
        clip_cache=str(config.clip_cache_dir) if config.clip_cache and run.stage == "finetune" else None,
        llm=str(config.llm_path) if run.stage == "chat" else None,
        projector=config.chat.projector if run.stage == "chat" else None,
    )


def job_spec(config: Config, verb: str, target: str) -> dict[str, Any]:
    entry = verb_entry(verb)
    if not entry.is_job:
        raise ConfigError(f"`flux {verb}` is a command, not a job: it has no job spec")
    return resolve(entry.spec)(config, target)


def job_spec_json(config: Config, verb: str, target: str) -> str:
    return json.dumps(job_spec(config, verb, target), sort_keys=True, separators=(",", ":"))
