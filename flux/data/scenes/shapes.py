"""Shapes as signed distance functions in the object's local unit frame, their shading, and drawing one object."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from flux.data.scenes.vocabulary import COLOURS, SHAPES, Appearance


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
