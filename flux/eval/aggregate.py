"""Multi-clip score aggregation (ClipBERT §4.2; ../shared/reference/protocols.md §9.2), for evaluation and
training alike: per-clip logits (batch, clips, classes) -> video log-probabilities (batch, classes).

- mean: softmax of the clip-mean logits;
- max: softmax of the element-wise max over clips;
- lse: p_j = sum_c exp(s_cj) / sum_c sum_k exp(s_ck), i.e. log p = logsumexp over clips minus logsumexp over
  clips and classes (the cross-clip mean's 1/N cancels in the normalisation).

Log-probabilities, so training takes `nll_loss` on them and evaluation their argmax.
"""

from __future__ import annotations

import torch

from flux.errors import ConfigError

AGGREGATIONS = ("mean", "max", "lse")


def aggregate_clips(logits: torch.Tensor, method: str = "mean") -> torch.Tensor:
    if logits.ndim != 3:
        raise ValueError(f"clip logits must be (batch, clips, classes), got shape {tuple(logits.shape)}")
    if method == "mean":
        return torch.log_softmax(logits.mean(dim=1), dim=-1)
    if method == "max":
        return torch.log_softmax(logits.amax(dim=1), dim=-1)
    if method == "lse":
        per_class = torch.logsumexp(logits, dim=1)
        return per_class - torch.logsumexp(per_class, dim=-1, keepdim=True)
    raise ConfigError(f"unknown clip aggregation '{method}'; known: {', '.join(AGGREGATIONS)}")
