"""Token selectors: keep exactly `budget` patch tokens of a (T, h, w) grid.

Scores are computed on the post-DPN, pre-position-embedding patch embeddings, detached (no gradient).
The default, group-dynamic L2 with 4 contiguous frame groups (paper Table 2, "Group-Dynamic(L2)-4"): inside
each group a token scores the L2 distance between its embedding and the same spatial position in the
previous frame (the group's first frame reuses the (0, 1) distance); each group keeps its top tokens.

Budgets are exact: min(budget, T*L) tokens are kept, split over groups in proportion to their sizes by the
largest-remainder rule, and ties go to the earlier token. The official code floors `int((1 - r) * (T_g * L))`
in floating point, r = 1 - budget / (T*L), and can keep up to G tokens fewer (8 x 196 px at 1024 keeps 1020,
24 x 224 px at 2048 keeps 2044; 12 x 196 px at 2048 keeps all 2048); `official_rounding=True` (selector
'official') reproduces its selection exactly, keep count and tie order (even T only, as the official code
asserts), for comparison runs. Odd T and T not divisible by the group count give contiguous groups whose
sizes differ by one frame; a group has at least two frames when T >= 2. A single frame (T = 1, images)
scores each token by its distance to the frame's mean embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from flux.errors import ConfigError
from flux.models.sizes import SELECTOR_NAMES


def official_group_count(frames: int) -> int:
    """The released code's rule: 4 groups if T % 4 == 0, else 2, and 1 for T = 2."""
    return 4 if frames % 4 == 0 else (1 if frames == 2 else 2)


