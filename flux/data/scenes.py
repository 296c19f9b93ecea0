"""Procedural renderer for the synthetic datasets of the embedded (CPU) default.

Every synthetic video shows one textured object (plus 0-2 static distractor shapes) on a static
background. The CLASS of a video is carried by the object's MOTION; its appearance (shape, colour,
texture, background, size, distractors) is sampled independently of the class, so a model has to
use temporal information to classify, and frame-difference token selection sees the changing pixels
concentrate on the object. `typical_appearance` gives each motion a fixed object and background, for
datasets that mimic the object/scene bias of Kinetics-like classes (see synthetic.appearance_bias).

Conventions
-----------
* Image coordinates: x grows to the right, y grows downwards, a pixel ``(i, j)`` covers
  ``[j, j+1) x [i, i+1)`` so its centre is ``(j + 0.5, i + 0.5)``.
* Angles are in image space, so a POSITIVE angle increment is a CLOCKWISE turn as the viewer sees
  it. "left", "right", "up", "down" are image-space directions, so a horizontal flip of a
  rendered "moving left" video is a "moving right" video and clockwise becomes counterclockwise.
* Motions are functions of normalised time ``u = t / (T - 1)`` in [0, 1] over the whole video (or
  over each step's equal share for multi-step videos), so the class can be read off ~4-8 frames
  sampled uniformly whatever the clip's length or frame rate.
* All randomness flows from ``SceneSpec.seed`` through ``np.random.default_rng([seed, stream])``;
  no global RNG is touched. Motion, background and distractors use separate streams, so the same
  seed with another motion keeps the same background and distractors.

The object's free range along an axis is the span its centre can take while the whole object
(at its largest size in the video) stays inside the frame. Displacements are fractions of it:
"creeping right" 12-20 %, "moving left/right/up/down" 42-60 %, "dashing right" 85-100 %.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from flux.io import atomic_path

__all__ = [
    "MOTIONS",
    "SHAPES",
    "COLOURS",
    "TEXTURES",
    "BACKGROUNDS",
    "DEFAULT_SIZES",
    "Appearance",
    "VideoFormat",
    "SceneSpec",
    "sample_appearance",
    "typical_appearance",
    "sample_video_format",
    "render_video",
    "render_background",
    "render_image",
    "describe_object",
    "video_captions",
    "image_captions",
    "write_mp4",
    "write_jpeg",
]

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

MOTIONS: tuple[str, ...] = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "creeping right",
    "dashing right",
    "rotating clockwise",
    "rotating counterclockwise",
    "growing",
    "shrinking",
    "appearing",
    "disappearing",
    "bouncing",
    "orbiting",
    "blinking",
    "staying still",
)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond", "cross", "hexagon")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (245, 215, 40),
    "cyan": (40, 205, 215),
    "magenta": (215, 45, 195),
    "orange": (245, 135, 25),
    "purple": (125, 55, 185),
    "pink": (250, 155, 185),
    "brown": (125, 80, 40),
    "grey": (128, 128, 128),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}

# Bumped whenever the same scene spec renders different pixels: it is part of every synthetic dataset's
# job spec, so Snakemake regenerates the data (and retrains what learned from it) after such a change.
RENDER_VERSION = 2

TEXTURES: tuple[str, ...] = ("solid", "striped", "checkered", "dotted")

BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise", "grid")

# (width, height): short side 112-168, mostly landscape, one portrait.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = (
    (160, 120),
    (176, 144),
    (192, 144),
    (224, 168),
    (208, 160),
    (150, 112),
    (144, 176),
)

SIZE_RANGE = (0.22, 0.36)  # object extent (circumscribed diameter) as a fraction of min(H, W)
_MIN_CONTRAST = 120.0  # RGB distance between the object colour and any background colour
_SCALE_MIN, _SCALE_MAX = 0.3, 1.3  # object scale limits (1 = Appearance.size)

# RNG stream tags (second word of the seed sequence)
_STREAM_MOTION, _STREAM_BACKGROUND, _STREAM_DISTRACTORS, _STREAM_POSE = 1, 2, 3, 4

# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Appearance:
    shape: str
    colour: str
    texture: str
    background: str
    background_colours: tuple[str, str]
    size: float
    distractors: int

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"Appearance.shape {self.shape!r} is not one of {SHAPES}")
        if self.colour not in COLOURS:
            raise ValueError(f"Appearance.colour {self.colour!r} is not one of {tuple(COLOURS)}")
        if self.texture not in TEXTURES:
            raise ValueError(f"Appearance.texture {self.texture!r} is not one of {TEXTURES}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"Appearance.background {self.background!r} is not one of {BACKGROUNDS}")
        bgc = tuple(self.background_colours)
        object.__setattr__(self, "background_colours", bgc)
        if len(bgc) != 2 or any(c not in COLOURS for c in bgc):
            raise ValueError(f"Appearance.background_colours {bgc!r} must be two names from {tuple(COLOURS)}")
        if self.colour in bgc:
            raise ValueError(f"Appearance.background_colours {bgc!r} must differ from the object colour {self.colour!r}")
        if not (0.05 <= float(self.size) <= 0.6):
            raise ValueError(f"Appearance.size {self.size!r} must lie in [0.05, 0.6] (fraction of min(H, W))")
        if not (0 <= int(self.distractors) <= 4) or int(self.distractors) != self.distractors:
            raise ValueError(f"Appearance.distractors {self.distractors!r} must be an integer in [0, 4]")


@dataclass(frozen=True)
class VideoFormat:
    width: int
    height: int
    fps: int
    num_frames: int

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if int(v) != v or v <= 0:
                raise ValueError(f"VideoFormat.{f.name} must be a positive integer, got {v!r}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"VideoFormat width/height must be even (yuv420p), got {self.width}x{self.height}")
        if min(self.width, self.height) < 16:
            raise ValueError(f"VideoFormat {self.width}x{self.height} is too small (min side 16)")


@dataclass(frozen=True)
class SceneSpec:
    motions: tuple[str, ...]
    appearance: Appearance
    video: VideoFormat
    seed: int

    def __post_init__(self) -> None:
        motions = (self.motions,) if isinstance(self.motions, str) else tuple(self.motions)
        object.__setattr__(self, "motions", motions)
        if not motions:
            raise ValueError("SceneSpec.motions must name at least one motion")
        bad = [m for m in motions if m not in MOTIONS]
        if bad:
            raise ValueError(f"SceneSpec.motions {bad!r} are not in MOTIONS {MOTIONS}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"SceneSpec.seed must be a non-negative integer, got {self.seed!r}")


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Shapes: signed distance functions in the object's local unit frame (circumscribed radius ~0.95)
# --------------------------------------------------------------------------------------------


def _convex(vertices: Sequence[tuple[float, float]]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """SDF (exact inside, approximate outside) of a convex polygon as a max of half-planes."""
    vs = np.asarray(vertices, dtype=np.float64)
    centre = vs.mean(axis=0)
    planes = []
    for i in range(len(vs)):
        p, q = vs[i], vs[(i + 1) % len(vs)]
        e = q - p
        n = np.array([e[1], -e[0]]) / np.hypot(*e)
        if n @ (p - centre) < 0:
            n = -n
        planes.append((np.float32(n[0]), np.float32(n[1]), np.float32(n @ p)))

    def sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = None
        for nx, ny, d in planes:
            h = nx * u + ny * v - d
            out = h if out is None else np.maximum(out, h, out=out)
        return out

    return sdf


def _regular(n: int, radius: float = 0.95, start_deg: float = -90.0) -> list[tuple[float, float]]:
    return [
        (radius * math.cos(math.radians(start_deg + 360.0 * k / n)), radius * math.sin(math.radians(start_deg + 360.0 * k / n)))
        for k in range(n)
    ]


def _circle_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v) - np.float32(0.95)


def _square_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) - np.float32(0.67)


def _cross_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av_ = np.abs(u), np.abs(v)
    arm, half = np.float32(0.9), np.float32(0.3)
    return np.minimum(np.maximum(au - arm, av_ - half), np.maximum(au - half, av_ - arm))


_STAR_OUTER, _STAR_INNER = 0.95, 0.45
_STAR_SECTOR = 2.0 * math.pi / 5.0
# canonical half-sector: tip at (0, R), inner vertex at angle 36 degrees from the tip
_st_tip = np.array([0.0, _STAR_OUTER])
_st_in = np.array([_STAR_INNER * math.sin(_STAR_SECTOR / 2), _STAR_INNER * math.cos(_STAR_SECTOR / 2)])
_st_e = _st_in - _st_tip
_st_n = np.array([_st_e[1], -_st_e[0]]) / np.hypot(*_st_e)
if _st_n @ (-_st_tip) > 0:  # outward normal points away from the origin
    _st_n = -_st_n
_ST_NX, _ST_NY, _ST_D = np.float32(_st_n[0]), np.float32(_st_n[1]), np.float32(_st_n @ _st_tip)


def _star_sdf(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Five-pointed star, one point up (local -v), by folding the angle into one half-sector."""
    r = np.sqrt(u * u + v * v)
    theta = np.arctan2(u, -v)  # 0 = up, growing clockwise
    sector = np.float32(_STAR_SECTOR)
    t = theta + sector / 2
    t -= sector * np.floor(t * np.float32(1.0 / _STAR_SECTOR))
    t -= sector / 2
    phi = np.abs(t, out=t)
    return _ST_NX * (r * np.sin(phi)) + _ST_NY * (r * np.cos(phi)) - _ST_D


