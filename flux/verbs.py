"""The verbs of `flux`, one entry each: its help, the function that runs it, the builder of its job spec and the
Snakemake rules that call it. The CLI, the job-spec builder and the configuration's `resources:` keys read this
table; nothing else lists the verbs. Functions are named as "module:function" and imported only when the verb
runs, so that `flux --help` and the light verbs never pay for torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flux.errors import FluxError
from flux.train.runs import STAGES


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    run: str  # "module:function": a job's entry point, called with its spec (or, for a command, with argv)
    spec: str | None = None  # "module:function" building the job spec from (Config, target); None: a command
    rules: tuple[str, ...] = ()  # the rules that run it; their names key `resources:` in the configuration
    threads: bool = False  # takes --threads (the rule's threads)

    @property
    def is_job(self) -> bool:
        """A job runs from a spec (Snakemake's, or one built from --config); a command parses its own arguments."""
        return self.spec is not None


def resolve(reference: str) -> Callable[..., Any]:
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


VERBS: dict[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb(
            "synth",
            "generate a synthetic dataset (real h264 mp4 files + annotations in the real format)",
            "flux.data.synthetic:run",
            "flux.jobs:synth_spec",
            ("synth",),
        ),
        Verb(
            "download",
            "fetch a dataset: download its URL files (resumable, verified) and link its local directory",
            "flux.data.registry:run",
            "flux.jobs:download_spec",
            ("download",),
        ),
        Verb(
            "kinetics710",
            "build Kinetics-710 lists, label map and head maps from the K400/K600/K700 annotations",
            "flux.data.kinetics710:run",
            "flux.jobs:kinetics710_spec",
            ("kinetics710",),
        ),
        Verb(
            "index",
            "probe every media file of a dataset and write its manifest (parquet) and report",
            "flux.data.index:run",
            "flux.jobs:index_spec",
            ("index",),
            threads=True,
        ),
        Verb(
            "table",
            "render a paper table as LaTeX",
            "flux.tables.render:run",
            "flux.jobs:table_spec",
            ("table",),
        ),
        Verb(
            "train",
            "train one run of config/runs.yaml (resumes from its latest state)",
            "flux.train.trainer:run",
            "flux.jobs:train_spec",
            tuple(f"train_{stage}" for stage in STAGES),  # one rule per stage: `resources:` differ by stage
            threads=True,
        ),
        Verb(
            "llm",
            "train the embedded default's tiny causal LM on the chat data's text (main Table 10's frozen LLM)",
            "flux.train.language:run",
            "flux.jobs:llm_spec",
            ("llm",),
            threads=True,
        ),
        Verb(
            "import",
            "import an external checkpoint of config/checkpoints.yaml as results/runs/<name>/final.pt",
            "flux.models.importing:run",
            "flux.jobs:import_spec",
            ("import_checkpoint",),
        ),
        Verb(
            "evaluate",
            "evaluate a checkpoint under a protocol of config/tables.yaml (target: <run>/<protocol>)",
            "flux.eval.runner:run",
            "flux.jobs:evaluate_spec",
            ("evaluate",),
            threads=True,
        ),
        Verb(
            "figure",
            "draw a figure of config/tables.yaml as PNG from training logs and metrics files",
            "flux.tables.figures:run",
            "flux.jobs:figure_spec",
            ("figure",),
        ),
        Verb(
            "document",
            "write results/tables/all.tex, which inputs every table and figure",
            "flux.tables.document:run_document",
            "flux.jobs:document_spec",
            ("document",),
        ),
        Verb(
            "pdf",
            "compile results/tables/all.tex with pdflatex",
            "flux.tables.document:run_pdf",
            "flux.jobs:pdf_spec",
            ("pdf",),
        ),
        Verb(
            "check",
            "load and validate configuration files as Snakemake would (file:line for YAML errors, which Snakemake omits)",
            "flux.cli:main_check",
        ),
        Verb(
            "pull",
            "dvc pull data and checkpoints; on failure, name every missing or corrupted file (`flux pull --help`)",
            "flux.artifacts:main_pull",
        ),
        Verb(
            "flops",
            "analytic per-view GFLOPs of a model at a token count (`flux flops --help`); the number is the last line",
            "flux.models.flops:main_flops",
        ),
    )
}


def verb(name: str) -> Verb:
    if name not in VERBS:
        raise FluxError(f"unknown verb {name!r}; known: {', '.join(VERBS)}")
    return VERBS[name]


# `resources:` keys: every rule that runs a verb, and `default` for all the others
RESOURCE_KEYS = ("default", *(rule for entry in VERBS.values() for rule in entry.rules))
