"""Token selectors: exact indices on constructed inputs, exact budgets over a grid, official rounding."""

import pytest
import torch

from flux.errors import ConfigError
from flux.models.selector import GroupDynamic, RandomSelector, TubeSelector, group_count, group_sizes, split_budget


def constructed(frames: int, tokens: int, moving: dict[tuple[int, int], float]) -> torch.Tensor:
    """(1, T, L, 2) embeddings, zero except where `moving[(t, l)]` puts a value on channel 0."""
    embeddings = torch.zeros(1, frames, tokens, 2)
    for (frame, token), value in moving.items():
        embeddings[0, frame, token, 0] = value
    return embeddings


def test_group_dynamic_picks_the_changing_tokens_by_hand():
    # T=4, L=3, auto -> 2 groups of 2 frames (T = 4 would give one-frame groups with the official rule).
    # Group 0 (frames 0, 1): token 1 changes by 5 between frames 0 and 1 -> scores: frame 0 reuses the (0,1)
    #   distances [0, 5, 0], frame 1 has [0, 5, 0]; flat group indices 1 and 4 score 5.
    # Group 1 (frames 2, 3): token 2 changes by 2 -> group indices 2 and 5 score 2 (global 8 and 11).
    embeddings = constructed(4, 3, {(1, 1): 5.0, (3, 2): 2.0})
    kept = GroupDynamic()(embeddings, budget=4)
    assert kept.tolist() == [[1, 4, 8, 11]]
    # budget 2: one token per group; ties resolve to the earlier token
    assert GroupDynamic()(embeddings, budget=2).tolist() == [[1, 8]]


def test_no_difference_is_taken_across_a_group_boundary():
    # a change only between frame 1 and frame 2 (the boundary of the two groups) scores nothing
    embeddings = constructed(4, 2, {(2, 0): 9.0, (3, 0): 9.0})
    scores0 = GroupDynamic().scores(embeddings[:, 0:2])
    scores1 = GroupDynamic().scores(embeddings[:, 2:4])
    assert scores0.abs().sum() == 0 and scores1.abs().sum() == 0
    # with one group (Dynamic L2) the same change is seen
    assert GroupDynamic(groups=1).scores(embeddings).max() == 9.0


def test_l1_and_l2_norms():
    embeddings = torch.zeros(1, 2, 1, 2)
    embeddings[0, 1, 0] = torch.tensor([3.0, 4.0])
    assert GroupDynamic(groups=1, norm=2).scores(embeddings).tolist() == [[5.0, 5.0]]
    assert GroupDynamic(groups=1, norm=1).scores(embeddings).tolist() == [[7.0, 7.0]]


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24])
@pytest.mark.parametrize("side", [12, 14, 16, 20])
@pytest.mark.parametrize("budget", [1, 100, 1000, 2048])
def test_budgets_are_exact(frames, side, budget):
    torch.manual_seed(frames * side)
    embeddings = torch.randn(2, frames, side * side, 4)
    expected = min(budget, frames * side * side)
    for selector in (GroupDynamic(), GroupDynamic(groups=2), GroupDynamic(groups=1, norm=1), RandomSelector(), TubeSelector()):
        kept = selector(embeddings, budget, torch.Generator().manual_seed(0))
        assert kept.shape == (2, expected), selector
        assert (kept[:, 1:] > kept[:, :-1]).all(), "sorted and unique"
        assert kept.min() >= 0 and kept.max() < frames * side * side


@pytest.mark.parametrize(
    "frames, tokens, budget, kept",
    [
        # the released keep count int((1 - r) * (Tg * L)), r = 1 - budget / (T * L), evaluated as its code does
        (12, 196, 2048, 2048),  # 12 x 196 px: (1 - r) * 588 = 512.0 a group; ((1 - r) * 3) * 196 would give 511
        (8, 196, 1024, 1020),  # 8 x 196 px: 4 x 255
        (24, 256, 2048, 2044),  # 24 x 224 px: 4 x 511
        (12, 256, 2048, 2048),
        (6, 144, 512, 512),  # 2 groups of 3 frames
    ],
)
def test_official_rounding_reproduces_the_released_keep_count(frames, tokens, budget, kept):
    embeddings = torch.randn(2, frames, tokens, 4)
    selected = GroupDynamic(official_rounding=True)(embeddings, budget)
    assert selected.shape == (2, kept)
    assert (selected[:, 1:] > selected[:, :-1]).all(), "sorted and unique"
    assert GroupDynamic()(embeddings, budget).shape == (2, budget)


def test_official_rounding_resolves_ties_as_the_released_argsort():
    # every group's first frame repeats the second frame's scores; the released code orders them with an
    # unstable descending argsort over (B * G, Tg * L) scores, so the tokens of a tie at the cut are the ones
    # that call gives, which need not be the earlier ones (as the default selector's stable sort)
    embeddings = torch.randn(2, 6, 144, 8, generator=torch.Generator().manual_seed(2))
    scores = GroupDynamic().scores(embeddings.reshape(4, 3, 144, 8))  # (B * G, Tg * L)
    order = torch.argsort(scores, dim=1, descending=True)[:, :256] + torch.tensor([0, 432, 0, 432])[:, None]
    expected = order.reshape(2, 512).sort(dim=1).values
    assert torch.equal(GroupDynamic(official_rounding=True)(embeddings, 512), expected)
    # here the default selector (the same 2 x 256 tokens, stable sort) keeps the other token of a tie
    assert not torch.equal(GroupDynamic()(embeddings, 512), expected)
    with pytest.raises(ConfigError, match="even frame count"):
        GroupDynamic(official_rounding=True)(torch.randn(1, 7, 196, 4), 1024)


def test_group_rules_and_budget_split():
    assert [group_count(t, "auto") for t in (1, 2, 3, 4, 6, 8, 12, 16)] == [1, 1, 1, 2, 2, 4, 4, 4]
    assert group_count(5, 4) == 2 and group_count(16, 4) == 4 and group_count(1, 4) == 1
    assert group_sizes(7, 2) == [4, 3] and group_sizes(10, 4) == [3, 3, 2, 2]
    # 1000 over parts of 3, 3, 2, 2 (quotas 300, 300, 200, 200) and 7 over 4, 3 (4, 3)
    assert split_budget(1000, [3, 3, 2, 2]) == [300, 300, 200, 200]
    assert split_budget(7, [4, 3]) == [4, 3] and sum(split_budget(101, [3, 3, 2, 2])) == 101


def test_tube_keeps_the_same_positions_in_every_frame():
    kept = TubeSelector()(torch.zeros(1, 4, 10, 2), 12, torch.Generator().manual_seed(1))
    positions = kept[0].reshape(4, 3) % 10
    assert (positions == positions[0]).all()


def test_random_selection_depends_only_on_the_generator():
    embeddings = torch.randn(2, 4, 16, 3)
    first = RandomSelector()(embeddings, 20, torch.Generator().manual_seed(5))
    assert torch.equal(first, RandomSelector()(embeddings * 7, 20, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, RandomSelector()(embeddings, 20, torch.Generator().manual_seed(6)))