_SHAPE_SDF: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _circle_sdf,
    "square": _square_sdf,
    "triangle": _convex(_regular(3)),
    "star": _star_sdf,
    "diamond": _convex([(0.0, -0.95), (0.68, 0.0), (0.0, 0.95), (-0.68, 0.0)]),
    "cross": _cross_sdf,
    "hexagon": _convex(_regular(6)),
}
assert set(_SHAPE_SDF) == set(SHAPES)

# orientation marker: disc at local (0, -0.5) ("up"), inside every shape
_MARKER_V, _MARKER_R = np.float32(-0.5), np.float32(0.2)


def _luma(c: Sequence[float]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _shade(rgb: Sequence[int]) -> np.ndarray:
    """Second texture colour: a darker version of bright colours, a lighter one of dark colours."""
    c = np.asarray(rgb, dtype=np.float32)
    return c * 0.5 if _luma(c) > 100 else c + (255.0 - c) * 0.5


def _marker_colour(rgb: Sequence[int]) -> np.ndarray:
    return np.array([250, 250, 250] if _luma(rgb) < 150 else [15, 15, 15], dtype=np.float32)


@dataclass(frozen=True)
class _Style:
    shape: str
    colour: np.ndarray  # float32 (3, 1, 1), broadcasts over a planar (3, h, w) region
    shade: np.ndarray
    marker: np.ndarray | None
    texture: str

    def __post_init__(self) -> None:
        for name in ("colour", "shade", "marker"):
            val = getattr(self, name)
            if val is not None:
                object.__setattr__(self, name, np.asarray(val, dtype=np.float32).reshape(3, 1, 1))


def _object_style(app: Appearance) -> _Style:
    c = np.asarray(COLOURS[app.colour], dtype=np.float32)
    return _Style(app.shape, c, _shade(c), _marker_colour(c), app.texture)


def _parity(k: np.ndarray) -> np.ndarray:
    """0.0 / 1.0 for even / odd integer-valued floats."""
    half = k * np.float32(0.5)
    return k - np.float32(2.0) * np.floor(half)


def _clip01(x: np.ndarray) -> np.ndarray:
    np.maximum(x, 0.0, out=x)
    np.minimum(x, 1.0, out=x)
    return x


def _bbox(cx: float, cy: float, r: float, w: int, h: int) -> tuple[int, int, int, int]:
    return (
        max(0, int(math.floor(cx - r - 1))),
        max(0, int(math.floor(cy - r - 1))),
        min(w, int(math.ceil(cx + r + 1))),
        min(h, int(math.ceil(cy + r + 1))),
    )


def _shade_object(style: _Style, u: np.ndarray, v: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and colour of the object at local coordinates `u`, `v` (B, h, w) float32 (unit =
    circumscribed radius, "up" = -v). `radius` (B, 1, 1) is the radius in pixels, used to
    anti-alias edges over one pixel. Returns alpha (B, h, w) and colour (B, 3, h, w) or (3, 1, 1)."""
    neg_r = -radius.astype(np.float32)
    alpha = _SHAPE_SDF[style.shape](u, v)
    alpha *= neg_r
    alpha += np.float32(0.5)
    _clip01(alpha)

    if style.texture == "solid":
        colour = style.colour
    else:
        # (np.mod on floats is slow; parities and fractions come from np.floor instead)
        if style.texture == "striped":
            pattern = _parity(np.floor(u * np.float32(2.5)))
        elif style.texture == "checkered":
            cells = np.floor(u * np.float32(2.2))
            cells += np.floor(v * np.float32(2.2))
            pattern = _parity(cells)
        else:  # dotted: dots of radius 0.13 on a grid of period 0.5 (local units)
            fu, fv = u * np.float32(2.0), v * np.float32(2.0)
            fu -= np.floor(fu)
            fu -= np.float32(0.5)
            fv -= np.floor(fv)
            fv -= np.float32(0.5)
            fu *= fu
            fv *= fv
            fu += fv
            pattern = (fu < np.float32(0.26 * 0.26)).astype(np.float32)
        colour = style.colour + pattern[:, None] * (style.shade - style.colour)

    if style.marker is not None:  # orientation marker: a contrasting disc at local (0, -0.5)
        m = v - _MARKER_V
        m *= m
        m += u * u
        np.sqrt(m, out=m)
        m -= _MARKER_R
        m *= neg_r
        m += np.float32(0.5)
        _clip01(m)
        colour = colour + m[:, None] * (style.marker - colour)
    return alpha, colour


def _local_coords(
    x0: np.ndarray,
    y0: np.ndarray,
    size_x: int,
    size_y: int,
    cx: np.ndarray,
    cy: np.ndarray,
    radius: np.ndarray,
    angle: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Object-local (u, v) float32 grids (B, size_y, size_x) for boxes whose top-left pixels are
    (x0, y0), objects centred at (cx, cy) with circumscribed `radius` and clockwise `angle`."""
    inv = 1.0 / radius[:, None]
    dx = ((x0[:, None] + np.arange(size_x) + 0.5 - cx[:, None]) * inv).astype(np.float32)
    dy = ((y0[:, None] + np.arange(size_y) + 0.5 - cy[:, None]) * inv).astype(np.float32)
    c = np.cos(angle).astype(np.float32)[:, None]
    s = np.sin(angle).astype(np.float32)[:, None]
    # world offset = R(angle) @ local  =>  local = R(-angle) @ world offset
    u = (c * dx)[:, None, :] + (s * dy)[:, :, None]
    v = (c * dy)[:, :, None] - (s * dx)[:, None, :]
    return u, v


def _draw(canvas: np.ndarray, style: _Style, cx: float, cy: float, radius: float, angle: float) -> None:
    """Alpha-composite one object onto the channel-planar `canvas` (3, H, W) float32 in place.

    `radius` is the circumscribed radius in pixels, `angle` the clockwise rotation in radians.
    The object is evaluated only over its bounding box, from coordinate grids (no resampling);
    edges are anti-aliased through the shape's signed distance.
    """
    h, w = canvas.shape[1:]
    if radius <= 0.05:
        return
    x0, y0, x1, y1 = _bbox(cx, cy, radius, w, h)
    if x0 >= x1 or y0 >= y1:
        return
    one = lambda val: np.array([val], dtype=np.float64)  # noqa: E731
    u, v = _local_coords(one(x0), one(y0), x1 - x0, y1 - y0, one(cx), one(cy), one(radius), one(angle))
    alpha, colour = _shade_object(style, u, v, one(radius)[:, None, None])
    region = canvas[None, :, y0:y1, x0:x1]
    region += alpha[:, None] * (colour - region)


# --------------------------------------------------------------------------------------------
# Backgrounds and distractors
# --------------------------------------------------------------------------------------------


def _background(app: Appearance, width: int, height: int, seed: int) -> np.ndarray:
    """Static background as a channel-planar (3, H, W) float32 array, deterministic in
    (appearance, size, seed)."""
    rng = np.random.default_rng([seed, _STREAM_BACKGROUND])
    a, b = _rgb(app.background_colours[0]), _rgb(app.background_colours[1])
    ys = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
    xs = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    kind = app.background
    if kind == "plain":
        img = np.broadcast_to(a, (height, width, 3)).copy()
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * math.pi)
        proj = xs * np.float32(math.cos(theta)) + ys * np.float32(math.sin(theta))
        t = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
        img = a + t[..., None] * (b - a)
    elif kind == "noise":
        # smooth blobs blending a and b, plus faint per-pixel grain
        gh, gw = int(rng.integers(3, 6)), int(rng.integers(4, 7))
        coarse = rng.uniform(0.0, 1.0, size=(gh + 1, gw + 1)).astype(np.float32)
        gy = (ys[:, 0] / height) * gh
        gx = (xs[0, :] / width) * gw
        iy, ix = np.minimum(gy.astype(int), gh - 1), np.minimum(gx.astype(int), gw - 1)
        fy, fx = (gy - iy)[:, None], (gx - ix)[None, :]
        fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)  # smoothstep
        c00, c01 = coarse[iy][:, ix], coarse[iy][:, ix + 1]
        c10, c11 = coarse[iy + 1][:, ix], coarse[iy + 1][:, ix + 1]
        t = (c00 * (1 - fx) + c01 * fx) * (1 - fy) + (c10 * (1 - fx) + c11 * fx) * fy
        img = a + t[..., None] * (b - a)
        img += rng.normal(0.0, 6.0, size=(height, width, 1)).astype(np.float32)
    else:  # grid
        img = np.broadcast_to(a, (height, width, 3)).copy()
        # 2-pixel lines on even coordinates: exact under 4:2:0 chroma subsampling
        step = 2 * int(rng.integers(6, 11))
        thick = 2
        ox, oy = 2 * int(rng.integers(step // 2)), 2 * int(rng.integers(step // 2))
        line_x = ((np.arange(width) - ox) % step) < thick
        line_y = ((np.arange(height) - oy) % step) < thick
        img[line_y[:, None] | line_x[None, :]] = b
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.float32).transpose(2, 0, 1))


