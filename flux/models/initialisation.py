"""Truncated-normal weight initialisation by inverse-CDF sampling, without timm (whose import pulls torchvision
and torch._dynamo: about 2 s for every evaluation job, which never needs anything else from it)."""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def trunc_normal_(
    tensor: torch.Tensor, std: float, limit_in_std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """N(0, std²) truncated at ±`limit_in_std` standard deviations: one uniform draw per element, then the
    inverse normal CDF (timm's `trunc_normal_` algorithm, draw for draw; `nn.init.trunc_normal_` in this torch
    version rejection-samples instead, in a Python loop)."""
    bound = math.erf(limit_in_std / math.sqrt(2.0))  # 2 * Phi(limit) - 1
    tensor.uniform_(-bound, bound, generator=generator)
    tensor.erfinv_().mul_(std * math.sqrt(2.0))
    limit = limit_in_std * std
    return tensor.clamp_(-limit, limit)
