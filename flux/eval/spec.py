"""The job spec of `flux evaluate`, typed: one checkpoint under one protocol of config/tables.yaml, on each of the
protocol's datasets. Built by flux.jobs.evaluate_spec, read by flux.eval.runner."""

from __future__ import annotations

from dataclasses import dataclass, field

from flux.errors import FluxError
from flux.specs import EXECUTION, WHEN_SET, JobSpec


@dataclass(frozen=True)
class RoleSpec(JobSpec):
    """One dataset the protocol scores: its role, manifest, and the splits to score in preference order."""

    role: str
    dataset: str
    manifest: str
    splits: list[str]
    frame_sampling: str = "tsn"  # tsn | ssv2 (the official SSv2 loader's frame indices)

    def split_among(self, present: set[str]) -> str:
        """The first of `splits` the manifest has (`present`: its splits)."""
        found = [split for split in self.splits if split in present]
        if not found:
            raise FluxError(f"{self.manifest}: none of the evaluation splits {self.splits} exists (splits: {sorted(present)})")
        return found[0]


@dataclass(frozen=True)
class Setting(JobSpec):
    """One fixed input: frames x resolution, kept tokens (None: all), the head read, or a Vid-TLDR merge schedule."""

    key: str
    frames: int
    resolution: int
    budget: int | None
    head: int
    merge: list[int] | None = field(default=None, metadata={WHEN_SET: True})


@dataclass(frozen=True)
class Search(JobSpec):
    """One Token Optimization search at a budget: over these frame counts and resolutions, greedy from `start` or the
    full grid; with `held_out`, the choice and the score come from disjoint halves of the videos."""

    key: str
    budget: int
    head: int
    frames: list[int]
    resolutions: list[int]
    search: str
    start: list[int]
    # choose the input on one seeded half of the videos and score it, and the start input, on the other half
    held_out: bool | None = field(default=None, metadata={WHEN_SET: True})


@dataclass(frozen=True)
class Scoring:
    """What an Evaluator reads of a job: the task, the views per video (clips, crops), where the media are, how a
    video's views combine, the zero-shot prompts, data-loading processes. The trainer's end-of-run check scores
    with one of its own (one centre view)."""

    task: str
    views: tuple[int, int]
    data_dir: str
    aggregate: str = "softmax_mean"
    prompts: tuple[str, ...] = ()
    workers: int = 0
    clip_cache: str | None = None  # the folder of decoded test views shared by evaluations (flux.eval.clip_cache)
    seed: int = 0  # a random token selector's draws, and which videos a subsampled evaluation scores
    max_videos: int | None = None  # score a seeded subset of this many videos (`evaluation.max_videos`)


@dataclass(frozen=True)
class EvaluateSpec(JobSpec):
    nested = {"roles": RoleSpec, "settings": Setting, "token_optimization": Search}

    eval: str  # <run>/<protocol>
    run: str
    protocol: str
    task: str  # classification | zeroshot | retrieval | chat
    views: list[int]  # clips, crops
    roles: list[RoleSpec]
    settings: list[Setting]
    token_optimization: list[Search]
    prompts: list[str]  # zero-shot prompt templates
    checkpoint: str
    data_dir: str
    seed: int
    lineage: str
    out: str
    aggregate: str = "softmax_mean"  # how a video's views combine (ClipBERT's methods for its ablation)
    text_encoder: str | None = None
    workers: int = field(default=0, metadata={EXECUTION: True})
    threads: int | None = field(default=None, metadata={EXECUTION: True, WHEN_SET: True})  # the rule's, from the CLI
    clip_cache: str | None = field(default=None, metadata={EXECUTION: True, WHEN_SET: True})  # `evaluation.clip_cache`
    max_videos: int | None = field(default=None, metadata={WHEN_SET: True})  # `evaluation.max_videos` of the protocol
    max_new_tokens: int | None = field(default=None, metadata={WHEN_SET: True})  # chat captions: `chat.max_new_tokens`

    def scoring(self) -> Scoring:
        return Scoring(
            self.task,
            tuple(self.views),
            self.data_dir,
            self.aggregate,
            tuple(self.prompts),
            self.workers,
            self.clip_cache,
            self.seed,
            self.max_videos,
        )
