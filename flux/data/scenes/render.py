"""Rendering a scene's frames (static layer once, the moving object per frame) and single images."""

from __future__ import annotations

import math
import zlib

import numpy as np

from flux.data.scenes.backgrounds import _background, _place_distractors
from flux.data.scenes.motion import _plan, _Track
from flux.data.scenes.shapes import _draw, _local_coords, _object_style, _shade_object
from flux.data.scenes.vocabulary import _STREAM_POSE, Appearance, SceneSpec, VideoFormat


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
