"""Tests for flux.data.sampling. Expected indices are computed by hand; derivations are in the comments."""

from collections import Counter

import numpy as np
import pytest
import torch.utils.data

from flux.data.sampling import (
    FlexibleBatchSampler,
    FlexibleSpec,
    dense_test_indices,
    dense_train_indices,
    draw_shape,
    sparse_clip_indices,
    ssv2_test_indices,
    ssv2_train_indices,
    tsn_center_indices,
    tsn_test_indices,
    tsn_train_indices,
)
from flux.errors import ConfigError

# n=100, T=8: seg = 99/8 = 12.375 (exact in binary). seg*i for i=0..8:
#   0, 12.375, 24.75, 37.125, 49.5, 61.875, 74.25, 86.625, 99
# round-half-even bounds: 0, 12, 25, 37, 50 (49.5 -> even 50), 62, 74, 87, 99
BOUNDS_100_8 = [0, 12, 25, 37, 50, 62, 74, 87, 99]


# ---------------------------------------------------------------- TSN


def test_tsn_center_hand_computed_n100_t8():
    # offset = int(12.375 / 2) = int(6.1875) = 6; starts + 6
    assert tsn_center_indices(100, 8) == [6, 18, 31, 43, 56, 68, 80, 93]


def test_tsn_center_uses_round_half_even():
    # n=6, T=2: seg = 2.5; bounds round(0)=0, round(2.5)=2 (half-even; half-up would give 3), round(5)=5.
    # offset = int(1.25) = 1 -> [0+1, 2+1]; a round-half-up implementation gives [1, 4].
    assert tsn_center_indices(6, 2) == [1, 3]


def test_tsn_center_is_start_plus_half_segment_not_bound_midpoint():
    # n=10, T=8: seg = 1.125; seg*i = 0, 1.125, 2.25, 3.375, 4.5, 5.625, 6.75, 7.875, 9
    # bounds: 0, 1, 2, 3, 4 (4.5 -> even 4), 6, 7, 8, 9; offset int(0.5625) = 0 -> the starts.
    # The midpoint formula (b_i + b_{i+1}) // 2 would give 5 instead of 4 at i=4.
    assert tsn_center_indices(10, 8) == [0, 1, 2, 3, 4, 6, 7, 8]


def test_tsn_short_video_repeats_frames():
    # n=3, T=8: seg = 0.25; seg*i = 0, .25, .5, .75, 1, 1.25, 1.5, 1.75, 2
    # bounds: 0, 0, 0 (0.5 -> 0), 1, 1, 1, 2 (1.5 -> 2), 2, 2; offset int(0.125) = 0
    assert tsn_center_indices(3, 8) == [0, 0, 0, 1, 1, 1, 2, 2]
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = tsn_train_indices(3, 8, rng)
        assert len(idx) == 8 and idx == sorted(idx) and set(idx) <= {0, 1, 2}


def test_tsn_single_frame_video():
    rng = np.random.default_rng(0)
    assert tsn_center_indices(1, 4) == [0, 0, 0, 0]
    assert tsn_train_indices(1, 4, rng) == [0, 0, 0, 0]
    assert tsn_test_indices(1, 4, 2, 3) == [0, 0, 0, 0]


def test_tsn_test_clips_k4_hand_computed():
    # offset_k = int(12.375 / 5 * (k+1)) = int(2.475, 4.95, 7.425, 9.9) = 2, 4, 7, 9; added to BOUNDS_100_8[:8]
    expected = [
        [2, 14, 27, 39, 52, 64, 76, 89],
        [4, 16, 29, 41, 54, 66, 78, 91],
        [7, 19, 32, 44, 57, 69, 81, 94],
        [9, 21, 34, 46, 59, 71, 83, 96],
    ]
    assert [tsn_test_indices(100, 8, k, 4) for k in range(4)] == expected


def test_tsn_single_test_clip_equals_center():
    # K=1, k=0: int(seg / 2 * 1) == int(seg / 2)
    for n in (1, 2, 7, 31, 100, 301):
        for t in (1, 4, 8, 16):
            assert tsn_test_indices(n, t, 0, 1) == tsn_center_indices(n, t)


