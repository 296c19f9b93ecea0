"""Training objectives; the trainer calls `objective(batch)` and back-propagates the loss it returns.

Each objective owns the modules it trains besides the vision model (`extra_modules`: a text tower, a learnable
temperature) and what it freezes. Choices the paper leaves open are stated where they are made.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from flux.models.chat import ChatModel, Projector, llm_record
from flux.models.fluxvit import FluxViT
from flux.models.llm import CausalLM
from flux.models.selector import nested_subset
from flux.models.sizes import PATCH_SIZE
from flux.models.text import TextEncoder
from flux.train.optim import VideoMixup, freeze_all_but
from flux.train.runs import ResolvedRun, teacher_layers


def cosine_distance(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos between L2-normalised features, averaged (the UMT / InternVideo2 distillation loss)."""
    return (2 - 2 * (F.normalize(student, dim=-1) * F.normalize(target, dim=-1)).sum(dim=-1)).mean()


def symmetric_info_nce(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP loss over a batch of matching (video, text) pairs: both directions, mean."""
    logits = logit_scale * F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T
    target = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class LogitScale(nn.Module):
    """Learnable inverse temperature, its log trained, capped at 100 (a temperature of at least 0.01, as
    InternVideo2's `temp_min`)."""

    def __init__(self, initial: float) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(initial)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=100.0)


class Objective(abc.ABC):
    extra_modules: nn.ModuleDict

    def __init__(self) -> None:
        self.extra_modules = nn.ModuleDict()

    def setup(self, model: FluxViT) -> None:  # noqa: B027 (an optional hook: most objectives freeze nothing)
        """Freeze what the objective does not train (nothing by default)."""

    def to(self, device: torch.device) -> None:
        """Move the modules the objective holds besides the model (trained or frozen) to the model's device."""
        self.extra_modules.to(device)

    def checkpoint_extra(self) -> dict[str, Any]:
        """What the run's checkpoint keeps of the objective besides the model (a chat projector and its LLM)."""
        return {}

    @abc.abstractmethod
    def tokens_in(self, batch: dict) -> int:
        """Patch tokens the model processed for this batch (throughput accounting)."""

    @abc.abstractmethod
    def __call__(self, model: FluxViT, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss, its named components as detached 0-d tensors). The trainer reads them all in one transfer: a
        float() here would make the host wait for the device once per component."""


def _patches(video: torch.Tensor, patch_size: int) -> int:
    return video.shape[2] * (video.shape[3] // patch_size) * (video.shape[4] // patch_size)


class Classification(Objective):
    """Direct tuning (fixed input, no selection), Flux-Single (one budget) or Flux-Multi (three budgets on the
    same batch with heads 0/1/2, cross-entropy on each, plus SmoothL1 alignment of the projected features of
    the two smaller budgets to the detached, normalised feature of the largest: paper §2.2)."""

    def __init__(self, run: ResolvedRun, num_classes: int) -> None:
        super().__init__()
        self.run = run
        augment = run.augment
        mixing = augment.get("mixup", 0.0) > 0 or augment.get("cutmix", 0.0) > 0
        self.mixup = (
            VideoMixup(augment.get("mixup", 0.0), augment.get("cutmix", 0.0), augment.get("label_smoothing", 0.0), num_classes)
            if mixing
            else None
        )
        self.label_smoothing = augment.get("label_smoothing", 0.0)

    def tokens_in(self, batch: dict) -> int:
        patches = _patches(batch["video"], PATCH_SIZE)
        budgets = self.run.budgets or (patches,)
        return batch["video"].shape[0] * sum(min(b, patches) for b in budgets)

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.dim() == 2:  # soft targets from mixup / cutmix (label smoothing included)
            return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()
        return F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)

    def __call__(self, model: FluxViT, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        video, targets = batch["video"], batch["label"]
        if self.mixup is not None:
            video, targets = self.mixup(video, targets)
        budgets = self.run.budgets or (None,)
        pooled, losses = [], {}
        total = 0.0
        for budget, head in zip(budgets, self.run.heads):
            features = model.pool(model.forward_features(video, budget).tokens, head)
            loss = self._loss(model.classify(features, head), targets)
            losses[f"ce_{budget or 'all'}"] = loss.detach()
            total = total + loss
            pooled.append(features)
        if self.run.method == "multi" and self.run.align:
            reference = F.normalize(pooled[0].detach(), dim=-1)
            for projector, features in enumerate(pooled[1:]):
                alignment = F.smooth_l1_loss(model.align(features, projector), reference)
                losses[f"align_{projector}"] = alignment.detach()
                total = total + alignment
        return total, losses


class Distillation(Objective):
    """Flux-UMT. The student's selector keeps `teacher_budget` tokens of the flexibly sampled clip; the frozen
    teacher sees exactly those; each student budget sees its highest-scoring subset of them [I]. The student's
    last K blocks, plus `clip_pos_embed` at their tokens (through per-layer decoders), align to K teacher
    blocks, and its pooled feature (through the final decoder) to the teacher's pooled feature, CLS included,
    each 2 - 2cos; averaged over budgets (InternVideo2's distillation, with the selector for its masking)."""

    def __init__(self, run: ResolvedRun, teacher: FluxViT) -> None:
        super().__init__()
        self.run = run
        self.teacher = teacher.eval().requires_grad_(False)
        self.layers = run.distill_layers
        self.teacher_layers = teacher_layers(len(teacher.blocks), self.layers, run.teacher_layer_interval)

    def to(self, device: torch.device) -> None:
        super().to(device)
        self.teacher.to(device)

    def tokens_in(self, batch: dict) -> int:
        return batch["video"].shape[0] * sum(self.run.budgets)

    def __call__(self, model: FluxViT, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        video = batch["video"]
        embeddings = model.embed(video)  # computed once for the selection
        budget = min(self.run.teacher_budget, embeddings.shape[1] * embeddings.shape[2])
        with torch.no_grad():
            kept = model.selector(embeddings, budget)
            scores = model.selector.token_scores(embeddings)
            target = self.teacher.forward_features(video, kept=kept, return_layers=self.teacher_layers)
            target_pooled = self.teacher.pool(target.tokens, 0)
        student_layers = [len(model.blocks) - 1 - index for index in range(self.layers)]
        total, losses = 0.0, {}
        for budget, head in zip(self.run.budgets, self.run.heads):
            subset = nested_subset(kept, scores, budget)
            features = model.forward_features(video, kept=subset, return_layers=student_layers)
            where = torch.searchsorted(kept, subset) + 1  # rows of the subset in the teacher's tokens (after CLS)
            rows = torch.cat([torch.zeros_like(where[:, :1]), where], dim=1)
            position = model.distill_position(features.grid, subset, video.shape[0])  # (B, 1 + K, C)
            layer_loss = 0.0
            for decoder, student_index, teacher_index in zip(model.clip_decoder, student_layers, self.teacher_layers):
                teacher_tokens = target.layers[teacher_index].gather(
                    1, rows.unsqueeze(-1).expand(-1, -1, target.tokens.shape[-1])
                )
                layer_loss = layer_loss + cosine_distance(decoder(features.layers[student_index] + position), teacher_tokens)
            layer_loss = layer_loss / max(self.layers, 1)
            pooled_loss = cosine_distance(model.final_clip_decoder(model.pool(features.tokens, head)), target_pooled)
            losses[f"layers_{budget}"] = layer_loss.detach() if self.layers else torch.zeros((), device=video.device)
            losses[f"pooled_{budget}"] = pooled_loss.detach()
            total = total + layer_loss + pooled_loss
        return total / len(self.run.budgets), losses


class VideoTextContrastive(Objective):
    """Symmetric InfoNCE between pooled vision features (through `vision_proj`) and text features.

    Flux-CLIP stage 1 trains only the vision projector (attention pooling + projection) with a frozen text
    tower; stage 2 trains everything, text tower included. The tiny teacher trains both towers from scratch.
    Batches are image or video batches (the trainer alternates them); images are one-frame clips."""

    def __init__(self, run: ResolvedRun, text: TextEncoder, train_text: bool, logit_scale: float | None = None) -> None:
        """`logit_scale`: where the temperature starts (a parent's learned one); else 1 / run.temperature."""
        super().__init__()
        self.run = run
        self.extra_modules["text"] = text
        self.extra_modules["logit_scale"] = LogitScale(logit_scale or 1 / run.temperature)
        text.requires_grad_(train_text)
        self.train_text = train_text

    def setup(self, model: FluxViT) -> None:
        if self.run.freeze == "all_but_vision_projector":
            head = self.run.heads[0]
            freeze_all_but(
                model, (f"clip_projector.{head}." if model.size.output_heads > 1 else "clip_projector.", "vision_proj.")
            )

    def tokens_in(self, batch: dict) -> int:
        patches = _patches(batch["video"], PATCH_SIZE)
        budget = self.run.budgets[0] if self.run.budgets else patches
        return batch["video"].shape[0] * min(budget, patches)

    def __call__(self, model: FluxViT, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        budget = self.run.budgets[0] if self.run.budgets else None
        head = self.run.heads[0]
        vision = model.vision_proj(model.pool(model.forward_features(batch["video"], budget).tokens, head))
        text_encoder = self.extra_modules["text"]
        if self.train_text:
            text = text_encoder.encode(batch["text"])
        else:
            with torch.no_grad():
                text = text_encoder.eval().encode(batch["text"])
        scale = self.extra_modules["logit_scale"]()
        loss = symmetric_info_nce(vision, text, scale)
        return loss, {"contrastive": loss.detach(), "logit_scale": scale.detach()}


class ChatProjection(Objective):
    """Main Table 10's "linear probe": the video encoder (the run's model, from its parent) and the LLM stay frozen,
    only the projector between them learns, by next-token cross-entropy on the answers of instruction turns
    (flux.models.chat). A flexible input takes one of the run's budgets per batch, chosen from the batch's items
    (so that a resumed run sees the same budgets); the encoder runs in eval mode (no drop path: it is not trained)."""

    def __init__(self, run: ResolvedRun, llm: CausalLM, projector: str) -> None:
        super().__init__()
        self.run = run
        self.llm = llm.eval().requires_grad_(False)
        self.projector_kind = projector

    def setup(self, model: FluxViT) -> None:
        model.requires_grad_(False)
        self.extra_modules["projector"] = Projector(model.size.embed_dim, self.llm.embed_dim, self.projector_kind)

    def to(self, device: torch.device) -> None:
        super().to(device)
        self.llm.to(device)

    def budget(self, batch: dict) -> int | None:
        budgets = self.run.budgets or (None,)
        return budgets[int(batch["index"].sum()) % len(budgets)]

    def tokens_in(self, batch: dict) -> int:
        patches = _patches(batch["video"], PATCH_SIZE)
        return batch["video"].shape[0] * min(self.budget(batch) or patches, patches)

    def __call__(self, model: FluxViT, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.eval()
        chat = ChatModel(model, self.extra_modules["projector"], self.llm)
        loss = chat.loss(chat.visual(batch["video"], self.budget(batch)), batch["prompt"], batch["target"])
        return loss, {"answer_ce": loss.detach()}

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"chat": {"projector": self.extra_modules["projector"].to_dict(), "llm": llm_record(self.llm)}}