def _place_distractors(canvas: np.ndarray, app: Appearance, seed: int, avoid: tuple[float, float, float, float]) -> None:
    """Draw `app.distractors` small static solid shapes, preferring places outside `avoid`
    (x0, y0, x1, y1: the region the main object sweeps)."""
    if app.distractors <= 0:
        return
    h, w = canvas.shape[1:]
    rng = np.random.default_rng([seed, _STREAM_DISTRACTORS])
    bg_a, bg_b = _rgb(app.background_colours[0]), _rgb(app.background_colours[1])
    colours = [n for n in COLOURS if n != app.colour and _segment_distance(_rgb(n), bg_a, bg_b) >= 90] or [
        n for n in COLOURS if n != app.colour
    ]
    placed: list[tuple[float, float, float]] = []
    ax0, ay0, ax1, ay1 = avoid
    for _ in range(app.distractors):
        radius = float(rng.uniform(0.045, 0.065)) * min(h, w)
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = colours[int(rng.integers(len(colours)))]
        angle = float(rng.uniform(0, 2 * math.pi))
        best, best_cost = None, None
        for _try in range(24):
            cx = float(rng.uniform(radius + 1, w - radius - 1))
            cy = float(rng.uniform(radius + 1, h - radius - 1))
            # overlap with the avoided box (inflated by the radius) and with earlier distractors
            ox = max(0.0, min(cx + radius, ax1) - max(cx - radius, ax0))
            oy = max(0.0, min(cy + radius, ay1) - max(cy - radius, ay0))
            cost = ox * oy
            for px, py, pr in placed:
                cost += max(0.0, (pr + radius + 2) - math.hypot(cx - px, cy - py)) * 10
            if best_cost is None or cost < best_cost:
                best, best_cost = (cx, cy), cost
            if cost == 0:
                break
        assert best is not None
        style = _Style(shape, _rgb(colour), _rgb(colour), None, "solid")
        _draw(canvas, style, best[0], best[1], radius, angle)
        placed.append((best[0], best[1], radius))