def group_count(frames: int, groups: int | str) -> int:
    """'auto' follows the official rule wherever it gives groups of two frames or more (T = 4 would give
    one-frame groups, where the official code fails): 4 groups when 8 <= T and T % 4 == 0, 2 when T >= 4,
    else 1. An explicit count is capped so that every group has at least two frames."""
    if groups == "auto":
        return 4 if frames >= 8 and frames % 4 == 0 else (2 if frames >= 4 else 1)
    if not isinstance(groups, int) or groups < 1:
        raise ConfigError(f"selector groups must be a positive integer or 'auto', got {groups!r}")
    return max(1, min(groups, frames // 2)) if frames >= 2 else 1


def group_sizes(frames: int, groups: int) -> list[int]:
    base, extra = divmod(frames, groups)
    return [base + (1 if index < extra else 0) for index in range(groups)]


def split_budget(budget: int, sizes: list[int]) -> list[int]:
    """Largest-remainder split of `budget` over parts of the given sizes (each part at most its size)."""
    total = sum(sizes)
    quotas = [budget * size / total for size in sizes]
    shares = [int(quota) for quota in quotas]
    order = sorted(range(len(sizes)), key=lambda index: (-(quotas[index] - shares[index]), index))
    for index in order[: budget - sum(shares)]:
        shares[index] += 1
    return shares


def _descending(scores: torch.Tensor) -> torch.Tensor:
    # stable: ties go to the earlier token, so a selection is reproducible
    return torch.sort(scores, dim=1, descending=True, stable=True).indices


@dataclass(frozen=True)
class GroupDynamic:
    """Frame-difference saliency in contiguous frame groups (groups=1: "Dynamic"; norm 1 or 2)."""

    groups: int | str = "auto"
    norm: int = 2
    official_rounding: bool = False

    @property
    def name(self) -> str:
        prefix = "dynamic" if self.groups == 1 else f"group_dynamic_{self.groups}"
        return f"{prefix}_l{self.norm}"

    def scores(self, group: torch.Tensor) -> torch.Tensor:
        """(B, Tg, L, C) -> (B, Tg*L) saliency."""
        batch, frames, tokens, _ = group.shape
        if frames == 1:
            return torch.linalg.vector_norm(group - group.mean(dim=2, keepdim=True), ord=self.norm, dim=3).reshape(batch, -1)
        distance = torch.linalg.vector_norm(group[:, 1:] - group[:, :-1], ord=self.norm, dim=3)  # (B, Tg-1, L)
        return torch.cat([distance[:, :1], distance], dim=1).reshape(batch, frames * tokens)

    def token_scores(self, embeddings: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T*L) saliency of every token, each scored inside its frame group (for nested subsets)."""
        frames = embeddings.shape[1]
        sizes = group_sizes(frames, group_count(frames, self.groups))
        starts = [sum(sizes[:index]) for index in range(len(sizes))]
        with torch.no_grad():
            return torch.cat(
                [self.scores(embeddings[:, start : start + size].detach().float()) for start, size in zip(starts, sizes)], dim=1
            )

    def __call__(self, embeddings: torch.Tensor, budget: int, generator: torch.Generator | None = None) -> torch.Tensor:
        batch, frames, tokens, _ = embeddings.shape
        keep = min(budget, frames * tokens)
        if keep == frames * tokens:
            return torch.arange(keep, device=embeddings.device).expand(batch, keep)
        if self.official_rounding:
            return self._official(embeddings, budget)
        sizes = group_sizes(frames, group_count(frames, self.groups))
        shares = split_budget(keep, [size * tokens for size in sizes])
        kept, start = [], 0
        with torch.no_grad():
            for size, share in zip(sizes, shares):
                group = embeddings[:, start : start + size].detach().float()
                order = _descending(self.scores(group))[:, :share]
                kept.append(order + start * tokens)
                start += size
        return torch.cat(kept, dim=1).sort(dim=1).values

    def _official(self, embeddings: torch.Tensor, budget: int) -> torch.Tensor:
        """The released `sparse_group_token_selection` step for step, so that equal embeddings keep equal tokens.

        Keep count: the evaluation engine's r = 1 - budget / (T*L), then `int((1 - r) * (Tg * L))` a group with
        the product Tg*L taken first, as written there (12 x 196 px at 2048: 512 a group, where
        ((1 - r) * Tg) * L floors to 511). Tie order: a group's first frame repeats the second frame's scores, so
        every spatial position ties and a tie at the cut is common; the official code resolves it with an
        unstable `torch.argsort(descending=True)` over its (B*G, Tg*L) scores, which the same call on the same
        layout reproduces on the same device and torch build (a stable sort keeps the other token of a tie in
        over half of the random inputs tried on CPU)."""
        batch, frames, tokens, dim = embeddings.shape
        count = official_group_count(frames)
        if frames % 2 or frames // count < 2:
            raise ConfigError(
                f"official_rounding reproduces the released code, which needs an even frame count with at least two "
                f"frames per group (got T = {frames}); use the default selector"
            )
        per_group = frames // count
        ratio = 1 - budget / (frames * tokens)
        share = int((1 - ratio) * (per_group * tokens))
        with torch.no_grad():
            groups = embeddings.detach().float().reshape(batch * count, per_group, tokens, dim)
            order = torch.argsort(self.scores(groups), dim=1, descending=True)[:, :share]  # (B*G, k)
            starts = torch.arange(count, device=embeddings.device).repeat(batch).mul(per_group * tokens)
            return (order + starts[:, None]).reshape(batch, count * share).sort(dim=1).values


@dataclass(frozen=True)
class RandomSelector:
    """Uniformly random tokens, independently per sample."""

    name: str = "random"

    def token_scores(self, embeddings: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        batch, frames, tokens, _ = embeddings.shape
        return torch.rand(batch, frames * tokens, generator=generator, device="cpu").to(embeddings.device)

    def __call__(self, embeddings: torch.Tensor, budget: int, generator: torch.Generator | None = None) -> torch.Tensor:
        batch, frames, tokens, _ = embeddings.shape
        keep = min(budget, frames * tokens)
        noise = torch.rand(batch, frames * tokens, generator=generator, device="cpu").to(embeddings.device)
        return _descending(noise)[:, :keep].sort(dim=1).values


@dataclass(frozen=True)
class TubeSelector:
    """The same random spatial positions in every frame (VideoMAE-style tubes). ceil(K/T) positions are
    drawn; when T does not divide K, the surplus is dropped from the last frames, keeping the budget exact."""

    name: str = "tube"

    def token_scores(self, embeddings: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        batch, frames, tokens, _ = embeddings.shape
        noise = torch.rand(batch, tokens, generator=generator, device="cpu").to(embeddings.device)
        return noise.repeat(1, frames)

    def __call__(self, embeddings: torch.Tensor, budget: int, generator: torch.Generator | None = None) -> torch.Tensor:
        batch, frames, tokens, _ = embeddings.shape
        keep = min(budget, frames * tokens)
        positions = -(-keep // frames)
        noise = torch.rand(batch, tokens, generator=generator, device="cpu").to(embeddings.device)
        spatial = _descending(noise)[:, :positions].sort(dim=1).values  # (B, p)
        offsets = torch.arange(frames, device=embeddings.device).mul(tokens).reshape(1, frames, 1)
        indices = (offsets + spatial[:, None, :]).reshape(batch, frames * positions)
        return indices[:, :keep]


SELECTORS = {
    "group_dynamic_l2": GroupDynamic(groups="auto", norm=2),  # the paper's default ("Group-Dynamic(L2)-4")
    "group_dynamic_l2_4": GroupDynamic(groups=4, norm=2),
    "group_dynamic_l2_2": GroupDynamic(groups=2, norm=2),
    "dynamic_l2": GroupDynamic(groups=1, norm=2),
    "dynamic_l1": GroupDynamic(groups=1, norm=1),
    "tube": TubeSelector(),
    "random": RandomSelector(),
    "official": GroupDynamic(groups="auto", norm=2, official_rounding=True),
}


def build_selector(name: str):
    assert set(SELECTORS) == set(SELECTOR_NAMES), "keep flux.models.sizes.SELECTOR_NAMES in step"
    if name not in SELECTORS:
        raise ConfigError(f"unknown token selector '{name}'; known: {', '.join(SELECTORS)}")
    return SELECTORS[name]


def nested_subset(kept: torch.Tensor, scores: torch.Tensor, budget: int) -> torch.Tensor:
    """The `budget` highest-scoring of the `kept` tokens, in raster order: a subset of a selection, for
    students that see part of what the teacher sees (Flux-UMT)."""
    if budget >= kept.shape[1]:
        return kept
    ranked = _descending(scores.gather(1, kept))[:, :budget]
    return kept.gather(1, ranked).sort(dim=1).values
