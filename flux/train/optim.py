"""Optimiser, schedule and mixup, from timm where it fits (as the paper's settings tables describe).

AdamW with the table's betas; no weight decay on norms, biases, 1-D parameters, position embeddings and the
CLS token; layer-wise lr decay for fine-tuning (stem = layer 0, block i = i + 1, heads last); cosine
schedule with linear warm-up, both counted in epochs and applied per step. Mixup / CutMix is timm's, on the
clip folded to (B, C*T, H, W) so that a CutMix box covers the same area in every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: run configs are resolved without it
    import torch
    from torch import nn


@dataclass(frozen=True)
class OptimSettings:
    lr: float
    weight_decay: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    layer_decay: float | None = None
    epochs: float = 1.0
    warmup_epochs: float = 0.0
    min_lr: float = 1e-6
    warmup_lr: float = 1e-6
    clip_grad: float | None = None


def build_optimizer(model: nn.Module, settings: OptimSettings) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters, decay/no-decay groups (and layer-wise lr scales if asked)."""
    from timm.optim import create_optimizer_v2

    if not any(parameter.requires_grad for parameter in model.parameters()):
        raise ValueError("no trainable parameters: check the run's `freeze` setting")
    return create_optimizer_v2(
        model,
        opt="adamw",
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        betas=tuple(settings.betas),
        eps=settings.eps,
        layer_decay=settings.layer_decay,
        filter_bias_and_bn=True,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, settings: OptimSettings, steps_per_epoch: int):
    """Cosine decay to `min_lr` with linear warm-up, stepped once per optimiser update."""
    from timm.scheduler import CosineLRScheduler

    total = max(1, round(settings.epochs * steps_per_epoch))
    warmup = min(total - 1, round(settings.warmup_epochs * steps_per_epoch))
    return CosineLRScheduler(
        optimizer,
        t_initial=total - warmup,  # warm-up comes first (warmup_prefix), the cosine takes the remaining steps
        lr_min=settings.min_lr,
        warmup_t=warmup,
        warmup_lr_init=settings.warmup_lr,
        warmup_prefix=True,
        t_in_epochs=False,
    )


class VideoMixup:
    """timm Mixup/CutMix on (B, C, T, H, W) clips; returns mixed clips and soft targets (label smoothing
    included). timm draws from NumPy's global generator, which the trainer seeds and checkpoints."""

    def __init__(self, mixup_alpha: float, cutmix_alpha: float, label_smoothing: float, num_classes: int) -> None:
        from timm.data import Mixup

        self.mixup = Mixup(
            mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, label_smoothing=label_smoothing, num_classes=num_classes
        )

    def __call__(self, video: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, channels, frames, height, width = video.shape
        if batch % 2:
            raise ValueError(f"mixup needs an even batch size, got {batch}")
        folded = video.reshape(batch, channels * frames, height, width)
        mixed, targets = self.mixup(folded, labels)
        return mixed.reshape(batch, channels, frames, height, width), targets


def freeze_all_but(model: nn.Module, trainable_prefixes: tuple[str, ...]) -> list[str]:
    """Freeze every parameter whose name does not start with one of the prefixes; returns the trainable names."""
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(trainable_prefixes))
        if parameter.requires_grad:
            trainable.append(name)
    if not trainable:
        raise ValueError(f"no parameter starts with {trainable_prefixes}")
    return trainable


def grad_norms(
    model: nn.Module, groups: dict[str, tuple[str, ...]], gradient=lambda parameter: parameter.grad
) -> dict[str, float]:
    """L2 norm of the gradients of each named group of parameters (by name prefix), and of all of them.
    `gradient` reads a parameter's gradient (ZeRO keeps them out of `.grad`). The squared norms reach the host
    in one transfer: a float() per parameter would wait for the GPU once per parameter."""
    import torch

    named = [(name, grad) for name, parameter in model.named_parameters() if (grad := gradient(parameter)) is not None]
    values = torch.stack([grad.detach().float().pow(2).sum() for _, grad in named]).tolist() if named else []
    squares = dict.fromkeys(groups, 0.0)
    total = 0.0
    for (name, _), value in zip(named, values):
        total += value
        for group, prefixes in groups.items():
            if name.startswith(prefixes):
                squares[group] += value
    return {**{group: value**0.5 for group, value in squares.items()}, "total": total**0.5}
