"""Multi-view classification metrics (../shared/reference/protocols.md §6).

Every video is evaluated on a fixed set of views (clips x crops, e.g. K400 4 x 3, SSv2 2 x 3); each view's
logits are softmaxed and the probabilities averaged per video; top-1/top-5 are per-video means. Views are
keyed (video, view): a repeated key (a distributed sampler's padding) counts once, and a video missing
views is an error, never a silently smaller test set. Undecodable videos stay in the denominator as
wrong answers, and their count is reported next to the accuracy over the decodable ones. Each video's top-1
outcome is kept too (`top1_hits`, "1"/"0" in the order of the videos), so that two models scored on the same
videos can be compared pairwise (flux.stats).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from flux.errors import FluxError
from flux.stats import hit_string


def gather_views(records: Iterable[tuple[str, int, torch.Tensor]], views: int) -> tuple[list[str], torch.Tensor]:
    """(video id, view index, logits) records -> video ids (first-seen order) and logits (videos, views, C).
    A duplicate (video, view) must repeat the same logits; every video needs views 0..views-1."""
    seen: dict[str, dict[int, torch.Tensor]] = {}
    for video, view, logits in records:
        if not 0 <= view < views:
            raise FluxError(f"video {video}: view {view} outside 0..{views - 1}")
        per_video = seen.setdefault(video, {})
        if view in per_video and not torch.equal(per_video[view], logits):
            raise FluxError(f"video {video}: view {view} was evaluated twice with different logits")
        per_video[view] = logits
    incomplete = {video: sorted(set(range(views)) - set(got)) for video, got in seen.items() if len(got) != views}
    if incomplete:
        shown = dict(list(incomplete.items())[:5])
        raise FluxError(f"{len(incomplete)} videos lack views (video: missing views): {shown}; rerun their evaluation")
    ids = list(seen)
    return ids, torch.stack([torch.stack([seen[video][view] for view in range(views)]) for video in ids])


def multiview_accuracy(
    view_logits: torch.Tensor, labels: torch.Tensor, decodable: torch.Tensor | None = None, topk: Sequence[int] = (1, 5)
) -> dict[str, float | int]:
    """view_logits (videos, views, classes), labels (videos,), decodable (videos,) bool: accuracies in %."""
    if view_logits.ndim != 3 or len(view_logits) != len(labels):
        raise FluxError(f"view logits {tuple(view_logits.shape)} and {len(labels)} labels do not match")
    decodable = torch.ones(len(labels), dtype=torch.bool) if decodable is None else decodable.bool()
    probabilities = torch.softmax(view_logits.double(), dim=-1).mean(dim=1)
    ranked = probabilities.argsort(dim=-1, descending=True, stable=True)
    result: dict[str, float | int] = {"videos": len(labels), "undecodable": int((~decodable).sum())}
    for k in topk:
        hit = (ranked[:, :k] == labels[:, None]).any(dim=1) & decodable
        result[f"top{k}"] = round(100.0 * float(hit.sum()) / max(1, len(labels)), 4)
        result[f"top{k}_decodable"] = round(100.0 * float(hit.sum()) / max(1, int(decodable.sum())), 4)
        if k == 1:
            result["top1_hits"] = hit_string(hit.numpy())
    return result