# --------------------------------------------------------------------------------------------
# Motion planning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Track:
    """Per-frame object state: centre (pixels), scale (1 = Appearance.size), clockwise angle
    (radians), visibility; plus the base circumscribed radius in pixels."""

    x: np.ndarray
    y: np.ndarray
    scale: np.ndarray
    angle: np.ndarray
    visible: np.ndarray
    base_radius: float

    @property
    def radius(self) -> np.ndarray:
        return self.base_radius * self.scale


def _step_index(num_frames: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """For each frame: which step it belongs to and its local time in [0, 1] within the step."""
    u = np.arange(num_frames, dtype=np.float64) / max(num_frames - 1, 1)
    pos = u * steps
    idx = np.minimum(np.floor(pos).astype(int), steps - 1)
    return idx, pos - idx


def _plan(spec: SceneSpec) -> _Track:
    vid, app = spec.video, spec.appearance
    W, H, T = vid.width, vid.height, vid.num_frames
    K = len(spec.motions)
    rng = np.random.default_rng([spec.seed, _STREAM_MOTION])
    idx, lu = _step_index(T, K)

    # ---- draw every step's parameters first (fixed draw order => stable streams) ----
    params: list[dict] = []
    for m in spec.motions:
        p: dict = {}
        if m in ("moving left", "moving right"):
            p["dx"] = float(rng.uniform(0.42, 0.60)) * (1 if m.endswith("right") else -1)
        elif m in ("moving up", "moving down"):
            p["dy"] = float(rng.uniform(0.42, 0.60)) * (1 if m.endswith("down") else -1)
        elif m == "creeping right":
            p["dx"] = float(rng.uniform(0.12, 0.20))
        elif m == "dashing right":
            p["dx"] = float(rng.uniform(0.85, 1.00))
        elif m.startswith("rotating"):
            sweep = math.radians(float(rng.uniform(200.0, 320.0)))
            p["dangle"] = sweep if m == "rotating clockwise" else -sweep
        elif m in ("growing", "shrinking"):
            ratio = math.log(float(rng.uniform(2.4, 3.0)))
            p["dlog"] = ratio if m == "growing" else -ratio
        elif m == "appearing":
            p["t0"] = float(rng.uniform(0.35, 0.6))
        elif m == "disappearing":
            p["t0"] = float(rng.uniform(0.4, 0.65))
        elif m == "bouncing":
            p["periods"] = float(rng.uniform(2.2, 2.8))
            p["amp"] = float(rng.uniform(0.33, 0.45))  # half peak-to-peak, fraction of free y range
            p["phase"] = float(rng.uniform(-math.pi / 4, math.pi / 4))
            p["sign"] = 1.0 if rng.random() < 0.5 else -1.0
        elif m == "orbiting":
            p["radius"] = float(rng.uniform(0.30, 0.45))  # fraction of min free range
            p["turns"] = float(rng.uniform(0.8, 1.25))
            p["dir"] = 1.0 if rng.random() < 0.5 else -1.0
            p["a0"] = float(rng.uniform(0, 2 * math.pi))
        elif m == "blinking":
            p["segments"] = int(rng.integers(5, 8))
            p["start_on"] = bool(rng.random() < 0.5)
        params.append(p)
    base_angle = float(rng.uniform(0, 2 * math.pi))
    pos_x, pos_y = float(rng.random()), float(rng.random())

    # ---- scale (log domain), then fit it into [_SCALE_MIN, _SCALE_MAX] ----
    step_dlog = np.array([p.get("dlog", 0.0) for p in params])
    start_log = np.concatenate([[0.0], np.cumsum(step_dlog)[:-1]])
    log_s = start_log[idx] + step_dlog[idx] * lu
    lo_lim, hi_lim = math.log(_SCALE_MIN), math.log(_SCALE_MAX)
    span = float(log_s.max() - log_s.min())
    if span > hi_lim - lo_lim:
        log_s = log_s * ((hi_lim - lo_lim) / span)
    shift = float(np.clip(0.0, lo_lim - log_s.min(), hi_lim - log_s.max()))
    scale = np.exp(log_s + shift)

    base_radius = app.size * min(W, H) / 2.0
    r_max = base_radius * float(scale.max())
    margin = max(1.0, 0.02 * min(W, H))
    free_x = max(W - 2 * (margin + r_max), 0.0)
    free_y = max(H - 2 * (margin + r_max), 0.0)

    # ---- positions relative to the start, in pixels ----
    rel_x = np.zeros(T)
    rel_y = np.zeros(T)
    cur_x = cur_y = 0.0
    for k, (m, p) in enumerate(zip(spec.motions, params)):
        sel = idx == k
        t = lu[sel]
        if "dx" in p or "dy" in p:
            ddx, ddy = p.get("dx", 0.0) * free_x, p.get("dy", 0.0) * free_y
            rel_x[sel], rel_y[sel] = cur_x + ddx * t, cur_y + ddy * t
            end = (cur_x + ddx, cur_y + ddy)
        elif m == "bouncing":
            amp = p["amp"] * free_y
            tt = np.append(t, 1.0)  # the step's frames, then its end point
            off = p["sign"] * amp * (np.cos(2 * np.pi * p["periods"] * tt + p["phase"]) - math.cos(p["phase"]))
            rel_x[sel], rel_y[sel] = cur_x, cur_y + off[:-1]
            end = (cur_x, cur_y + float(off[-1]))
        elif m == "orbiting":
            rad = p["radius"] * min(free_x, free_y)
            ccx, ccy = cur_x - rad * math.cos(p["a0"]), cur_y - rad * math.sin(p["a0"])
            ang = p["a0"] + p["dir"] * 2 * np.pi * p["turns"] * np.append(t, 1.0)
            px, py = ccx + rad * np.cos(ang), ccy + rad * np.sin(ang)
            rel_x[sel], rel_y[sel] = px[:-1], py[:-1]
            end = (float(px[-1]), float(py[-1]))
        else:
            rel_x[sel], rel_y[sel] = cur_x, cur_y
            end = (cur_x, cur_y)
        cur_x, cur_y = end

    # shrink the whole path uniformly if it does not fit (e.g. several moves the same way)
    ext_x, ext_y = float(np.ptp(rel_x)), float(np.ptp(rel_y))
    fit = min(1.0, free_x / ext_x if ext_x > 1e-9 else 1.0, free_y / ext_y if ext_y > 1e-9 else 1.0)
    rel_x, rel_y = rel_x * fit, rel_y * fit
    lo_x = margin + r_max - rel_x.min()
    hi_x = W - margin - r_max - rel_x.max()
    lo_y = margin + r_max - rel_y.min()
    hi_y = H - margin - r_max - rel_y.max()
    ox = lo_x + pos_x * max(hi_x - lo_x, 0.0) if hi_x >= lo_x else (lo_x + hi_x) / 2
    oy = lo_y + pos_y * max(hi_y - lo_y, 0.0) if hi_y >= lo_y else (lo_y + hi_y) / 2

    # ---- angle and visibility ----
    step_da = np.array([p.get("dangle", 0.0) for p in params])
    start_a = base_angle + np.concatenate([[0.0], np.cumsum(step_da)[:-1]])
    angle = start_a[idx] + step_da[idx] * lu
    visible = np.ones(T, dtype=bool)
    for k, (m, p) in enumerate(zip(spec.motions, params)):
        sel = idx == k
        t = lu[sel]
        if m == "appearing":
            visible[sel] = t >= p["t0"]
        elif m == "disappearing":
            visible[sel] = t < p["t0"]
        elif m == "blinking":
            seg = np.minimum(np.floor(t * p["segments"]).astype(int), p["segments"] - 1)
            visible[sel] = (seg % 2 == 0) == p["start_on"]
    return _Track(rel_x + ox, rel_y + oy, scale, angle, visible, base_radius)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _static_layer(spec: SceneSpec, track: _Track) -> np.ndarray:
    vid, app = spec.video, spec.appearance
    canvas = _background(app, vid.width, vid.height, spec.seed)
    r = track.radius
    avoid = (
        float((track.x - r).min()),
        float((track.y - r).min()),
        float((track.x + r).max()),
        float((track.y + r).max()),
    )
    _place_distractors(canvas, app, spec.seed, avoid)
    return canvas


def render_background(spec: SceneSpec) -> np.ndarray:
    """The static part of `render_video(spec)` (background + distractors), (H, W, 3) uint8.
    Pixels where this differs from a rendered frame belong to the moving object."""
    track = _plan(spec)
    return np.ascontiguousarray(np.rint(_static_layer(spec, track)).astype(np.uint8).transpose(1, 2, 0))


_BATCH = 16  # frames evaluated together (amortises numpy call overhead over frames)


def render_video(spec: SceneSpec) -> np.ndarray:
    """Render `spec` to a (T, H, W, 3) uint8 array; bit-identical for identical specs."""
    vid = spec.video
    W, H, T = vid.width, vid.height, vid.num_frames
    track = _plan(spec)
    static = _static_layer(spec, track)
    style = _object_style(spec.appearance)
    out = np.empty((T, H, W, 3), dtype=np.uint8)
    out[:] = np.ascontiguousarray(np.rint(static).astype(np.uint8).transpose(1, 2, 0))
    radius = track.radius
    frames = np.flatnonzero(track.visible & (radius > 0.05))
    if frames.size == 0:
        return out
    # pad the static layer so that every object box lies inside it (boxes are cropped on output)
    pad = int(math.ceil(float(radius.max()))) + 3
    static_pad = np.pad(static, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    for start in range(0, frames.size, _BATCH):
        ts = frames[start : start + _BATCH]
        r, cx, cy = radius[ts], track.x[ts] + pad, track.y[ts] + pad
        rb = float(r.max())
        size = int(math.ceil(2 * rb)) + 3
        x0 = np.floor(cx - rb - 1).astype(np.int64)
        y0 = np.floor(cy - rb - 1).astype(np.int64)
        patches = np.stack([static_pad[:, b : b + size, a : a + size] for a, b in zip(x0, y0)])
        u, v = _local_coords(x0, y0, size, size, cx, cy, r, track.angle[ts])
        alpha, colour = _shade_object(style, u, v, r[:, None, None])
        patches += alpha[:, None] * (colour - patches)
        patches_u8 = np.rint(patches).astype(np.uint8).transpose(0, 2, 3, 1)
        for k, t in enumerate(ts):
            fx0, fy0 = int(x0[k]) - pad, int(y0[k]) - pad  # box origin in frame coordinates
            sx0, sy0 = max(0, -fx0), max(0, -fy0)
            sx1, sy1 = min(size, W - fx0), min(size, H - fy0)
            if sx0 < sx1 and sy0 < sy1:
                out[t, fy0 + sy0 : fy0 + sy1, fx0 + sx0 : fx0 + sx1] = patches_u8[k, sy0:sy1, sx0:sx1]
    return out


# cells of a 3x3 layout: centre fraction ranges and their names
_H_CELLS = (("left", 0.0, 0.30), ("centre", 0.42, 0.58), ("right", 0.70, 1.0))
_V_CELLS = (("top", 0.0, 0.30), ("middle", 0.42, 0.58), ("bottom", 0.70, 1.0))


def _image_layout(app: Appearance, width: int, height: int) -> tuple[float, float, str, str]:
    """Object centre for `render_image`, a pure function of (appearance, width, height) so that
    `image_captions` can state where the object is; returns (cx, cy, column, row)."""
    key = repr(
        (
            app.shape,
            app.colour,
            app.texture,
            app.background,
            app.background_colours,
            float(app.size),
            int(app.distractors),
            int(width),
            int(height),
        )
    ).encode()
    rng = np.random.default_rng([zlib.crc32(key), 7])
    radius = app.size * min(width, height) / 2.0
    margin = max(1.0, 0.02 * min(width, height))
    col = _H_CELLS[int(rng.integers(3))]
    row = _V_CELLS[int(rng.integers(3))]

    def pick(cell: tuple[str, float, float], extent: int) -> float:
        lo_px, hi_px = radius + margin, extent - radius - margin
        lo, hi = max(cell[1] * extent, lo_px), min(cell[2] * extent, hi_px)
        if lo > hi:  # object too large for the cell: hug the nearest feasible point
            lo = hi = min(max((cell[1] + cell[2]) / 2 * extent, lo_px), hi_px)
        return float(rng.uniform(lo, hi))

    return pick(col, width), pick(row, height), col[0], row[0]


def render_image(appearance: Appearance, width: int, height: int, seed: int) -> np.ndarray:
    """Static scene (H, W, 3) uint8 for image-text data: background, distractors and the object
    at the place `image_captions(..., width_height=(width, height))` describes; `seed` drives the
    background noise, distractors and the object's orientation."""
    VideoFormat(width, height, 1, 1)  # validates the size
    cx, cy, _, _ = _image_layout(appearance, width, height)
    radius = appearance.size * min(width, height) / 2.0
    canvas = _background(appearance, width, height, seed)
    _place_distractors(canvas, appearance, seed, (cx - radius, cy - radius, cx + radius, cy + radius))
    angle = float(np.random.default_rng([seed, _STREAM_POSE]).uniform(0, 2 * math.pi))
    _draw(canvas, _object_style(appearance), cx, cy, radius, angle)
    return np.ascontiguousarray(np.rint(canvas).astype(np.uint8).transpose(1, 2, 0))


# --------------------------------------------------------------------------------------------
# Captions
# --------------------------------------------------------------------------------------------

# participle forms ("a red square moving left") and finite verb forms ("the red square moves left")
_MOTION_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "moving left": {
        "ing": ("moving left", "moving to the left", "sliding to the left", "travelling leftwards"),
        "verb": ("moves left", "moves to the left", "slides to the left", "travels leftwards"),
    },
    "moving right": {
        "ing": ("moving right", "moving to the right", "sliding to the right", "travelling rightwards"),
        "verb": ("moves right", "moves to the right", "slides to the right", "travels rightwards"),
    },
    "moving up": {
        "ing": ("moving up", "moving upwards", "rising", "sliding upwards"),
        "verb": ("moves up", "moves upwards", "rises", "slides upwards"),
    },
    "moving down": {
        "ing": ("moving down", "moving downwards", "sinking", "sliding downwards"),
        "verb": ("moves down", "moves downwards", "sinks", "slides downwards"),
    },
    "creeping right": {
        "ing": ("creeping right", "inching to the right", "edging slightly to the right", "creeping slowly rightwards"),
        "verb": ("creeps right", "inches to the right", "edges slightly to the right", "creeps slowly rightwards"),
    },
    "dashing right": {
        "ing": (
            "dashing right",
            "racing across to the right",
            "shooting all the way to the right",
            "dashing across the frame to the right",
        ),
        "verb": (
            "dashes right",
            "races across to the right",
            "shoots all the way to the right",
            "dashes across the frame to the right",
        ),
    },
    "rotating clockwise": {
        "ing": ("rotating clockwise", "spinning clockwise", "turning clockwise", "turning round clockwise"),
        "verb": ("rotates clockwise", "spins clockwise", "turns clockwise", "turns round clockwise"),
    },
    "rotating counterclockwise": {
        "ing": ("rotating counterclockwise", "spinning counterclockwise", "turning anticlockwise", "rotating anticlockwise"),
        "verb": ("rotates counterclockwise", "spins counterclockwise", "turns anticlockwise", "rotates anticlockwise"),
    },
    "growing": {
        "ing": ("growing", "getting bigger", "expanding", "growing larger"),
        "verb": ("grows", "gets bigger", "expands", "grows larger"),
    },
    "shrinking": {
        "ing": ("shrinking", "getting smaller", "contracting", "shrinking down"),
        "verb": ("shrinks", "gets smaller", "contracts", "shrinks down"),
    },
    "appearing": {
        "ing": ("appearing", "popping into view", "coming into view", "showing up"),
        "verb": ("appears", "pops into view", "comes into view", "shows up"),
    },
    "disappearing": {
        "ing": ("disappearing", "vanishing", "going out of view", "disappearing from view"),
        "verb": ("disappears", "vanishes", "goes out of view", "disappears from view"),
    },
    "bouncing": {
        "ing": ("bouncing", "bouncing up and down", "hopping up and down", "bobbing up and down"),
        "verb": ("bounces", "bounces up and down", "hops up and down", "bobs up and down"),
    },
    "orbiting": {
        "ing": ("orbiting", "moving in a circle", "circling around", "going round in a circle"),
        "verb": ("orbits", "moves in a circle", "circles around", "goes round in a circle"),
    },
    "blinking": {
        "ing": ("blinking", "flashing on and off", "flickering", "blinking on and off"),
        "verb": ("blinks", "flashes on and off", "flickers", "blinks on and off"),
    },
    "staying still": {
        "ing": ("staying still", "sitting still", "not moving", "staying in place"),
        "verb": ("stays still", "sits still", "does not move", "stays in place"),
    },
}
assert set(_MOTION_PHRASES) == set(MOTIONS)

_TEXTURE_PHRASES: dict[str, tuple[str, ...]] = {
    "solid": ("{c} {s}", "solid {c} {s}", "solid-coloured {c} {s}"),
    "striped": ("{c} striped {s}", "striped {c} {s}", "{c} {s} with stripes"),
    "checkered": ("{c} checkered {s}", "checkered {c} {s}", "{c} {s} with a checkerboard pattern"),
    "dotted": ("{c} dotted {s}", "{c} polka-dot {s}", "{c} {s} covered in dots"),
}

_BACKGROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "plain": ("plain {a} background", "{a} background"),
    "gradient": ("{a} to {b} gradient background", "{a} and {b} gradient background"),
    "noise": ("noisy {a} and {b} background", "mottled {a} and {b} background"),
    "grid": ("{a} background with {b} grid lines", "{a} and {b} grid background"),
}

