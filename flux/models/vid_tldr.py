"""Vid-TLDR token merging (Choi et al., CVPR 2024), the training-free baseline of the FluxViT supplement, Table 2.

The reducer runs through the `token_reducer` hook of `FluxViT.forward_features`. After each block it names,
it gets that block's tokens (B, 1 + n, C) with the CLS token first, and the block's attention probabilities
(B, heads, 1 + n, 1 + n). It merges the patch tokens down to the scheduled count and returns them with the
additive attention bias for the blocks that follow.

Saliency (vid-TLDR, "attention sharpness"): take the head-mean attention row of every patch query. Its
sharpness is the negative entropy sum_j p_j log p_j; the `gini` variant uses the purity sum_j p_j^2, which
points the same way. Background queries spread their attention evenly, so their sharpness is low. The
scores go through min-max normalisation, and everything below their mean is zeroed ("background removal").
The rest is shifted by the mean and divided by its maximum ("foreground sharpening"). The result s lies in
[0, 1]: 0 for background, positive for salient foreground. Only patch rows are scored, since CLS is never
merged.

Merging (ToMe-style bipartite soft matching, Bolya et al. 2023, which vid-TLDR builds on): list the live
patch tokens background first, then foreground, each part in position order, and deal that list alternately
into sets A and B. Each A token is matched to its most cosine-similar B token of the same kind (background
or foreground), and to a token of the other kind only when B holds none of its own kind. The A tokens merge
in this order:
  1. background into background;
  2. background into foreground (only when a single background token is left);
  3. foreground into foreground;
  4. foreground into background.
Within each class, the best match weighted by (1 - s) goes first, so less salient tokens with closer matches
merge before the rest. With `protect_foreground` (the default), one step merges only tokens of the lowest
class present, so no salient token is merged, as source or as destination, while two background tokens
remain. Without it, one step merges up to |A| tokens in class order, as a single ToMe step. Steps repeat
until the scheduled count is met exactly, so more than half of the tokens can go after one block. Every step
is decided per sample: a sample that needs fewer or smaller steps marks its merged tokens dead instead of
removing them. A sample's merges therefore do not depend on the rest of its batch. Merged tokens are
size-weighted averages of the tokens they absorb; sizes add up, and saliency is averaged the same way.
Surviving tokens keep their relative (raster) order. The matching metric is the block's output tokens, as in
the reference code; the keys are not exposed by the model hook.

Proportional attention (ToMe): the bias is log(size) along the key axis, (B, 1, 1, N'), with CLS at size 1.
Every later block then attends to a merged token of size m as it would to m copies of it.

This differs from the reference code (mlvlab/vid-TLDR, and the FluxViT repository's `models/vid_tldr.py`,
used there inside the block, after the attention and before the MLP). There, matching uses similarity alone,
one step merges at most half the tokens, and saliency re-weights the mass of the merged sources. Background
sources therefore get weight 0 and are dropped, and sizes no longer add up. The FluxViT copy also sums
instead of averaging, and keeps no sizes or proportional attention. Here saliency decides *which* tokens
merge, and merged tokens stay true size-weighted averages.

State: the reducer keeps the token sizes of ONE forward pass. The pass starts afresh whenever `reduce` is
called for `start_block`: the tokens reaching the first scheduled block have not been merged yet, so their
sizes are all one. This makes one reducer reusable across forward passes without a manual reset, and later
scheduled blocks must follow in order. `reset()` clears the state explicitly, and `forward_with_merging`
calls it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral

import torch
import torch.nn.functional as F

from flux.errors import ConfigError

SALIENCY = ("entropy", "gini", "none")
_EPS = 1e-12


def attention_saliency(attention: torch.Tensor, method: str = "entropy") -> torch.Tensor:
    """Vid-TLDR saliency of the patch tokens from attention probabilities (B, heads, 1 + n, 1 + n), CLS first.
    Returns (B, n) in [0, 1]: 0 for background (below-mean sharpness), positive for foreground."""
    if method not in SALIENCY:
        raise ConfigError(f"Vid-TLDR saliency must be one of {', '.join(SALIENCY)}; got '{method}'")
    rows = attention.float().mean(dim=1)[:, 1:, :]  # (B, n, 1 + n): each patch query over all keys
    if method == "none":
        return rows.new_zeros(rows.shape[:2])
    if method == "entropy":
        sharpness = (rows * rows.clamp_min(_EPS).log()).sum(dim=-1)  # negative entropy
    else:
        sharpness = rows.square().sum(dim=-1)  # purity
    score = sharpness - sharpness.amin(dim=1, keepdim=True)
    score = score / score.amax(dim=1, keepdim=True).clamp_min(_EPS)
    mean = score.mean(dim=1, keepdim=True)
    background = score < mean  # background removal
    score = score - mean  # foreground sharpening
    score = score / score.amax(dim=1, keepdim=True).clamp_min(_EPS)
    return score.masked_fill(background, 0.0).clamp(0.0, 1.0)


def _gather_rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tensor (B, n, ...) at index (B, k) along dim 1."""
    if tensor.dim() == 2:
        return tensor.gather(1, index)
    return tensor.gather(1, index[..., None].expand(-1, -1, tensor.shape[-1]))