def test_tsn_train_within_segments_and_inclusive_end():
    seen = [set() for _ in range(8)]
    for seed in range(300):
        idx = tsn_train_indices(100, 8, np.random.default_rng(seed))
        assert all(isinstance(i, int) for i in idx)
        assert idx == sorted(idx)
        for i, frame in enumerate(idx):
            assert BOUNDS_100_8[i] <= frame <= BOUNDS_100_8[i + 1]
            seen[i].add(frame)
    # Both ends of every segment are drawn (inclusive upper bound, like random.randint).
    for i in range(8):
        assert BOUNDS_100_8[i] in seen[i] and BOUNDS_100_8[i + 1] in seen[i]


def test_tsn_train_deterministic_per_seed():
    a = tsn_train_indices(500, 16, np.random.default_rng(7))
    b = tsn_train_indices(500, 16, np.random.default_rng(7))
    c = tsn_train_indices(500, 16, np.random.default_rng(8))
    assert a == b and a != c


def test_tsn_argument_validation():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="num_video_frames"):
        tsn_center_indices(0, 8)
    with pytest.raises(ConfigError, match="num_segments"):
        tsn_train_indices(10, 0, rng)
    with pytest.raises(ValueError, match="clip_index"):
        tsn_test_indices(10, 8, 4, 4)
    with pytest.raises(ConfigError, match="num_clips"):
        tsn_test_indices(10, 8, 0, 0)
    with pytest.raises(TypeError, match="Generator"):
        tsn_train_indices(10, 8, np.random)


# ---------------------------------------------------------------- dense


def test_dense_train_window_offsets():
    # n=100, clip_len=8, stride=4: converted = 32 < 100; end in [32, 99], start = end - 32 in [0, 67].
    # linspace(start, start+32, 8) offsets 0, 4.57, 9.14, 13.71, 18.29, 22.86, 27.43, 32 -> floor
    # 0, 4, 9, 13, 18, 22, 27 and 32 clipped to end-1 -> 31.
    starts = set()
    for seed in range(2000):
        idx = dense_train_indices(100, 8, 4, np.random.default_rng(seed))
        assert [i - idx[0] for i in idx] == [0, 4, 9, 13, 18, 22, 27, 31]
        starts.add(idx[0])
    assert starts == set(range(68))


def test_dense_train_short_videos():
    rng = np.random.default_rng(0)
    # n=20 <= 32: linspace(0, 20, num=20//4=5) = 0,5,10,15,20, padded with 20 to 8, clipped to 19.
    assert dense_train_indices(20, 8, 4, rng) == [0, 5, 10, 15, 19, 19, 19, 19]
    # n=32 == converted takes the short path: linspace(0, 32, 8) floored, 32 clipped to 31.
    assert dense_train_indices(32, 8, 4, rng) == [0, 4, 9, 13, 18, 22, 27, 31]
    # n=3 < stride: n // stride = 0, every entry is the last frame.
    assert dense_train_indices(3, 8, 4, rng) == [2] * 8
    assert dense_train_indices(1, 8, 4, rng) == [0] * 8


def test_dense_train_deterministic_per_seed():
    a = dense_train_indices(1000, 16, 4, np.random.default_rng(3))
    assert a == dense_train_indices(1000, 16, 4, np.random.default_rng(3))
    assert a != dense_train_indices(1000, 16, 4, np.random.default_rng(4))


def test_dense_test_clips_hand_computed():
    # n=100, stride=4: frames 0, 4, ..., 96 (25 of them); step = (25 - 8) / 2 = 8.5
    # starts int(0), int(8.5)=8, int(17.0)=17 -> frames[0:8], frames[8:16], frames[17:25]
    assert [dense_test_indices(100, 8, 4, k, 3) for k in range(3)] == [
        [0, 4, 8, 12, 16, 20, 24, 28],
        [32, 36, 40, 44, 48, 52, 56, 60],
        [68, 72, 76, 80, 84, 88, 92, 96],
    ]
    assert dense_test_indices(100, 8, 4, 0, 1) == [0, 4, 8, 12, 16, 20, 24, 28]