_LOCATION_PHRASES: dict[tuple[str, str], tuple[str, ...]] = {
    ("left", "top"): ("in the top left corner", "in the upper left"),
    ("centre", "top"): ("at the top", "near the top edge"),
    ("right", "top"): ("in the top right corner", "in the upper right"),
    ("left", "middle"): ("on the left", "on the left side"),
    ("centre", "middle"): ("in the centre", "in the middle of the frame"),
    ("right", "middle"): ("on the right", "on the right side"),
    ("left", "bottom"): ("in the bottom left corner", "in the lower left"),
    ("centre", "bottom"): ("at the bottom", "near the bottom edge"),
    ("right", "bottom"): ("in the bottom right corner", "in the lower right"),
}

_SHAPE_PLURAL = {s: s + ("es" if s.endswith(("ss", "x")) else "s") for s in SHAPES}
_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def _article(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def describe_object(appearance: Appearance) -> str:
    """Canonical object phrase, e.g. "red striped square" ("red square" when solid)."""
    c, s = appearance.colour, appearance.shape
    return f"{c} {s}" if appearance.texture == "solid" else f"{c} {appearance.texture} {s}"


def _object_phrase(app: Appearance, rng: np.random.Generator) -> str:
    if rng.random() < 0.4:
        return describe_object(app)
    opts = _TEXTURE_PHRASES[app.texture]
    return opts[int(rng.integers(len(opts)))].format(c=app.colour, s=app.shape)


def _background_phrase(app: Appearance, rng: np.random.Generator) -> str:
    opts = _BACKGROUND_PHRASES[app.background]
    a, b = app.background_colours
    return opts[int(rng.integers(len(opts)))].format(a=a, b=b)


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _collect(make: Callable[[], str], n: int, what: str) -> list[str]:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out: list[str] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < n:
        cap = " ".join(make().split())
        if cap in seen:
            misses += 1
            if misses > 2000:  # the phrasing space is exhausted (or nearly)
                raise ValueError(f"could only build {len(out)} distinct {what} captions, {n} requested")
            continue
        misses = 0
        seen.add(cap)
        out.append(cap)
    return out


def _single_caption(spec: SceneSpec, rng: np.random.Generator) -> str:
    app = spec.appearance
    m = spec.motions[0]
    ing = _pick(_MOTION_PHRASES[m]["ing"], rng)
    verb = _pick(_MOTION_PHRASES[m]["verb"], rng)
    obj = _object_phrase(app, rng)
    bg = _background_phrase(app, rng)
    cs = f"{app.colour} {app.shape}"
    templates = (
        lambda: f"{_article(obj)} {ing}",
        lambda: f"{_article(obj)} {ing} on {_article(bg)}",
        lambda: f"the {cs} {verb}",
        lambda: f"the {obj} {verb}",
        lambda: f"{_article(obj)} {verb} on {_article(bg)}",
        lambda: f"we see {_article(obj)} {ing}",
        lambda: f"video of {_article(obj)} {ing} on {_article(bg)}",
        lambda: f"{_article(obj)} {ing} in front of {_article(bg)}",
        lambda: f"in this clip the {obj} {verb}",
        lambda: f"there is {_article(obj)} {ing}",
        lambda: f"{_article(obj)} that {verb}",
        lambda: f"{_article(app.shape)} in {app.colour} {ing}",
        lambda: f"on {_article(bg)}, {_article(obj)} {verb}",
    )
    return templates[int(rng.integers(len(templates)))]()


def _multi_caption(spec: SceneSpec, rng: np.random.Generator) -> str:
    app = spec.appearance
    verbs = [_pick(_MOTION_PHRASES[m]["verb"], rng) for m in spec.motions]
    obj = _object_phrase(app, rng)
    bg = _background_phrase(app, rng)
    cs = f"{app.colour} {app.shape}"
    k = int(rng.integers(6))
    if k == 0:
        return f"{_article(obj)} " + ", then ".join(verbs)
    if k == 1 and len(verbs) == 2:
        return f"first the {cs} {verbs[0]}, then it {verbs[1]}"
    if k == 1:
        middle = "".join(f", then it {v}" for v in verbs[1:-1])
        return f"first the {cs} {verbs[0]}{middle}, and finally it {verbs[-1]}"
    if k == 2:
        return f"the {obj} " + " and then ".join(verbs)
    if k == 3:
        return f"{_article(obj)} {verbs[0]}" + "".join(f"; next it {v}" for v in verbs[1:])
    if k == 4:
        return f"on {_article(bg)}, {_article(obj)} " + ", then ".join(verbs)
    return f"we see {_article(obj)} that " + ", then ".join(verbs)


def video_captions(spec: SceneSpec, rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct lower-case captions naming the object's colour and shape and its motion(s)
    (in order for multi-step videos); phrasing varies with `rng`. Raises ValueError when fewer
    than `n` distinct phrasings exist."""
    if len(spec.motions) == 1:
        return _collect(lambda: _single_caption(spec, rng), n, "video")
    return _collect(lambda: _multi_caption(spec, rng), n, "video")


def image_captions(
    appearance: Appearance,
    rng: np.random.Generator,
    n: int,
    width_height: tuple[int, int] | None = None,
) -> list[str]:
    """`n` distinct captions of the static scene: colour, shape, texture, background and, when
    `width_height` is given, where `render_image(appearance, width, height, ...)` puts the object."""
    app = appearance
    loc_opts: tuple[str, ...] = ()
    if width_height is not None:
        _, _, col, row = _image_layout(app, int(width_height[0]), int(width_height[1]))
        loc_opts = _LOCATION_PHRASES[(col, row)]
    cs = f"{app.colour} {app.shape}"

    def make() -> str:
        obj = _object_phrase(app, rng)
        bg = _background_phrase(app, rng)
        t = [
            lambda: _article(obj),
            lambda: f"{_article(obj)} on {_article(bg)}",
            lambda: f"a picture of {_article(obj)}",
            lambda: f"an image of {_article(obj)} against {_article(bg)}",
            lambda: f"{_article(cs)} shape on {_article(bg)}",
            lambda: f"{_article(app.shape)} coloured {app.colour} on {_article(bg)}",
            lambda: f"{_article(bg)} with {_article(obj)}",
        ]
        if app.distractors:
            others = f"{_COUNT_WORDS[app.distractors]} smaller shape" + ("s" if app.distractors > 1 else "")
            t.append(lambda: f"{_article(obj)} and {others} on {_article(bg)}")
        if loc_opts:
            t += [
                lambda: f"{_article(obj)} {_pick(loc_opts, rng)}",
                lambda: f"{_article(obj)} {_pick(loc_opts, rng)} on {_article(bg)}",
                lambda: f"there is {_article(obj)} {_pick(loc_opts, rng)}",
                lambda: f"a picture with {_article(cs)} {_pick(loc_opts, rng)}",
            ]
        return t[int(rng.integers(len(t)))]()

    return _collect(make, n, "image")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _rgb_to_yuv420p_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(..., H, W, 3) uint8 RGB (H, W even) -> Y (..., H, W), Cb and Cr (..., H/2, W/2) uint8,
    BT.601 limited range in exact integer arithmetic (the same on every platform); chroma from
    2x2 block averages. Pixelwise/blockwise, so converting a 2-aligned sub-block of a frame gives
    exactly the corresponding part of the whole frame's planes."""
    r, g, b = (rgb[..., k].astype(np.int32) for k in range(3))
    # BT.601 coefficients scaled by 2**16 (rows sum to 219/255 and 0 * 2**16 exactly)
    y = r * 16829
    y += g * 33039
    y += b * 6416
    y += (16 << 16) + (1 << 15)
    y >>= 16

    def quad(c: np.ndarray) -> np.ndarray:  # sum of each 2x2 block
        s = c[..., 0::2, 0::2] + c[..., 1::2, 0::2]
        s += c[..., 0::2, 1::2]
        s += c[..., 1::2, 1::2]
        return s

    rs, gs, bs = quad(r), quad(g), quad(b)
    # the block sums carry a factor 4 = 2**2
    cb = (-9714 * rs - 19070 * gs + 28784 * bs + (128 << 18) + (1 << 17)) >> 18
    cr = (28784 * rs - 24103 * gs - 4681 * bs + (128 << 18) + (1 << 17)) >> 18
    # ranges are Y in [16, 235], Cb/Cr in [16, 240] by construction: no clipping needed
    return y.astype(np.uint8), cb.astype(np.uint8), cr.astype(np.uint8)


def _rgb_to_yuv420p(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, 3H/2, W) uint8 yuv420p as PyAV's `from_ndarray` lays it out
    (Y plane, then Cb, then Cr, flattened)."""
    T, H, W, _ = frames.shape
    y, cb, cr = _rgb_to_yuv420p_planes(frames)
    flat = np.concatenate([y.reshape(T, -1), cb.reshape(T, -1), cr.reshape(T, -1)], axis=1)
    return flat.reshape(T, H * 3 // 2, W)


def _iter_yuv420p(frames: np.ndarray):
    """Yield (Y, Cb, Cr) planes frame by frame. Only the 2-aligned box of pixels that changed
    since the previous frame is converted again (synthetic scenes have static backgrounds);
    the result is identical to converting every frame in full. The yielded arrays are reused:
    consume them before advancing."""
    T, H, W, _ = frames.shape
    y, cb, cr = _rgb_to_yuv420p_planes(frames[0])
    yield y, cb, cr
    for t in range(1, T):
        changed = frames[t].reshape(H, W * 3) != frames[t - 1].reshape(H, W * 3)
        rows = np.flatnonzero(changed.any(axis=1))
        if rows.size:
            cols = np.flatnonzero(changed[rows[0] : rows[-1] + 1].any(axis=0).reshape(W, 3).any(axis=1))
            y0, y1 = rows[0] & ~1, (rows[-1] + 2) & ~1
            x0, x1 = cols[0] & ~1, (cols[-1] + 2) & ~1
            py, pb, pr = _rgb_to_yuv420p_planes(frames[t, y0:y1, x0:x1])
            y[y0:y1, x0:x1] = py
            cb[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = pb
            cr[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = pr
        yield y, cb, cr


def _fill_plane(plane, data: np.ndarray) -> None:
    """Copy a (h, w) uint8 array into an AVFrame plane, honouring its line padding."""
    h, w = data.shape
    if plane.line_size == w:
        plane.update(np.ascontiguousarray(data))
    else:
        buf = np.zeros((h, plane.line_size), dtype=np.uint8)
        buf[:, :w] = data
        plane.update(buf)


_X264_PRESET = "ultrafast"


def write_mp4(frames: np.ndarray, fps: int, path: Path) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as h264 yuv420p mp4 (libx264, one thread, so the
    bytes are identical for identical input). Atomic: writes a temp file in the target directory
    and renames it over `path`; parent directories are created."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    T, H, W, _ = frames.shape
    if T < 1 or H % 2 or W % 2:
        raise ValueError(f"frames need T >= 1 and even H, W (yuv420p); got {frames.shape}")
    if int(fps) != fps or fps <= 0:
        raise ValueError(f"fps must be a positive integer, got {fps!r}")
    fps = int(fps)
    with atomic_path(Path(path)) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        cc = stream.codec_context
        cc.thread_count = 1
        cc.time_base = Fraction(1, fps)
        cc.gop_size = 2 * fps
        stream.options = {"preset": _X264_PRESET, "crf": "18", "threads": "1"}
        for i, planes in enumerate(_iter_yuv420p(frames)):
            vf = av.VideoFrame(W, H, "yuv420p")
            for plane, data in zip(vf.planes, planes):
                _fill_plane(plane, data)
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_jpeg(image: np.ndarray, path: Path, quality: int = 90) -> None:
    """Save an (H, W, 3) uint8 RGB image as JPEG, atomically (temp file + os.replace)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    with atomic_path(Path(path)) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=int(quality))
