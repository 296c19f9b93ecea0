"""The job specs of `flux document` and `flux pdf`, typed (built by flux.jobs; the tables' and figures' specs are
still dicts read by their renderers)."""

from __future__ import annotations

from dataclasses import dataclass

from flux.specs import JobSpec


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