def test_dense_test_short_video_pads_with_last():
    # n=10, stride=4: frames 0, 4, 8 padded with 8; step = max((8-8)/1, 0) = 0 -> both clips equal.
    assert dense_test_indices(10, 8, 4, 0, 2) == [0, 4, 8, 8, 8, 8, 8, 8]
    assert dense_test_indices(10, 8, 4, 1, 2) == [0, 4, 8, 8, 8, 8, 8, 8]
    assert dense_test_indices(3, 8, 4, 0, 2) == [0] * 8


@pytest.mark.parametrize("n", [1, 2, 5, 31, 32, 33, 97, 400])
@pytest.mark.parametrize("clip_len,stride", [(1, 1), (8, 4), (16, 2), (4, 8)])
def test_dense_invariants(n, clip_len, stride):
    rng = np.random.default_rng(n)
    clips = [dense_train_indices(n, clip_len, stride, rng)]
    clips += [dense_test_indices(n, clip_len, stride, k, 3) for k in range(3)]
    for idx in clips:
        assert len(idx) == clip_len
        assert all(isinstance(i, int) and 0 <= i < n for i in idx)
        assert idx == sorted(idx)


def test_dense_argument_validation():
    with pytest.raises(ConfigError, match="stride"):
        dense_train_indices(10, 8, 0, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="clip_len"):
        dense_test_indices(10, 0, 1, 0, 1)
    with pytest.raises(ValueError, match="clip_index"):
        dense_test_indices(10, 8, 1, -1, 2)


# ---------------------------------------------------------------- ClipBERT sparse


def test_sparse_inference_hand_computed():
    # n=300, fps=30, 1 s clips -> span 30, last start 270; starts j*270//3 = 0, 90, 180, 270.
    # frames in a clip at centres of 3 sub-intervals: (2j+1)*30 // 6 = 5, 15, 25.
    assert sparse_clip_indices(300, 30.0, 4, 1.0, 3, None) == [[5, 15, 25], [95, 105, 115], [185, 195, 205], [275, 285, 295]]
    # One clip is centred: start (300-30)//2 = 135.
    assert sparse_clip_indices(300, 30.0, 1, 1.0, 3, None) == [[140, 150, 160]]


def test_sparse_clip_longer_than_video_is_clamped():
    # n=20 < 30-frame clip: span 20, every start 0; offsets (2j+1)*20 // 6 = 3, 10, 16.
    assert sparse_clip_indices(20, 30.0, 2, 1.0, 3, None) == [[3, 10, 16], [3, 10, 16]]
    rng = np.random.default_rng(0)
    assert sparse_clip_indices(20, 30.0, 2, 1.0, 3, rng) == [[3, 10, 16], [3, 10, 16]]
    assert sparse_clip_indices(1, 30.0, 2, 1.0, 4, rng) == [[0] * 4, [0] * 4]


def test_sparse_train_random_sorted_within_video():
    starts = set()
    for seed in range(200):
        clips = sparse_clip_indices(300, 30.0, 4, 1.0, 3, np.random.default_rng(seed))
        assert len(clips) == 4 and all(len(c) == 3 for c in clips)
        firsts = [c[0] for c in clips]
        assert firsts == sorted(firsts)
        for c in clips:
            start = c[0] - 5
            assert 0 <= start <= 270 and c == [start + 5, start + 15, start + 25]
            starts.add(start)
    assert len(starts) > 200  # genuinely random starts spread over the 271 possible
    a = sparse_clip_indices(300, 30.0, 4, 1.0, 3, np.random.default_rng(5))
    assert a == sparse_clip_indices(300, 30.0, 4, 1.0, 3, np.random.default_rng(5))


def test_sparse_validation():
    with pytest.raises(ConfigError, match="fps"):
        sparse_clip_indices(100, 0.0, 2, 1.0, 2, None)
    with pytest.raises(ConfigError, match="clip_seconds"):
        sparse_clip_indices(100, 30.0, 2, float("nan"), 2, None)
    with pytest.raises(ConfigError, match="frames_per_clip"):
        sparse_clip_indices(100, 30.0, 2, 1.0, 0, None)


