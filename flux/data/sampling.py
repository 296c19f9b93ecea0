"""Frame-index sampling (TSN, dense, ClipBERT sparse) and FluxViT's flexible (T, R) batch sampler.

The index functions reproduce the OpenGVLab reference code exactly (protocols.md §4.1), including its
round-half-to-even segment bounds, because off-by-one differences in segment bounds move test accuracy.
Every random draw takes an explicit ``numpy.random.Generator`` so runs are reproducible and resumable.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from flux.errors import ConfigError

# Stream tags, so the index-order and shape generators never share a seed (rank 0 would otherwise
# draw its shapes from the same stream as the permutation).
_ORDER_STREAM = 0
_SHAPE_STREAM = 1


def _as_int(name: str, value: Any, minimum: int, error: type[Exception] = ConfigError) -> int:
    """Coerce an integer argument (numpy ints included) and enforce a lower bound."""
    if isinstance(value, bool):
        raise error(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise error(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise error(f"{name} must be >= {minimum}, got {number}")
    return number


def _check_frames(num_video_frames: Any) -> int:
    """A video with no frames is a data problem (ValueError), not a configuration problem."""
    return _as_int("num_video_frames", num_video_frames, 1, ValueError)


def _check_clip(clip_index: Any, num_clips: Any) -> tuple[int, int]:
    k = _as_int("num_clips", num_clips, 1)
    i = _as_int("clip_index", clip_index, 0, ValueError)
    if i >= k:
        raise ValueError(f"clip_index must be in [0, num_clips) = [0, {k}), got {i}")
    return i, k


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    return rng


def _segment_bounds(n: int, t: int) -> tuple[float, list[int]]:
    """Segment length and the T+1 rounded segment bounds, as in the reference `_get_seq_frames`.

    Python's round() is round-half-to-even like np.round, e.g. round(2.5) == 2.
    """
    seg = max(0.0, float(n - 1) / t)
    return seg, [round(seg * i) for i in range(t + 1)]


def tsn_train_indices(num_video_frames: int, num_segments: int, rng: np.random.Generator) -> list[int]:
    """One random frame per segment; bounds are inclusive (like `random.randint`), so neighbours share an end."""
    n = _check_frames(num_video_frames)
    t = _as_int("num_segments", num_segments, 1)
    _check_rng(rng)
    _, bounds = _segment_bounds(n, t)
    return [min(int(rng.integers(bounds[i], bounds[i + 1] + 1)), n - 1) for i in range(t)]


def tsn_center_indices(num_video_frames: int, num_segments: int) -> list[int]:
    """The reference validation path: segment start + int(seg / 2) (not the midpoint of the rounded bounds)."""
    n = _check_frames(num_video_frames)
    t = _as_int("num_segments", num_segments, 1)
    seg, bounds = _segment_bounds(n, t)
    offset = int(seg / 2)
    return [min(bounds[i] + offset, n - 1) for i in range(t)]


def tsn_test_indices(num_video_frames: int, num_segments: int, clip_index: int, num_clips: int) -> list[int]:
    """Clip k of K takes the same offset int(seg / (K+1) * (k+1)) in every segment, so each clip spans the video."""
    n = _check_frames(num_video_frames)
    t = _as_int("num_segments", num_segments, 1)
    k, num = _check_clip(clip_index, num_clips)
    seg, bounds = _segment_bounds(n, t)
    offset = int(seg / (num + 1) * (k + 1))  # same operation order as the reference, for identical floats
    return [min(bounds[i] + offset, n - 1) for i in range(t)]


def ssv2_train_indices(num_video_frames: int, num_segments: int, rng: np.random.Generator) -> list[int]:
    """The official SSv2 loader (`ssv2_ofa.py`): segments of n // T frames, one random frame in each; a video
    shorter than T frames repeats its first frame."""
    n = _check_frames(num_video_frames)
    t = _as_int("num_segments", num_segments, 1)
    _check_rng(rng)
    length = n // t
    if length == 0:
        return [0] * t
    return [segment * length + int(rng.integers(length)) for segment in range(t)]


def ssv2_test_indices(num_video_frames: int, num_segments: int, clip_index: int, num_clips: int) -> list[int]:
    """The official SSv2 test views (`ssv2_ofa.py`, tick = n / T): with two clips, clip 0 takes the segment
    starts int(tick x), clip 1 the centres int(tick / 2 + tick x); one clip (validation) takes the centres."""
    n = _check_frames(num_video_frames)
    t = _as_int("num_segments", num_segments, 1)
    k, num = _check_clip(clip_index, num_clips)
    if num > 2:
        raise ConfigError(f"the official SSv2 test loader takes 1 or 2 temporal views, not {num}")
    tick = n / float(t)
    if num == 2 and k == 0:
        return [int(tick * x) for x in range(t)]
    return [int(tick / 2.0 + tick * x) for x in range(t)]


def dense_train_indices(num_video_frames: int, clip_len: int, stride: int, rng: np.random.Generator) -> list[int]:
    """VideoMAE/UMT `loadvideo_decord` with one segment: a clip_len*stride window ending at a random frame."""
    n = _check_frames(num_video_frames)
    length = _as_int("clip_len", clip_len, 1)
    rate = _as_int("stride", stride, 1)
    _check_rng(rng)
    converted = length * rate
    if n <= converted:
        # Short video: spread n // stride frames over [0, n] and pad with the last frame. When n < stride
        # the spread is empty and every entry is the last frame, as in the reference.
        spread = np.linspace(0, n, num=n // rate)
        index = np.concatenate((spread, np.full(length - n // rate, float(n))))
        index = np.clip(index, 0, n - 1)
    else:
        end = int(rng.integers(converted, n))  # upper bound exclusive, like np.random.randint
        start = end - converted
        index = np.clip(np.linspace(start, end, num=length), start, end - 1)
    return [int(i) for i in index.astype(np.int64)]


def dense_test_indices(num_video_frames: int, clip_len: int, stride: int, clip_index: int, num_clips: int) -> list[int]:
    """VideoMAE test path: all frames at `stride`, padded to clip_len, then K windows with uniformly spaced starts."""
    n = _check_frames(num_video_frames)
    length = _as_int("clip_len", clip_len, 1)
    rate = _as_int("stride", stride, 1)
    k, num = _check_clip(clip_index, num_clips)
    frames = list(range(0, n, rate))  # never empty: n >= 1 always contributes frame 0
    frames += [frames[-1]] * (length - len(frames))
    # The reference divides by (K - 1) and fails for K = 1; a single clip starts at 0.
    step = max((len(frames) - length) / (num - 1), 0.0) if num > 1 else 0.0
    start = int(k * step)
    return frames[start : start + length]


def sparse_clip_indices(
    num_video_frames: int, fps: float, num_clips: int, clip_seconds: float, frames_per_clip: int, rng: np.random.Generator | None
) -> list[list[int]]:
    """ClipBERT sparse sampling: a few short clips per video instead of one dense span.

    Training (rng given): clip starts drawn independently and uniformly, then sorted by start.
    Inference (rng None): evenly spaced starts from the first to the last possible start (centred when
    num_clips == 1), so the clips cover the video deterministically. A clip lasts
    round(clip_seconds * fps) frames (at least 1, at most the video); inside it, frames_per_clip frames
    sit at the centres of equal sub-intervals.
    """
    n = _check_frames(num_video_frames)
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive finite number, got {fps!r}; read it from the video metadata")
    if not (isinstance(clip_seconds, (int, float)) and math.isfinite(clip_seconds) and clip_seconds > 0):
        raise ConfigError(f"clip_seconds must be a positive finite number, got {clip_seconds!r} (ClipBERT uses 1.0)")
    clips = _as_int("num_clips", num_clips, 1)
    per_clip = _as_int("frames_per_clip", frames_per_clip, 1)
    span = min(n, max(1, round(clip_seconds * fps)))
    last_start = n - span
    if rng is not None:
        _check_rng(rng)
        starts = sorted(int(s) for s in rng.integers(0, last_start + 1, size=clips))
    elif clips == 1:
        starts = [last_start // 2]
    else:
        starts = [j * last_start // (clips - 1) for j in range(clips)]
    offsets = [(2 * j + 1) * span // (2 * per_clip) for j in range(per_clip)]  # always < span
    return [[s + o for o in offsets] for s in starts]


def _int_tuple(name: str, values: Any) -> tuple[int, ...]:
    try:
        items = tuple(values)
    except TypeError:
        raise ConfigError(f"FlexibleSpec.{name} must be a sequence of integers, got {values!r}") from None
    return tuple(_as_int(f"FlexibleSpec.{name} entry", v, 1) for v in items)


@dataclass(frozen=True)
class FlexibleSpec:
    """Candidate frame counts and crop sizes plus the token threshold of FluxViT's flexible sampling (paper §1.2)."""

    frames: tuple[int, ...]
    resolutions: tuple[int, ...]
    token_min: int
    token_max: int
    patch_size: int = 14

    def __post_init__(self) -> None:
        # Normalise lists/ranges to int tuples so the spec is hashable and comparable.
        object.__setattr__(self, "frames", _int_tuple("frames", self.frames))
        object.__setattr__(self, "resolutions", _int_tuple("resolutions", self.resolutions))
        object.__setattr__(self, "patch_size", _as_int("FlexibleSpec.patch_size", self.patch_size, 1))
        object.__setattr__(self, "token_min", _as_int("FlexibleSpec.token_min", self.token_min, 1))
        object.__setattr__(self, "token_max", _as_int("FlexibleSpec.token_max", self.token_max, 1))
        for name, values in (("frames", self.frames), ("resolutions", self.resolutions)):
            if not values:
                raise ConfigError(
                    f"FlexibleSpec.{name} is empty; give at least one value "
                    f"(check the (start, stop, step) range: stop is excluded)"
                )
            if len(set(values)) != len(values):
                # Duplicates would silently overweight a value in the uniform draw.
                raise ConfigError(f"FlexibleSpec.{name} has duplicate values {values}; list each value once")
        bad = [r for r in self.resolutions if r % self.patch_size]
        if bad:
            raise ConfigError(
                f"FlexibleSpec.resolutions {bad} are not multiples of patch_size={self.patch_size}; "
                f"use multiples such as {self.patch_size * 12}, {self.patch_size * 16}"
            )
        if self.token_min > self.token_max:
            raise ConfigError(
                f"FlexibleSpec token range ({self.token_min}, {self.token_max}) has token_min > token_max; swap them"
            )
        if not self.valid_shapes():
            counts = sorted((self.tokens(t, r), t, r) for t in self.frames for r in self.resolutions)
            lo, hi = counts[0], counts[-1]
            raise ConfigError(
                f"FlexibleSpec: no (frames, resolution) pair has a token count in [{self.token_min}, "
                f"{self.token_max}]; reachable counts run from {lo[0]} ({lo[1]}x{lo[2]}) to {hi[0]} "
                f"({hi[1]}x{hi[2]}); widen the token range or the frame/resolution sets"
            )

    def tokens(self, frames: int, resolution: int) -> int:
        """Patch tokens for T frames at R x R (CLS excluded): T * (R // patch) ** 2."""
        return frames * (resolution // self.patch_size) ** 2

    def valid_shapes(self) -> list[tuple[int, int]]:
        """All (T, R) pairs inside the threshold, in frames-major order."""
        return [(t, r) for t in self.frames for r in self.resolutions if self.token_min <= self.tokens(t, r) <= self.token_max]

    @classmethod
    def from_ranges(
        cls, frames: tuple[int, int, int], resolutions: tuple[int, int, int], token_range: tuple[int, int], patch_size: int = 14
    ) -> FlexibleSpec:
        """Build from the paper's "(4, 26, stride=2)" notation, read with Python range semantics (stop excluded)."""
        sets = []
        for name, triple in (("frames", frames), ("resolutions", resolutions)):
            if not isinstance(triple, (tuple, list)) or len(triple) != 3:
                raise ConfigError(f"FlexibleSpec.from_ranges {name} must be (start, stop, step), got {triple!r}")
            start = _as_int(f"FlexibleSpec.from_ranges {name} start", triple[0], 1)
            stop = _as_int(f"FlexibleSpec.from_ranges {name} stop", triple[1], 1)
            step = _as_int(f"FlexibleSpec.from_ranges {name} step", triple[2], 1)
            sets.append(tuple(range(start, stop, step)))
        if not isinstance(token_range, (tuple, list)) or len(token_range) != 2:
            raise ConfigError(f"FlexibleSpec.from_ranges token_range must be (token_min, token_max), got {token_range!r}")
        token_min, token_max = token_range
        return cls(sets[0], sets[1], token_min, token_max, patch_size)


def draw_shape(spec: FlexibleSpec, rng: np.random.Generator) -> tuple[int, int]:
    """The official rejection loop: T and R uniform and independent, redrawn until the token count fits.

    The result is uniform over spec.valid_shapes(); __post_init__ guarantees one exists, so the loop ends.
    """
    _check_rng(rng)
    while True:
        t = spec.frames[int(rng.integers(len(spec.frames)))]
        r = spec.resolutions[int(rng.integers(len(spec.resolutions)))]
        if spec.token_min <= spec.tokens(t, r) <= spec.token_max:
            return t, r


class FlexibleBatchSampler:
    """Yields batches of (dataset_index, T, R); every sample in a batch shares (T, R).

    A plain iterable (a `torch.utils.data.DataLoader` takes it as `batch_sampler`), so that importing the
    samplers, as the config loader does, does not import torch.

    Index order follows torch's DistributedSampler (one permutation per epoch shared by all ranks, padded
    by repeating its start, rank r takes positions r, r + world, ...). Shapes come from a per-rank stream
    seeded with seed + rank, as in the official sampler, so ranks train on different (T, R).
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        spec: FlexibleSpec,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        self.dataset_size = _as_int("dataset_size", dataset_size, 1)
        self.batch_size = _as_int("batch_size", batch_size, 1)
        self.seed = _as_int("seed", seed, 0)
        self.world_size = _as_int("world_size", world_size, 1)
        self.rank = _as_int("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ConfigError(f"rank must be in [0, world_size) = [0, {self.world_size}), got {self.rank}")
        if not isinstance(spec, FlexibleSpec):
            raise ConfigError(f"spec must be a FlexibleSpec, got {type(spec).__name__}")
        self.spec = spec
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.num_samples = math.ceil(self.dataset_size / self.world_size)  # per rank, after padding
        self.epoch = 0
        self._batches_done = 0
        self._resume_from = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch; calling it with the epoch just restored keeps the pending mid-epoch resume."""
        epoch = _as_int("epoch", epoch, 0)
        if epoch != self.epoch:
            self.epoch = epoch
            self._batches_done = 0
            self._resume_from = 0

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def _rank_indices(self) -> list[int]:
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch, _ORDER_STREAM)).permutation(self.dataset_size)
            indices = [int(i) for i in order]
        else:
            indices = list(range(self.dataset_size))
        total = self.num_samples * self.world_size
        padding = total - len(indices)
        indices += (indices * math.ceil(padding / len(indices)))[:padding]
        return indices[self.rank : total : self.world_size]

    def _batches(self) -> list[list[tuple[int, int, int]]]:
        indices = self._rank_indices()
        shape_rng = np.random.default_rng((self.seed + self.rank, self.epoch, _SHAPE_STREAM))
        batches = []
        for b in range(len(self)):
            t, r = draw_shape(self.spec, shape_rng)  # drawn even for skipped batches: keeps the stream aligned
            batches.append([(i, t, r) for i in indices[b * self.batch_size : (b + 1) * self.batch_size]])
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        start, self._resume_from = self._resume_from, 0
        self._batches_done = start
        return self._emit(self._batches(), start)

    def _emit(self, batches: list[list[tuple[int, int, int]]], start: int) -> Iterator[list[tuple[int, int, int]]]:
        for b in range(start, len(batches)):
            self._batches_done = b + 1  # counted when handed out, so state_dict() after it includes it
            yield batches[b]

    def _settings(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "dataset_size": self.dataset_size,
            "batch_size": self.batch_size,
            "world_size": self.world_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "spec": {
                "frames": list(self.spec.frames),
                "resolutions": list(self.spec.resolutions),
                "token_min": self.spec.token_min,
                "token_max": self.spec.token_max,
                "patch_size": self.spec.patch_size,
            },
        }

    def state_dict(self) -> dict[str, Any]:
        """Epoch and batches handed out so far, plus the settings a faithful resume needs.

        A DataLoader with workers prefetches from the sampler, so a trainer checkpointing mid-epoch should
        overwrite "batches_done" with the number of batches it actually consumed.
        """
        return {"epoch": self.epoch, "batches_done": self._batches_done, **self._settings()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore; the next __iter__ skips the batches already done and yields exactly the rest of that epoch.

        The rank is not part of the check: every rank has the same batch count, so any rank's state fits.
        """
        mismatched = [key for key, value in self._settings().items() if key in state and state[key] != value]
        if mismatched:
            raise ConfigError(
                f"sampler state differs in {mismatched} from this sampler; resume with the settings of the interrupted run"
            )
        epoch = _as_int("state['epoch']", state.get("epoch"), 0)
        done = _as_int("state['batches_done']", state.get("batches_done"), 0)
        if done > len(self):
            raise ConfigError(f"state['batches_done']={done} exceeds the {len(self)} batches of an epoch")
        self.epoch = epoch
        self._batches_done = done
        self._resume_from = done