def _merge_step(
    x: torch.Tensor, size: torch.Tensor, saliency: torch.Tensor, alive: torch.Tensor, wanted: torch.Tensor, protect: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One bipartite step on patch tokens x (B, n, C) with sizes and saliencies (B, n); tokens where `alive`
    is False were merged by earlier steps and take no part. Each sample b merges at most wanted[b] tokens
    (only of the lowest merge class present if `protect`). Returns x, size, saliency, alive, a (B, n) map
    from each position to the position that holds its token afterwards, and the per-sample merge counts."""
    batch, tokens, dim = x.shape
    with torch.no_grad():
        foreground = saliency > 0
        group = torch.where(alive, foreground.long(), 2)
        order = group.argsort(dim=1, stable=True)  # live background, live foreground, merged; each in position order
        a_pos, b_pos = order[:, ::2], order[:, 1::2]
        metric = F.normalize(x, dim=-1)
        similarity = (_gather_rows(metric, a_pos) @ _gather_rows(metric, b_pos).transpose(1, 2) + 1) / 2  # in [0, 1]
        fg_a, fg_b = foreground.gather(1, a_pos), foreground.gather(1, b_pos)
        cross = fg_a[:, :, None] != fg_b[:, None, :]
        candidates = (similarity - 2.0 * cross).masked_fill(~alive.gather(1, b_pos)[:, None, :], -math.inf)
        match = candidates.argmax(dim=-1)  # (B, |A|): the most similar live B token, of the same kind first
        best = similarity.gather(2, match[..., None]).squeeze(-1)
        kind = 2 * fg_a.long() + cross.gather(2, match[..., None]).squeeze(-1).long()  # merge classes 0..3
        kind = kind.masked_fill(~alive.gather(1, a_pos), 4)  # 4: already merged, never chosen
        weighted = best * (1 - saliency.gather(1, a_pos))
        rank = (2.0 * kind + (1.0 - weighted)).argsort(dim=1, stable=True)  # lowest class, then closest match
        kind = kind.gather(1, rank)
        allowed = (kind == kind[:, :1]).sum(dim=1) if protect else (kind < 4).sum(dim=1)
        count = torch.minimum(wanted, allowed)
        selected = torch.arange(rank.shape[1], device=x.device) < count[:, None]  # (B, |A|), in rank order
        src = a_pos.gather(1, rank)
        dst = b_pos.gather(1, match.gather(1, rank))

    weight = selected.to(x.dtype)
    mass = x * size[..., None]
    mass = mass.scatter_add(1, dst[..., None].expand(-1, -1, dim), _gather_rows(mass, src) * weight[..., None])
    salient_mass = saliency * size
    salient_mass = salient_mass.scatter_add(1, dst, salient_mass.gather(1, src) * weight)
    new_size = size.scatter_add(1, dst, size.gather(1, src) * weight)
    received = torch.zeros_like(size).scatter_add(1, dst, weight) > 0
    merged = torch.where(received[..., None], mass / new_size[..., None], x)
    new_saliency = torch.where(received, salient_mass / new_size, saliency)
    removed = torch.zeros_like(alive).scatter(1, src, selected)  # src positions are distinct
    positions = torch.arange(tokens, device=x.device).expand(batch, -1)
    goes_to = positions.scatter(1, src, torch.where(selected, dst, src))
    return merged, new_size, new_saliency, alive & ~removed, goes_to, count


class VidTLDR:
    """Token reducer for `FluxViT.forward_features(..., token_reducer=...)`.

    schedule: target numbers of PATCH tokens (CLS excluded) after blocks start_block, start_block + 1, ...
    (e.g. [2048, 1536, 1024]). The targets must be positive and non-increasing. A target at or above the
    current count merges nothing. saliency: 'entropy' (vid-TLDR), 'gini', or 'none' (plain ToMe matching).
    proportional_attention: return log(size) as the attention bias of later blocks (None if off).
    protect_foreground: merge only within the lowest merge class per bipartite step, so background goes first
    across steps too (see the module docstring); False gives ToMe-sized steps.

    After a pass, `sizes` (B, 1 + n) holds each token's size (CLS first, size 1), and `assignment` (B, n0)
    gives, for each of the n0 patch tokens that entered the first scheduled block, the index of the patch token
    that now holds it. `steps` counts the bipartite steps taken after each scheduled block.
    """

    def __init__(
        self,
        schedule: Sequence[int],
        start_block: int = 0,
        saliency: str = "entropy",
        proportional_attention: bool = True,
        protect_foreground: bool = True,
    ) -> None:
        schedule = tuple(schedule)
        if not schedule:
            raise ConfigError("Vid-TLDR schedule is empty; give target patch-token counts, e.g. [2048, 1536, 1024]")
        for target in schedule:
            if isinstance(target, bool) or not isinstance(target, Integral) or target <= 0:
                raise ConfigError(f"Vid-TLDR schedule {list(schedule)}: every target must be a positive integer")
        if any(later > earlier for earlier, later in zip(schedule, schedule[1:])):
            raise ConfigError(f"Vid-TLDR schedule {list(schedule)} must be non-increasing")
        if isinstance(start_block, bool) or not isinstance(start_block, Integral) or start_block < 0:
            raise ConfigError(f"Vid-TLDR start_block must be a non-negative integer, got {start_block!r}")
        if saliency not in SALIENCY:
            raise ConfigError(f"Vid-TLDR saliency must be one of {', '.join(SALIENCY)}; got '{saliency}'")
        self.schedule = tuple(int(target) for target in schedule)
        self.start_block = int(start_block)
        self.saliency = saliency
        self.proportional_attention = bool(proportional_attention)
        self.protect_foreground = bool(protect_foreground)
        self.reset()

    def __repr__(self) -> str:
        return (
            f"VidTLDR(schedule={list(self.schedule)}, start_block={self.start_block}, saliency='{self.saliency}', "
            f"proportional_attention={self.proportional_attention}, protect_foreground={self.protect_foreground})"
        )

    @property
    def end_block(self) -> int:
        """One past the last scheduled block: the model needs at least this many blocks."""
        return self.start_block + len(self.schedule)

    def reset(self) -> None:
        """Forget the state of the current forward pass."""
        self.sizes: torch.Tensor | None = None
        self.assignment: torch.Tensor | None = None
        self.steps: dict[int, int] = {}
        self._next_block: int | None = None
        self._merged = False

    def applies_after(self, block_index: int) -> bool:
        return self.start_block <= block_index < self.end_block

    def reduce(self, block_index: int, x: torch.Tensor, attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Merge the patch tokens of x (B, 1 + n, C) to the target of block `block_index`, using that block's
        attention (B, heads, 1 + n, 1 + n). Returns the tokens (B, 1 + target, C) (or x if n <= target) and
        the attention bias for the blocks after it."""
        if not self.applies_after(block_index):
            raise ValueError(f"{self!r} has no target after block {block_index}")
        if x.dim() != 3 or x.shape[1] < 2:
            raise ValueError(f"Vid-TLDR expects tokens (B, 1 + n, C) with n >= 1, got {tuple(x.shape)}")
        batch, count = x.shape[:2]
        if attention.dim() != 4 or attention.shape[0] != batch or attention.shape[-2:] != (count, count):
            raise ValueError(f"attention {tuple(attention.shape)} does not match tokens {tuple(x.shape)}")
        if block_index == self.start_block:
            self.reset()
            self.sizes = torch.ones(batch, count, dtype=torch.float32, device=x.device)
            self.assignment = torch.arange(count - 1, device=x.device).expand(batch, -1)
        elif block_index != self._next_block or self.sizes is None or tuple(self.sizes.shape) != (batch, count):
            raise RuntimeError(
                f"Vid-TLDR reduce after block {block_index} out of order: a forward pass calls blocks "
                f"{self.start_block}..{self.end_block - 1} in turn on the tokens this reducer returned"
            )
        self._next_block = block_index + 1
        target = self.schedule[block_index - self.start_block]
        steps = 0
        if count - 1 > target:
            dtype = torch.promote_types(x.dtype, torch.float32)
            patches, size = x[:, 1:].to(dtype), self.sizes[:, 1:].to(dtype)
            saliency = attention_saliency(attention, self.saliency).to(dtype)
            alive = torch.ones(size.shape, dtype=torch.bool, device=x.device)
            remaining = torch.full((batch,), count - 1 - target, device=x.device)
            assignment = self.assignment
            while bool(remaining.any()):
                patches, size, saliency, alive, goes_to, merged = _merge_step(
                    patches, size, saliency, alive, remaining, self.protect_foreground
                )
                remaining = remaining - merged
                # drop the merged tokens, keeping the live ones in position order
                live = int(alive.sum(dim=1).max())
                keep = (~alive).to(torch.int8).argsort(dim=1, stable=True)[:, :live]
                new_position = torch.full_like(goes_to, -1).scatter(
                    1, keep, torch.arange(live, device=x.device).expand(batch, -1)
                )
                assignment = new_position.gather(1, goes_to.gather(1, assignment))
                patches, size, saliency, alive = (_gather_rows(t, keep) for t in (patches, size, saliency, alive))
                steps += 1
            x = torch.cat([x[:, :1], patches.to(x.dtype)], dim=1)
            self.sizes = torch.cat([self.sizes[:, :1], size.float()], dim=1)
            self.assignment = assignment
            self._merged = True
        self.steps[block_index] = steps
        return x, self.attention_bias(x.dtype)

    def attention_bias(self, dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
        """log(size) on the key axis, (B, 1, 1, N); None without proportional attention or before any merge."""
        if not self.proportional_attention or not self._merged or self.sizes is None:
            return None
        return self.sizes.log().to(dtype)[:, None, None, :]


def forward_with_merging(
    model,
    video: torch.Tensor,
    reducer: VidTLDR,
    head: int = 0,
    *,
    budget: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Logits of `model` on `video` with Vid-TLDR merging: resets the reducer, runs `forward_features` with it
    (after the optional token selection to `budget`), then `forward_head` with output head `head`."""
    depth = len(model.blocks)
    if reducer.end_block > depth:
        raise ConfigError(f"{reducer!r} needs blocks up to {reducer.end_block - 1}, but the model has {depth} blocks")
    reducer.reset()
    features = model.forward_features(video, budget=budget, token_reducer=reducer, generator=generator)
    return model.forward_head(features.tokens, head)
