"""What a run inherits from its parent, and which output heads evaluation may read (torch-free: resolved from the
configuration alone, so `snakemake -n` and the tests can check every table cell without data or training).

FluxViT has three attention-pooling heads, each with its classifier (head i serves `HEAD_BUDGETS[i]` tokens of
flux.models.sizes: 3072 / 2048 / 1024, the official engine's pairing); InternVideo2-style models have one. A run
trains the heads of its budgets (`ResolvedRun.heads`, flux.train.runs). Two sets follow from the run graph:

- pooling heads: heads whose attention pooling was trained by the run or an ancestor with the same head count.
  A child that trains a head its parent never trained starts that head's pooling from the parent's trained
  pooling head of the nearest budget (a one-head parent's only head initialises all three), instead of from
  random weights: the pre-trained pooling is what distillation produced, and throwing it away is what made
  single-budget Flux-UMT -> fine-tuning lose it (the official code leaves such heads random under a non-strict
  load). The classifier rows are not copied: a new head's classifier trains from its initialisation.
- trained heads: heads whose whole output path (pooling and what reads it: the classifier of this label set, the
  text projection, the distillation decoders) was trained by the run, or by an ancestor of the same stage whose
  output the run keeps (K710 -> K400 re-uses the classifier rows through the head map; Flux-CLIP stage 2 keeps
  stage 1's text projection). Evaluation reads only these, the one trained for the nearest budget.

Loading a parent is strict: every key must load, except the key groups a transition lists (`ParentPlan`):
a new label set's classifier, the distillation decoders a fine-tuned or CLIP model drops, the text projection a
CLIP model adds, the alignment projectors a three-head child adds to a one-head parent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flux.models.sizes import nearest_head

if TYPE_CHECKING:
    from flux.train.runs import ResolvedRun


# Key groups a parent load may leave out (child keys the parent lacks) or drop (parent keys the child lacks).
KEY_GROUPS = {
    "classifier": r"^head(\.\d+)?\.",
    "alignment_projectors": r"^final_clip_decoder_for_projs\.",
    "distillation_decoders": r"^(clip_decoder\.|final_clip_decoder\.|clip_pos_embed$)",
    "text_projection": r"^vision_proj\.",
}
TEXT_STAGES = ("teacher", "clip")  # stages whose models carry a text projection (vision_proj)


def own_heads(run: ResolvedRun) -> dict[int, int]:
    """head -> token count, for the heads this run trains."""
    return dict(zip(run.heads, run.trained_tokens))


def _label_set(run: ResolvedRun) -> str | None:
    return run.datasets[0] if run.stage == "finetune" else None


def classifier_rule(run: ResolvedRun, parent: ResolvedRun) -> str:
    """`load` (same label set), `remap` (K710 rows re-used through the head map) or `fresh` (a new label set:
    the parent's classifier is dropped and the child's starts from its initialisation)."""
    if run.head_map is not None:
        return "remap"
    return "load" if _label_set(run) == _label_set(parent) else "fresh"


def _keeps_output(run: ResolvedRun, parent: ResolvedRun) -> bool:
    """Whether the child keeps what reads the parent's heads: same stage, same heads, same classifier rows."""
    if run.stage != parent.stage or run.num_heads != parent.num_heads:
        return False
    return run.stage != "finetune" or classifier_rule(run, parent) != "fresh"


def pooling_heads(runs: Mapping[str, ResolvedRun], run_id: str) -> dict[int, int]:
    """head -> tokens, for the heads whose attention pooling this run or an ancestor (same head count) trained."""
    run = runs[run_id]
    inherited = {}
    if run.parent is not None and runs[run.parent].num_heads == run.num_heads:
        inherited = pooling_heads(runs, run.parent)
    return {**inherited, **own_heads(run)}


def trained_heads(runs: Mapping[str, ResolvedRun], run_id: str) -> dict[int, int]:
    """head -> tokens, for the heads evaluation may read: trained with this checkpoint's output."""
    run = runs[run_id]
    inherited = {}
    if run.parent is not None and _keeps_output(run, runs[run.parent]):
        inherited = trained_heads(runs, run.parent)
    return {**inherited, **own_heads(run)}


def heads_record(heads: Mapping[int, int]) -> list[dict[str, int]]:
    """The JSON form written to checkpoints and job specs: [{head, tokens}] by head."""
    return [{"head": head, "tokens": heads[head]} for head in sorted(heads)]


@dataclass(frozen=True)
class ParentPlan:
    """How a run loads its parent's checkpoint (flux.models.checkpoint.load_parent applies it)."""

    parent: str
    parent_heads: int  # pooling heads of the parent model (1: its keys are `clip_projector.*`, no index)
    classifier: str  # load | remap | fresh
    head_sources: Mapping[int, int]  # child pooling head -> the parent pooling head it starts from
    fresh: tuple[str, ...] = ()  # key groups the child starts afresh (allowed missing)
    dropped: tuple[str, ...] = ()  # key groups of the parent the child has no place for (allowed unexpected)

    def to_dict(self) -> dict:
        return {
            "parent": self.parent,
            "parent_heads": self.parent_heads,
            "classifier": self.classifier,
            "head_sources": {str(child): source for child, source in sorted(self.head_sources.items())},
            "fresh": list(self.fresh),
            "dropped": list(self.dropped),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ParentPlan:
        sources = {int(child): int(source) for child, source in data["head_sources"].items()}
        return cls(
            data["parent"], data["parent_heads"], data["classifier"], sources, tuple(data["fresh"]), tuple(data["dropped"])
        )


def parent_plan(runs: Mapping[str, ResolvedRun], run_id: str) -> ParentPlan | None:
    run = runs[run_id]
    if run.parent is None:
        return None
    parent = runs[run.parent]
    classifier = classifier_rule(run, parent)
    fresh, dropped = [], []
    if classifier == "fresh":
        fresh.append("classifier")
    if run.stage == "umt" and parent.stage != "umt":
        fresh.append("distillation_decoders")
    if parent.stage == "umt" and run.stage != "umt":
        dropped.append("distillation_decoders")
    if run.stage in TEXT_STAGES and parent.stage not in TEXT_STAGES:
        fresh.append("text_projection")
    if parent.stage in TEXT_STAGES and run.stage not in TEXT_STAGES:
        dropped.append("text_projection")
    if parent.num_heads == 1 and run.num_heads > 1:
        fresh.append("alignment_projectors")
    if parent.num_heads > 1 and run.num_heads == 1:
        dropped.append("alignment_projectors")
    pretrained = pooling_heads(runs, run.parent)
    own = own_heads(run)
    if parent.num_heads == run.num_heads:  # heads the parent never trained start from its nearest trained one
        sources = {head: nearest_head(tokens, pretrained) for head, tokens in own.items() if head not in pretrained}
    else:  # another head layout: every child head is built from a trained parent head (untrained ones: the largest)
        largest = max(pretrained.values())
        sources = {head: nearest_head(own.get(head, largest), pretrained) for head in range(run.num_heads)}
    return ParentPlan(run.parent, parent.num_heads, classifier, sources, tuple(fresh), tuple(dropped))
