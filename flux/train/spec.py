"""The job spec of `flux train`, typed: flux.jobs builds it from the configuration, Snakemake passes it as JSON (a rule
param, so that a job reruns exactly when it changes), the trainer and the stages read its attributes.

Torch-free: the workflow builds specs for every run when it plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flux.specs import EXECUTION, WHEN_SET, JobSpec


@dataclass(frozen=True)
class TrainSpec(JobSpec):
    """Its identity (flux.specs.JobSpec.identity) is the training trajectory's: a restarted job resumes only a state
    written for the same identity, so a state left from an edited configuration (or a forced rerun) is never continued.
    Data-loading processes are an execution setting: items are seeded by position."""

    run: dict[str, Any]  # flux.train.runs.run_to_dict of the resolved run
    seed: int
    data_dir: str
    manifests: dict[str, str]  # dataset -> manifest
    checkpoint: str  # the rule's outputs: final.pt, final.json, metrics.jsonl
    summary: str
    metrics: str
    state_dir: str  # resume state, outside the rule's outputs
    trained_heads: dict[str, Any]  # flux.train.inheritance.heads_record: the heads this run leaves trained
    reference_input: list[int]  # the paper's 8 x 224^2 in this configuration's units (the validation check's input)
    frame_sampling: dict[str, str] = field(default_factory=dict)  # dataset -> tsn | ssv2
    parent_checkpoint: str | None = None
    parent_plan: dict[str, Any] | None = None  # flux.train.inheritance.ParentPlan: which keys a parent may leave out
    teacher_checkpoint: str | None = None  # Flux-UMT and Flux-CLIP
    text_encoder: str | None = None  # Flux-CLIP: a local Hugging Face encoder
    teacher_weights: str | None = None  # paper scale: the released teacher, imported instead of trained
    teacher_grid: list[int] | None = None
    precision: str = "auto"
    backend: str = "torch"
    zero_stage: int = 1
    log_every: int = 10
    workers: int = field(default=0, metadata={EXECUTION: True})
    checkpoint_every: int = field(default=50, metadata={EXECUTION: True})
    threads: int | None = field(default=None, metadata={EXECUTION: True, WHEN_SET: True})  # the rule's, from the CLI
    clip_cache: str | None = field(default=None, metadata={EXECUTION: True, WHEN_SET: True})  # the end-of-run check's views
    lineage: str | None = field(default=None, metadata={WHEN_SET: True})  # flux.jobs.run_lineage: the provenance digest
    val_manifest: str | None = field(default=None, metadata={WHEN_SET: True})  # fine-tuning: the end-of-run check's data
    validation_videos: int | None = field(default=None, metadata={WHEN_SET: True})  # ... on a seeded subset of its videos
    head_map: str | None = field(default=None, metadata={WHEN_SET: True})  # a K710 parent's classifier, cut to K400
    head_map_key: str | None = field(default=None, metadata={WHEN_SET: True})
    llm: str | None = field(default=None, metadata={WHEN_SET: True})  # the chat stage: its frozen LLM (`chat.llm` or the tiny LM)
    projector: str | None = field(default=None, metadata={WHEN_SET: True})  # the chat stage: `chat.projector`


@dataclass(frozen=True)
class LanguageModelSpec(JobSpec):
    """The job spec of `flux llm`: the embedded default's tiny causal LM, trained on the chat data's text."""

    manifests: dict[str, str]  # dataset -> manifest (the chat stage's data)
    model: dict[str, Any]  # flux.models.llm.TinyLMConfig fields but vocab_size (the corpus decides it)
    epochs: float
    batch_size: int
    lr: float
    seed: int
    out: str  # the LM file: {"llm": {"tiny": ...}, "metadata": ...}
    summary: str
    lineage: str | None = field(default=None, metadata={WHEN_SET: True})
    threads: int | None = field(default=None, metadata={EXECUTION: True, WHEN_SET: True})