# ---------------------------------------------------------------- FlexibleSpec / draw_shape

# Frames {4, 6, ..., 24}; resolutions {168, 196, 224, 252} -> grids 12, 14, 16, 18 -> tokens per frame
# 144, 196, 256, 324. In [2048, 4096]:
#   144*T: T in [14.2, 28.4] -> 16..24     196*T: T in [10.4, 20.9] -> 12..20
#   256*T: T in [8, 16]      -> 8..16      324*T: T in [6.3, 12.6]  -> 8..12
PAPER_VALID = (
    {(t, 168) for t in (16, 18, 20, 22, 24)}
    | {(t, 196) for t in (12, 14, 16, 18, 20)}
    | {(t, 224) for t in (8, 10, 12, 14, 16)}
    | {(t, 252) for t in (8, 10, 12)}
)


@pytest.fixture
def paper_spec() -> FlexibleSpec:
    return FlexibleSpec.from_ranges((4, 26, 2), (168, 280, 28), (2048, 4096))


def test_spec_from_ranges_uses_range_semantics(paper_spec):
    assert paper_spec.frames == tuple(range(4, 25, 2))
    assert paper_spec.resolutions == (168, 196, 224, 252)  # 280 excluded
    assert paper_spec.tokens(8, 224) == 2048
    assert paper_spec.tokens(4, 168) == 576


def test_spec_valid_shapes_hand_enumerated(paper_spec):
    shapes = paper_spec.valid_shapes()
    assert len(shapes) == len(set(shapes)) == 18
    assert set(shapes) == PAPER_VALID
    assert (8, 224) in shapes and (4, 168) not in shapes and (16, 252) not in shapes  # 5184 > 4096


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"frames": (4, 4, 2), "resolutions": (168, 280, 28), "token_range": (2048, 4096)}, "frames is empty"),
        ({"frames": (4, 26, 2), "resolutions": (300, 280, 28), "token_range": (2048, 4096)}, "resolutions is empty"),
        ({"frames": (4, 26, 2), "resolutions": (168, 280, 28), "token_range": (0, 4096)}, "token_min"),
        ({"frames": (4, 26, 2), "resolutions": (168, 280, 28), "token_range": (4096, 2048)}, "token_min > token_max"),
        ({"frames": (4, 26, 0), "resolutions": (168, 280, 28), "token_range": (2048, 4096)}, "step"),
        ({"frames": (4, 26, 2), "resolutions": (160, 280, 28), "token_range": (2048, 4096)}, "multiples of patch_size"),
    ],
)
def test_spec_config_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        FlexibleSpec.from_ranges(**kwargs)


def test_spec_no_valid_pair_reports_reachable_range():
    # Reachable: 4*144 = 576 (4x168) to 6*256 = 1536 (6x224); nothing reaches 2048.
    with pytest.raises(ConfigError, match=r"576 \(4x168\) to 1536 \(6x224\)"):
        FlexibleSpec((4, 6), (168, 224), 2048, 4096)


def test_spec_rejects_duplicates_and_nonpositive():
    with pytest.raises(ConfigError, match="duplicate"):
        FlexibleSpec((8, 8), (224,), 1, 10**6)
    with pytest.raises(ConfigError, match="frames"):
        FlexibleSpec((0, 8), (224,), 1, 10**6)


def test_draw_shape_is_uniform_over_valid_pairs(paper_spec):
    rng = np.random.default_rng(2025)
    draws = Counter(draw_shape(paper_spec, rng) for _ in range(20_000))
    assert set(draws) == PAPER_VALID
    expected = 20_000 / len(PAPER_VALID)  # ~1111, binomial sd ~32; 15% is ~5 sd
    for shape, count in draws.items():
        assert abs(count - expected) < 0.15 * expected, (shape, count)


def test_draw_shape_deterministic(paper_spec):
    rng1, rng2 = np.random.default_rng(11), np.random.default_rng(11)
    assert [draw_shape(paper_spec, rng1) for _ in range(20)] == [draw_shape(paper_spec, rng2) for _ in range(20)]


