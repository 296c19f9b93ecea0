"""The job specs of `flux table`, `flux figure`, `flux document` and `flux pdf`, typed: flux.jobs builds them from the
configuration, their renderers read attributes, and a table's inputs in the workflow are the files its spec names
(`inputs()`). Fields are in the order of the keys flux.jobs writes (the spec is a
Snakemake param: its text decides whether a table is rebuilt; tests/tables/test_render.py checks the order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flux.errors import ConfigError
from flux.specs import WHEN_SET, JobSpec


@dataclass(frozen=True)
class ManifestRow(JobSpec):
    role: str
    dataset: str
    manifest: str


@dataclass(frozen=True)
class Table8Job(JobSpec):
    """Supplementary Table 8: the data each role of the configuration holds, from the manifests."""

    nested = {"rows": ManifestRow}

    table: str
    scale: str
    rows: list[ManifestRow]
    missing_roles: list[str]  # Table 8 roles this configuration does not bind
    corpora: dict[str, list[str]]
    paper_numbers: str
    config_digest: str
    out: str

    def inputs(self) -> dict[str, Any]:
        return {"manifests": sorted({row.manifest for row in self.rows}), "paper_numbers": self.paper_numbers}


@dataclass(frozen=True)
class CellsJob(JobSpec):
    """A grid table of config/tables.yaml: each cell a metric of a (run, protocol) evaluation."""

    table: str
    kind: str
    scale: str
    layout: dict[str, Any]  # the table's entry of config/tables.yaml (flux.tables.layout reads it)
    metrics: dict[str, str]  # run -> its metrics file under the table's protocol
    keys: dict[str, list[str]]  # run -> the settings its metrics file must hold
    untrained: list[str]  # runs of the table this configuration does not train: their rows are left out
    run_facts: dict[str, dict[str, Any]]  # run -> facts a row label may print (pre-training data)
    paper_numbers: str
    config_digest: str
    out: str

    def inputs(self) -> dict[str, Any]:
        return {"metrics": list(self.metrics.values()), "paper_numbers": self.paper_numbers}


@dataclass(frozen=True)
class RecipeJob(JobSpec):
    """Every run's hyper-parameters beside the paper's and the official code's."""

    table: str
    kind: str
    scale: str
    runs: dict[str, dict[str, Any]]  # run -> flux.train.runs.run_to_dict, plus its `facts`
    chains: dict[str, list[str]]  # every run of the runs file (trained here or not) -> its recipes, outermost first
    reference: str  # config/recipe_reference.yaml
    excluded: list[str]
    config_digest: str
    out: str

    def inputs(self) -> dict[str, Any]:
        return {"reference": self.reference}


@dataclass(frozen=True)
class CheckpointEvaluation(JobSpec):
    protocol: str
    metrics: str


@dataclass(frozen=True)
class CheckpointEntry(JobSpec):
    nested = {"evaluations": CheckpointEvaluation}

    name: str
    title: str
    evaluations: list[CheckpointEvaluation]
    published: list[dict[str, Any]]  # flux.external's published numbers, as dicts


@dataclass(frozen=True)
class CheckpointsJob(JobSpec):
    """The released checkpoints evaluated here beside their published numbers."""

    nested = {"checkpoints": CheckpointEntry}

    table: str
    kind: str
    scale: str
    checkpoints: list[CheckpointEntry]
    config_digest: str
    out: str

    def inputs(self) -> dict[str, Any]:
        return {"metrics": [evaluation.metrics for entry in self.checkpoints for evaluation in entry.evaluations]}


@dataclass(frozen=True)
class SettingsJob(JobSpec):
    """Supplementary Tables 5-7: the settings the runs of one stage use."""

    table: str
    kind: str
    scale: str
    stage: str
    runs: dict[str, dict[str, Any]]  # run -> flux.train.runs.run_to_dict
    unit_scale: dict[str, int]
    paper_numbers: str
    config_digest: str
    out: str

    def inputs(self) -> dict[str, Any]:
        return {"paper_numbers": self.paper_numbers}


