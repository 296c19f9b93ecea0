"""Zero-shot text-video retrieval metrics (../shared/reference/protocols.md §8).

S is the (texts x videos) cosine similarity of L2-normalised features, computed a block of queries at a time
so a 10k x 10k evaluation never holds S whole. T2V: every caption queries all videos; V2T: every video
queries all captions and its rank is the best (minimum) over its ground-truth captions (MSVD, MSR-VTT
training-style lists); paragraph datasets join their sentences upstream and are 1:1 here.

Ranks are 0-based and pessimistic on ties: a query's rank is the number of OTHER candidates scoring at least
as high as its ground truth, so collapsed features (all scores equal) rank last instead of first. R@K is
the percentage of queries with rank < K, MdR = floor(median) + 1, MnR = mean + 1 (open_clip's definitions).

Dual softmax (DSL) is InternVideo2's (`tasks_clip/retrieval_utils.py::evaluation_video_clip`): each raw
cosine score is multiplied by a softmax of the raw cosine scores (temperature 1; the learned CLIP temperature
does not enter) over the queries competing for the same gallery item: for T2V the prior of (t, v) is the
softmax over all texts of video v's column (`S.T * S.T.softmax(dim=0)`), for V2T over all videos of text t's
row (`S * S.softmax(dim=0)`). It is transductive (it uses the whole test gallery), so both results are
reported, `plain` and `dual_softmax`. Each caption's T2V rank is kept under both (`t2v_ranks`, in caption
order), so that two scorings of the same captions can be compared pairwise (flux.stats).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from flux.errors import FluxError

RECALLS = (1, 5, 10)


def _normalised(features: torch.Tensor, side: str) -> torch.Tensor:
    if features.ndim != 2:
        raise FluxError(f"{side} features must be (count, dim), got shape {tuple(features.shape)}")
    bad = (~torch.isfinite(features)).any(dim=1).nonzero().flatten()
    if len(bad):
        raise FluxError(f"{side} features of items {bad[:10].tolist()} are not finite: the encoder produced NaN/inf")
    return F.normalize(features.double(), dim=-1)


def _log_prior(queries: torch.Tensor, gallery: torch.Tensor, chunk: int) -> torch.Tensor:
    """log of the DSL prior's normaliser per gallery item: logsumexp over ALL queries of S[:, j], accumulated
    block by block."""
    total = torch.full((len(gallery),), -torch.inf, dtype=torch.float64)
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk] @ gallery.T
        total = torch.logaddexp(total, torch.logsumexp(block, dim=0))
    return total


def query_ranks(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    targets: Sequence[Sequence[int]],
    chunk: int = 1024,
    dual_softmax: bool = False,
) -> np.ndarray:
    """0-based rank of each query's best ground-truth candidate. `targets[i]`: the gallery indices that are
    correct for query i (one or more). With `dual_softmax`, scores are S * softmax(S) over the queries."""
    if len(targets) != len(queries):
        raise FluxError(f"{len(queries)} queries but {len(targets)} ground-truth lists")
    empty = [index for index, target in enumerate(targets) if len(target) == 0]
    if empty:
        raise FluxError(f"queries {empty[:10]} have no ground truth: every query needs a matching item")
    log_prior = _log_prior(queries, gallery, chunk) if dual_softmax else None
    ranks = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ gallery.T  # (block, gallery)
        if log_prior is not None:
            scores = scores * torch.exp(scores - log_prior)
        for offset, row in enumerate(scores):
            truth = torch.as_tensor(list(targets[start + offset]))
            best = row[truth].max()
            ranks[start + offset] = int((row >= best).sum()) - 1  # others at least as good (ties count against)
    return ranks


def rank_metrics(ranks: np.ndarray) -> dict[str, float]:
    metrics = {f"R@{k}": round(100.0 * float(np.mean(ranks < k)), 4) for k in RECALLS}
    metrics["MdR"] = float(np.floor(np.median(ranks)) + 1)
    metrics["MnR"] = round(float(np.mean(ranks)) + 1, 4)
    return metrics


def retrieval_metrics(
    text_features: torch.Tensor,
    video_features: torch.Tensor,
    text_to_video: Sequence[int],
    chunk: int = 1024,
) -> dict[str, object]:
    """T2V and V2T metrics, plain and with dual softmax. `text_to_video[t]`: the video caption t describes."""
    texts, videos = _normalised(text_features, "text"), _normalised(video_features, "video")
    if len(text_to_video) != len(texts):
        raise FluxError(f"{len(texts)} text features but {len(text_to_video)} caption-to-video indices")
    owners = np.asarray(text_to_video, dtype=np.int64)
    if len(owners) and (owners.min() < 0 or owners.max() >= len(videos)):
        raise FluxError(f"caption-to-video indices must lie in [0, {len(videos)}); got {owners.min()}..{owners.max()}")
    captions_of = [[] for _ in range(len(videos))]
    for text, video in enumerate(owners):
        captions_of[video].append(text)
    results: dict[str, object] = {"texts": len(texts), "videos": len(videos)}
    for name, dual in (("plain", False), ("dual_softmax", True)):
        t2v = query_ranks(texts, videos, [[video] for video in owners], chunk, dual)
        v2t = query_ranks(videos, texts, captions_of, chunk, dual)
        results[name] = {"t2v": rank_metrics(t2v), "v2t": rank_metrics(v2t), "t2v_ranks": t2v.tolist()}
    return results