# ---------------------------------------------------------------- FlexibleBatchSampler


def _epoch(sampler: FlexibleBatchSampler) -> list[list[tuple[int, int, int]]]:
    return [list(batch) for batch in sampler]


def test_sampler_batches_share_a_valid_shape(paper_spec):
    sampler = FlexibleBatchSampler(103, 8, paper_spec, seed=0)
    batches = _epoch(sampler)
    assert len(batches) == len(sampler) == 12
    for batch in batches:
        assert len(batch) == 8
        shapes = {(t, r) for _, t, r in batch}
        assert len(shapes) == 1 and shapes <= PAPER_VALID
        assert all(isinstance(x, int) for item in batch for x in item)
    assert len({(b[0][1], b[0][2]) for b in batches}) > 1  # shapes vary between batches


def test_sampler_same_seed_same_sequence(paper_spec):
    a = _epoch(FlexibleBatchSampler(200, 16, paper_spec, seed=3))
    assert a == _epoch(FlexibleBatchSampler(200, 16, paper_spec, seed=3))
    assert a != _epoch(FlexibleBatchSampler(200, 16, paper_spec, seed=4))


def test_sampler_sharding_unshuffled_hand_computed(paper_spec):
    # 10 items, 4 ranks: 3 per rank, padded order 0..9, 0, 1; rank r takes positions r, r+4, r+8.
    expected = {0: [0, 4, 8], 1: [1, 5, 9], 2: [2, 6, 0], 3: [3, 7, 1]}
    for rank, indices in expected.items():
        sampler = FlexibleBatchSampler(10, 2, paper_spec, seed=0, rank=rank, world_size=4, shuffle=False, drop_last=False)
        batches = _epoch(sampler)
        assert [[i for i, _, _ in b] for b in batches] == [indices[:2], indices[2:]]


def test_sampler_ranks_share_permutation_but_not_shapes(paper_spec):
    world = 4
    per_rank = [_epoch(FlexibleBatchSampler(1000, 10, paper_spec, seed=9, rank=r, world_size=world)) for r in range(world)]
    indices = [[i for b in batches for i, _, _ in b] for batches in per_rank]
    assert sorted(i for idx in indices for i in idx) == list(range(1000))  # disjoint and covering
    shapes = [[(b[0][1], b[0][2]) for b in batches] for batches in per_rank]
    assert len({tuple(s) for s in shapes}) == world


def test_sampler_padding_covers_dataset(paper_spec):
    world = 3
    indices = []
    for r in range(world):
        sampler = FlexibleBatchSampler(11, 2, paper_spec, seed=1, rank=r, world_size=world, drop_last=False)
        indices += [i for b in sampler for i, _, _ in b]
    counts = Counter(indices)
    assert len(indices) == 12 and set(counts) == set(range(11)) and sum(c == 2 for c in counts.values()) == 1


def test_sampler_set_epoch_changes_order(paper_spec):
    sampler = FlexibleBatchSampler(64, 8, paper_spec, seed=0)
    e0 = _epoch(sampler)
    sampler.set_epoch(1)
    e1 = _epoch(sampler)
    assert [i for b in e0 for i, _, _ in b] != [i for b in e1 for i, _, _ in b]
    sampler.set_epoch(0)
    assert _epoch(sampler) == e0


