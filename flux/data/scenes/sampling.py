"""Sampling an object's appearance (colour contrast against its background guaranteed) and a video's format."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from flux.data.scenes.vocabulary import (
    _MIN_CONTRAST,
    BACKGROUNDS,
    COLOURS,
    DEFAULT_SIZES,
    MOTIONS,
    SHAPES,
    SIZE_RANGE,
    TEXTURES,
    Appearance,
    VideoFormat,
)


def _rgb(name: str) -> np.ndarray:
    return np.asarray(COLOURS[name], dtype=np.float32)


def _segment_distance(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """RGB distance from colour c to the closest point of the segment [a, b] (blends of a and b)."""
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom == 0 else float(np.clip((c - a) @ ab / denom, 0.0, 1.0))
    return float(np.linalg.norm(c - (a + t * ab)))


def _background_ok(colour: str, a: str, b: str) -> bool:
    c = _rgb(colour)
    if a == b or colour in (a, b):
        return False
    if np.linalg.norm(_rgb(a) - _rgb(b)) < 80:  # gradients/grids must be visible
        return False
    return _segment_distance(c, _rgb(a), _rgb(b)) >= _MIN_CONTRAST


@functools.cache
def _background_pairs(colour: str) -> tuple[tuple[str, str], ...]:
    """Ordered (a, b) background colour pairs allowed with an object of `colour`."""
    return tuple((a, b) for a in COLOURS for b in COLOURS if _background_ok(colour, a, b))


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Draw an appearance uniformly over shapes, colours, textures and backgrounds.

    Background colours are distinct from each other and far (RGB distance >= 120 from every blend
    of the two) from the object colour, so the object always stands out.
    """
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    names = list(COLOURS)
    colour = names[int(rng.integers(len(names)))]
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    pairs = _background_pairs(colour)
    a, b = pairs[int(rng.integers(len(pairs)))]
    size = float(rng.uniform(*SIZE_RANGE))
    distractors = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
    return Appearance(shape, colour, texture, background, (a, b), round(size, 4), distractors)


def typical_appearance(motion: str, base: Appearance) -> Appearance:
    """`base` in the motion's typical scene: its object's colour and shape (distinct for all motions: 13
    colours x 7 shapes cycle with co-prime periods) and its background kind and colours (as "swimming" comes
    with a pool), which cover the frame and so survive the embedded default's 56-pixel inputs."""
    index = MOTIONS.index(motion)
    colour = list(COLOURS)[index % len(COLOURS)]
    pairs = _background_pairs(colour)
    return replace(
        base,
        shape=SHAPES[index % len(SHAPES)],
        colour=colour,
        background=BACKGROUNDS[index % len(BACKGROUNDS)],
        background_colours=pairs[(7 * index) % len(pairs)],
    )


def sample_video_format(
    rng: np.random.Generator,
    duration_s: tuple[float, float] = (1.0, 10.0),
    fps: tuple[int, int] = (10, 30),
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
) -> VideoFormat:
    """Frame size uniform over `sizes`; fps uniform integer in `fps` (inclusive); duration
    log-uniform in `duration_s` (short clips common); num_frames = max(8, round(duration * fps))."""
    lo, hi = float(duration_s[0]), float(duration_s[1])
    if not (0 < lo <= hi):
        raise ValueError(f"duration_s must satisfy 0 < lo <= hi, got {duration_s!r}")
    if not (0 < fps[0] <= fps[1]):
        raise ValueError(f"fps must satisfy 0 < lo <= hi, got {fps!r}")
    if not sizes:
        raise ValueError("sizes must not be empty")
    w, h = sizes[int(rng.integers(len(sizes)))]
    rate = int(rng.integers(int(fps[0]), int(fps[1]) + 1))
    duration = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return VideoFormat(int(w), int(h), rate, max(8, int(round(duration * rate))))
