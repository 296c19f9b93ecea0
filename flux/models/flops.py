"""Analytic multiply-accumulate (MAC) count of one FluxViT / InternVideo2 forward pass, per view.

Why: the paper's tables give cost as "GFLOPs" per view, which are MACs / 1e9 of the inference forward
(reference/paper.md §3.1: FluxViT-S 154/83/32/13 and FluxViT-B 440/255/108/49 at 3072/2048/1024/512 kept
tokens). Comparing accuracy at equal cost needs that number for any size and token count, including Token
Optimization inputs, which embed more patches than they keep.

Counted (K kept patch tokens, N = K + 1 with the CLS token, M embedded patches, C width, H MLP hidden
width, D the pooling output width `clip_dim`, p the patch size, L the depth):
  patch_embed            M * 3p^2 * C              the patch projection, for every embedded patch
  attention_projections  L * (3 N C^2 + N C^2)     qkv (no bias) and the output projection
  attention_matmuls      L * 2 N^2 C               Q K^T and (softmax) V, summed over heads
  mlp                    L * 2 N C H               fc1 and fc2
  pooling                C^2 + 2 N C^2 + 2 N C + C D   ONE attention-pooling head (inference uses one of
                                                   FluxViT's three): the single query's projection, the k/v
                                                   projections of all N tokens, its attention, the output
                                                   projection to D
  classifier             D * num_classes
Not counted (torch's FLOP counter does not count them either, and they are < 1% here): element-wise work
(RMSNorm/LayerNorm, GELU, softmax, LayerScale, residual adds, biases, the depth-wise LPE/GPE scales, the
mean query), the token selector's scores and sort, the position-embedding interpolation and gathers.
`torch.utils.flop_counter` counts exactly the remaining set (matmuls, linears, convolutions, attention), so
`measured_macs` on the real module equals `model_macs`, component by component (tests/models/test_flops.py).

Against the paper this reproduces 7 of the 8 printed FluxViT-S/B numbers after rounding (within 0.3); the
eighth, FluxViT-S at 512 tokens, is printed as 13 where this count gives 13.59, and no consistent choice of
counted terms matches all eight (see the test).

CLI: `flux flops --model fluxvit_s --tokens 2048` (wired to `main_flops`) prints a breakdown and, as its
last line, only the GFLOPs number.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from flux.errors import ConfigError, FluxError

if TYPE_CHECKING:
    import torch

    from flux.models.fluxvit import FluxViT, ModelSize


@dataclass(frozen=True)
class MacBreakdown:
    """Multiply-accumulates of one forward pass (one view, batch 1), by component."""

    patch_embed: int
    attention_projections: int
    attention_matmuls: int
    mlp: int
    pooling: int
    classifier: int
    total: int

    @property
    def gflops(self) -> float:
        """The paper's "GFLOPs": MACs / 1e9."""
        return self.total / 1e9


def _size(name_or_size: str | ModelSize) -> ModelSize:
    from flux.models.fluxvit import SIZES

    if isinstance(name_or_size, str):
        if name_or_size not in SIZES:
            raise ConfigError(f"unknown model '{name_or_size}'; known: {', '.join(SIZES)}")
        return SIZES[name_or_size]
    return name_or_size


def model_macs(
    name_or_size: str | ModelSize, tokens: int, input_patches: int | None = None, num_classes: int = 400
) -> MacBreakdown:
    """MACs of a forward that keeps `tokens` patch tokens (CLS added here) out of `input_patches` embedded
    patches (default: all of them kept), through one pooling head and one classifier of `num_classes`."""
    size = _size(name_or_size)
    input_patches = tokens if input_patches is None else input_patches
    if tokens <= 0:
        raise ConfigError(f"token count must be positive, got {tokens}")
    if input_patches < tokens:
        raise ConfigError(f"input patches ({input_patches}) must be at least the kept tokens ({tokens})")
    if num_classes < 0:
        raise ConfigError(f"number of classes must be non-negative, got {num_classes}")
    c, h, d, depth, p = size.embed_dim, size.mlp_hidden, size.clip_dim, size.depth, size.patch_size
    n = tokens + 1
    patch_embed = input_patches * 3 * p * p * c
    attention_projections = depth * 4 * n * c * c
    attention_matmuls = depth * 2 * n * n * c
    mlp = depth * 2 * n * c * h
    pooling = c * c + 2 * n * c * c + 2 * n * c + c * d
    classifier = d * num_classes
    total = patch_embed + attention_projections + attention_matmuls + mlp + pooling + classifier
    return MacBreakdown(patch_embed, attention_projections, attention_matmuls, mlp, pooling, classifier, total)