@pytest.mark.parametrize("size,batch,world", [(10, 3, 1), (11, 4, 2), (64, 8, 3), (5, 8, 1), (7, 1, 7)])
@pytest.mark.parametrize("drop_last", [True, False])
def test_sampler_len_matches_iteration(paper_spec, size, batch, world, drop_last):
    for rank in range(world):
        sampler = FlexibleBatchSampler(size, batch, paper_spec, seed=0, rank=rank, world_size=world, drop_last=drop_last)
        batches = _epoch(sampler)
        assert len(batches) == len(sampler)
        per_rank = -(-size // world)
        assert sum(len(b) for b in batches) == (per_rank // batch * batch if drop_last else per_rank)


def test_sampler_shuffle_false_is_arange(paper_spec):
    sampler = FlexibleBatchSampler(10, 4, paper_spec, seed=0, shuffle=False, drop_last=False)
    assert [i for b in sampler for i, _, _ in b] == list(range(10))


@pytest.mark.parametrize("stop_after", [0, 1, 5, 6])  # 50 items per rank -> 6 batches of 8
def test_sampler_resume_mid_epoch(paper_spec, stop_after):
    kwargs = {"dataset_size": 100, "batch_size": 8, "spec": paper_spec, "seed": 5, "rank": 1, "world_size": 2}
    reference = FlexibleBatchSampler(**kwargs)
    reference.set_epoch(3)
    full = _epoch(reference)
    reference.set_epoch(4)
    next_epoch = _epoch(reference)

    interrupted = FlexibleBatchSampler(**kwargs)
    interrupted.set_epoch(3)
    it = iter(interrupted)
    head = [next(it) for _ in range(stop_after)]
    state = interrupted.state_dict()
    assert state["epoch"] == 3 and state["batches_done"] == stop_after
    assert head == full[:stop_after]

    resumed = FlexibleBatchSampler(**kwargs)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # the usual training loop calls this again; it must keep the pending skip
    assert _epoch(resumed) == full[stop_after:]
    assert resumed.state_dict()["batches_done"] == len(full)
    resumed.set_epoch(4)
    assert _epoch(resumed) == next_epoch


def test_sampler_resume_through_dataloader(paper_spec):
    class Echo(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 40

        def __getitem__(self, item: tuple[int, int, int]) -> tuple[int, int, int]:
            return item

    sampler = FlexibleBatchSampler(40, 4, paper_spec, seed=2)
    full = _epoch(sampler)
    resumed = FlexibleBatchSampler(40, 4, paper_spec, seed=2)
    resumed.load_state_dict({**sampler.state_dict(), "batches_done": 6})
    loader = torch.utils.data.DataLoader(Echo(), batch_sampler=resumed, collate_fn=list)
    assert [list(b) for b in loader] == full[6:]


def test_sampler_validation(paper_spec):
    with pytest.raises(ConfigError, match="rank"):
        FlexibleBatchSampler(10, 2, paper_spec, seed=0, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="batch_size"):
        FlexibleBatchSampler(10, 0, paper_spec, seed=0)
    sampler = FlexibleBatchSampler(10, 2, paper_spec, seed=0)
    with pytest.raises(ConfigError, match="seed"):
        sampler.load_state_dict({**sampler.state_dict(), "seed": 1})
    with pytest.raises(ConfigError, match="batches_done"):
        sampler.load_state_dict({**sampler.state_dict(), "batches_done": 6})


def test_ssv2_test_views_hand_computed_n100_t8():
    """ssv2_ofa.py: tick = 100 / 8 = 12.5; starts int(12.5 x), centres int(6.25 + 12.5 x)."""
    assert ssv2_test_indices(100, 8, 0, 2) == [0, 12, 25, 37, 50, 62, 75, 87]
    assert ssv2_test_indices(100, 8, 1, 2) == [6, 18, 31, 43, 56, 68, 81, 93]
    assert ssv2_test_indices(100, 8, 0, 1) == [6, 18, 31, 43, 56, 68, 81, 93]  # validation: the centres
    assert ssv2_test_indices(5, 8, 1, 2) == [0, 0, 1, 2, 2, 3, 4, 4]  # tick 0.625: short videos repeat frames
    with pytest.raises(ConfigError, match="1 or 2 temporal views"):
        ssv2_test_indices(100, 8, 0, 3)


def test_ssv2_train_segments_of_n_div_t_frames():
    rng = np.random.default_rng(0)
    for _ in range(50):
        indices = ssv2_train_indices(100, 8, rng)  # segments of 12 frames: [0, 12), [12, 24), ... [84, 96)
        assert all(12 * i <= index < 12 * (i + 1) for i, index in enumerate(indices))
    assert ssv2_train_indices(5, 8, rng) == [0] * 8  # fewer frames than segments: the official zeros