@dataclass(frozen=True)
class ClaimSide(JobSpec):
    """One side of a claim: a run's per-item outcomes under the claim's protocol, averaged over `keys`."""

    run: str
    keys: list[str]  # empty for a training-log claim
    metric: str
    metrics: str | None  # the run's metrics file (or training log); None: the run is not trained in this configuration
    # the metrics files of the run's seed replicas, where the configuration repeats the claims' runs over seeds
    replicas: list[str] | None = field(default=None, metadata={WHEN_SET: True})

    @property
    def measured(self) -> list[str]:
        """The metrics files of every seed of this side (the run first)."""
        return [self.metrics, *(self.replicas or [])] if self.metrics else []


@dataclass(frozen=True)
class Claim(JobSpec):
    nested = {"sides": ClaimSide}

    id: str
    claim: str
    note: str
    protocol: str | None  # None: a training-log claim (`log`)
    role: str | None
    sides: list[ClaimSide]  # better, then against (absent when the claim is against chance)
    paper_table: str | None
    paper_better: list[list[Any]]  # [row, column position] cells of config/paper_numbers.yaml, averaged
    paper_against: list[list[Any]]
    log: str | None = field(default=None, metadata={WHEN_SET: True})  # a training-log metric (sides' `metrics`: logs)


@dataclass(frozen=True)
class ClaimsJob(JobSpec):
    """The claims table: each claim's measured effect, its interval and verdict, beside the paper's evidence."""

    nested = {"claims": Claim}

    table: str
    kind: str
    scale: str
    claims: list[Claim]
    paper_numbers: str
    config_digest: str
    out: str

    def inputs(self) -> dict[str, Any]:
        measured = sorted({path for claim in self.claims for side in claim.sides for path in side.measured})
        return {"metrics": measured, "paper_numbers": self.paper_numbers}


TABLE_JOBS: dict[str, type[JobSpec]] = {
    "supp_table8": Table8Job,
    "cells": CellsJob,
    "recipe": RecipeJob,
    "checkpoints": CheckpointsJob,
    "settings": SettingsJob,
    "claims": ClaimsJob,
}
TableJob = Table8Job | CellsJob | RecipeJob | CheckpointsJob | SettingsJob | ClaimsJob


def table_job(spec: dict[str, Any]) -> TableJob:
    """The typed spec of a table, by its `kind` (supplementary Table 8, alone of its kind, has none)."""
    kind = spec.get("kind", spec.get("table"))
    if kind not in TABLE_JOBS:
        raise ConfigError(f"table job spec: unknown kind {kind!r}; build it with `flux table <table> --config ...`")
    return TABLE_JOBS[kind].from_dict(spec)


@dataclass(frozen=True, kw_only=True)
class FigureJob(JobSpec):
    """A figure of config/tables.yaml: panels (accuracy against GFLOPs or frames) read metrics files, the others
    training logs."""

    figure: str
    kind: str  # accuracy_vs_gflops | accuracy_vs_frames | grad_norms | convergence | total_grad_norm
    caption: str
    scale: str
    panels: list[dict[str, Any]] | None = field(default=None, metadata={WHEN_SET: True})  # the accuracy_vs_* kinds
    groups: list[str] | None = field(default=None, metadata={WHEN_SET: True})  # the log-reading kinds
    runs: dict[str, dict[str, str]] | None = field(default=None, metadata={WHEN_SET: True})  # label -> log, summary
    config_digest: str
    out: str


@dataclass(frozen=True)
class FigureEntry(JobSpec):
    path: str
    caption: str


@dataclass(frozen=True)
class DocumentJob(JobSpec):
    """results/tables/all.tex: \\input of every table, then every figure with its caption."""

    nested = {"figures": FigureEntry}

    tables: list[str]
    figures: list[FigureEntry]
    scale: str  # tiny | micro | paper: the note under the title
    config_digest: str
    out: str


@dataclass(frozen=True)
class PdfJob(JobSpec):
    document: str  # all.tex
    out: str  # all.pdf