def gflops(name_or_size: str | ModelSize, tokens: int, input_patches: int | None = None, num_classes: int = 400) -> float:
    """The paper's per-view "GFLOPs" (MACs / 1e9)."""
    return model_macs(name_or_size, tokens, input_patches, num_classes).gflops


def measured_macs(model: FluxViT, video: torch.Tensor, budget: int | None = None, head: int = 0) -> MacBreakdown:
    """`model(video, budget, head)` counted by torch's FlopCounterMode (MACs = FLOPs / 2, summed over the
    batch), split by module as `model_macs` splits it; `total` is everything counted, inside those modules
    or not. Attention runs on the math backend while counting: the counter has no formula for the fused CPU
    kernel (torch 2.14 counts it as 0), while the math path's two batched matmuls are counted exactly."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    # Parameters are frozen while counting: under no_grad a view of a trainable parameter still requires
    # grad but has no grad_fn, which the counter's module tracker rejects (e.g. the GPE reference grid).
    frozen = [parameter for parameter in model.parameters() if parameter.requires_grad]
    try:
        for parameter in frozen:
            parameter.requires_grad_(False)
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            # once outside the counter: the position-embedding resize is then served from the model's per-grid
            # cache, as at inference, and is not counted (it is input-independent, done once per grid)
            model(video, budget=budget, head=head)
            with FlopCounterMode(display=False) as counter:
                model(video, budget=budget, head=head)
    finally:
        for parameter in frozen:
            parameter.requires_grad_(True)
    counts = {name: sum(per_op.values()) for name, per_op in counter.get_flop_counts().items()}
    if any(flops % 2 for flops in counts.values()):
        raise RuntimeError(f"FlopCounterMode reported an odd FLOP count; expected 2 x MACs: {counts}")
    root = type(model).__name__
    macs = lambda name: counts.get(f"{root}.{name}", 0) // 2
    blocks = [f"blocks.{index}" for index in range(len(model.blocks))]
    projections = sum(macs(f"{block}.attn.qkv") + macs(f"{block}.attn.proj") for block in blocks)
    attention = sum(macs(f"{block}.attn") for block in blocks)
    suffix = f".{head}" if model.size.output_heads > 1 else ""
    return MacBreakdown(
        patch_embed=macs("patch_embed"),
        attention_projections=projections,
        attention_matmuls=attention - projections,
        mlp=sum(macs(f"{block}.mlp") for block in blocks),
        pooling=macs(f"clip_projector{suffix}"),
        classifier=macs(f"head{suffix}"),
        total=counts.get("Global", 0) // 2,
    )


def _format_gflops(value: float) -> str:
    return f"{value:.1f}" if value >= 1 else f"{value:.3g}"


def main_flops(argv: Sequence[str] | None = None) -> int:
    """`flux flops`: print the MAC breakdown, then the GFLOPs alone on the last line. Returns 0, or 2 on a
    configuration error (message on stderr)."""
    description = "analytic per-view GFLOPs (MACs / 1e9) as the paper counts them"
    parser = argparse.ArgumentParser(prog="flux flops", description=description)
    parser.add_argument("--model", required=True, help="registry name, e.g. fluxvit_s")
    parser.add_argument("--tokens", required=True, type=int, help="kept patch tokens per view (CLS excluded)")
    parser.add_argument("--input-patches", type=int, default=None, help="embedded patches before selection (default: --tokens)")
    parser.add_argument("--num-classes", type=int, default=400, help="classifier outputs (default 400)")
    arguments = parser.parse_args(argv)
    try:
        breakdown = model_macs(arguments.model, arguments.tokens, arguments.input_patches, arguments.num_classes)
    except FluxError as error:
        print(f"flux flops: {error}", file=sys.stderr)
        return 2
    patches = arguments.tokens if arguments.input_patches is None else arguments.input_patches
    print(f"{arguments.model}: {arguments.tokens} kept tokens (+ CLS) of {patches} embedded patches", end="")
    print(f", {arguments.num_classes} classes")
    for component, macs in asdict(breakdown).items():
        print(f"  {component:<22} {macs / 1e9:12.4f} GMACs")
    print(_format_gflops(breakdown.gflops))
    return 0
