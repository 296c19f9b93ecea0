"""Motion planning: the object's centre, scale, angle and visibility per frame, for each motion of the vocabulary."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flux.data.scenes.vocabulary import _SCALE_MAX, _SCALE_MIN, _STREAM_MOTION, SceneSpec


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
