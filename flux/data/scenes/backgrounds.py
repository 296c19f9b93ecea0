"""Static backgrounds and distractor shapes (own RNG streams: the same seed keeps them across motions)."""

from __future__ import annotations

import math

import numpy as np

from flux.data.scenes.sampling import _rgb, _segment_distance
from flux.data.scenes.shapes import _draw, _Style
from flux.data.scenes.vocabulary import _STREAM_BACKGROUND, _STREAM_DISTRACTORS, COLOURS, SHAPES, Appearance


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
