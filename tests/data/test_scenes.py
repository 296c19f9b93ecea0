"""Tests for flux.data.scenes (its public API as S, its modules for their internals): the procedural renderer of
the synthetic (CPU) datasets.

Class semantics are measured from rendered pixels: the object mask is where a frame differs from
`render_background` (the static background + distractors), and its centroid/area are compared
across frames.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from flux.data import scenes as S
from flux.data.scenes import backgrounds, captions, encode, render
from flux.data.scenes import motion as motion_planning

FMT = S.VideoFormat(width=160, height=120, fps=25, num_frames=40)
SOLID_RED_CIRCLE = S.Appearance(
    shape="circle",
    colour="red",
    texture="solid",
    background="plain",
    background_colours=("blue", "white"),
    size=0.3,
    distractors=0,
)


def _spec(motions, appearance=SOLID_RED_CIRCLE, video=FMT, seed=0) -> S.SceneSpec:
    if isinstance(motions, str):
        motions = (motions,)
    return S.SceneSpec(motions=tuple(motions), appearance=appearance, video=video, seed=seed)


def _masks(spec: S.SceneSpec, frames: np.ndarray | None = None) -> np.ndarray:
    """(T, H, W) bool: pixels where the frame differs from the static layer."""
    if frames is None:
        frames = S.render_video(spec)
    bg = S.render_background(spec).astype(np.int16)
    return np.abs(frames.astype(np.int16) - bg).max(axis=-1) > 25


def _centroids(masks: np.ndarray) -> np.ndarray:
    """(T, 2) x, y centroids (NaN where the object is absent)."""
    out = np.full((len(masks), 2), np.nan)
    for t, m in enumerate(masks):
        if m.sum() >= 5:
            ys, xs = np.nonzero(m)
            out[t] = xs.mean(), ys.mean()
    return out


def _random_appearances(n: int, seed: int) -> list[S.Appearance]:
    rng = np.random.default_rng(seed)
    return [S.sample_appearance(rng) for _ in range(n)]


# ------------------------------------------------------------------------------------------
# records, sampling, determinism
# ------------------------------------------------------------------------------------------


def test_vocabulary_and_validation():
    assert len(S.MOTIONS) == 16 and len(set(S.MOTIONS)) == 16
    assert {"creeping right", "dashing right", "staying still"} <= set(S.MOTIONS)
    assert set(S.TEXTURES) == {"solid", "striped", "checkered", "dotted"}
    assert len(S.SHAPES) >= 6 and len(S.BACKGROUNDS) >= 4 and len(S.COLOURS) >= 10
    with pytest.raises(ValueError):
        S.VideoFormat(161, 120, 25, 10)  # odd width
    with pytest.raises(ValueError):
        S.Appearance("blob", "red", "solid", "plain", ("blue", "white"), 0.3, 0)
    with pytest.raises(ValueError):
        S.Appearance("circle", "red", "solid", "plain", ("red", "white"), 0.3, 0)
    with pytest.raises(ValueError):
        _spec("teleporting")
    with pytest.raises(ValueError):
        _spec(())


def test_sample_appearance_is_valid_and_varied():
    apps = _random_appearances(300, seed=1)
    for a in apps:
        assert a.colour not in a.background_colours
        assert a.background_colours[0] != a.background_colours[1]
        assert 0.2 <= a.size <= 0.36 and a.distractors in (0, 1, 2)
    assert {a.shape for a in apps} == set(S.SHAPES)
    assert {a.texture for a in apps} == set(S.TEXTURES)
    assert {a.background for a in apps} == set(S.BACKGROUNDS)
    assert {a.colour for a in apps} == set(S.COLOURS)


def test_sample_video_format():
    rng = np.random.default_rng(0)
    fmts = [S.sample_video_format(rng) for _ in range(400)]
    for f in fmts:
        assert f.width % 2 == 0 and f.height % 2 == 0
        assert 112 <= min(f.width, f.height) <= 168
        assert 10 <= f.fps <= 30 and f.num_frames >= 8
        assert f.num_frames <= round(10.0 * f.fps) + 1
    assert any(f.height > f.width for f in fmts), "the portrait size is never drawn"
    durations = np.array([f.num_frames / f.fps for f in fmts])
    assert np.median(durations) < 4.5, "short clips should be common (log-uniform duration)"
    custom = S.sample_video_format(rng, duration_s=(2.0, 2.0), fps=(12, 12), sizes=[(96, 64)])
    assert (custom.width, custom.height, custom.fps, custom.num_frames) == (96, 64, 12, 24)


@pytest.mark.parametrize("video", [FMT, S.VideoFormat(144, 176, 10, 9), S.VideoFormat(150, 112, 30, 1)])
def test_render_shape_dtype_and_determinism(video):
    for i, app in enumerate(_random_appearances(3, seed=2)):
        spec = _spec(S.MOTIONS[i * 5 % len(S.MOTIONS)], app, video, seed=11 + i)
        a = S.render_video(spec)
        assert a.shape == (video.num_frames, video.height, video.width, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, S.render_video(spec))
    other = S.render_video(_spec("moving left", app, video, seed=999))
    assert not np.array_equal(S.render_video(_spec("moving left", app, video, seed=998)), other)


def test_no_global_rng_use():
    spec = _spec("orbiting", _random_appearances(1, seed=3)[0], seed=5)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = S.render_video(spec)
    S.render_image(spec.appearance, 160, 120, seed=4)
    assert np.array_equal(np.random.get_state()[1], state), "the global RNG was consumed"
    np.random.seed(7)
    np.testing.assert_array_equal(a, S.render_video(spec))


def test_every_motion_renders_for_every_shape_and_texture():
    small = S.VideoFormat(96, 64, 10, 8)
    for k, shape in enumerate(S.SHAPES):
        for j, texture in enumerate(S.TEXTURES):
            app = S.Appearance(shape, "yellow", texture, S.BACKGROUNDS[(k + j) % 4], ("blue", "black"), 0.3, (k + j) % 3)
            spec = _spec(S.MOTIONS[(4 * k + j) % len(S.MOTIONS)], app, small, seed=k * 7 + j)
            frames = S.render_video(spec)
            m = _masks(spec, frames)
            assert m.any(axis=(1, 2)).sum() >= 3, (shape, texture, spec.motions)


def test_object_stays_inside_frame():
    rng = np.random.default_rng(4)
    for i in range(200):
        k = int(rng.integers(1, 4))
        motions = tuple(S.MOTIONS[j] for j in rng.integers(len(S.MOTIONS), size=k))
        video = S.sample_video_format(rng, duration_s=(1.0, 2.0))
        spec = _spec(motions, S.sample_appearance(rng), video, seed=i)
        tr = motion_planning._plan(spec)
        r = tr.radius
        assert (tr.x - r >= -0.5).all() and (tr.x + r <= video.width + 0.5).all(), motions
        assert (tr.y - r >= -0.5).all() and (tr.y + r <= video.height + 0.5).all(), motions


# ------------------------------------------------------------------------------------------
# class semantics, measured on pixels
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "motion,axis,sign",
    [
        ("moving left", 0, -1),
        ("moving right", 0, 1),
        ("moving up", 1, -1),
        ("moving down", 1, 1),
    ],
)
def test_translation_directions(motion, axis, sign):
    for seed, app in enumerate(_random_appearances(4, seed=5)):
        spec = _spec(motion, app, seed=seed)
        c = _centroids(_masks(spec))
        delta = c[-1] - c[0]
        extent = (FMT.width, FMT.height)[axis]
        assert sign * delta[axis] > 0.2 * extent * (1 - app.size), (motion, seed, delta)
        assert abs(delta[1 - axis]) < 2.0, (motion, seed, delta)
        steps = np.diff(c[:, axis])
        assert (sign * steps > -1.0).all(), "motion should be monotonic"


def test_creeping_moving_dashing_are_separated():
    disp = {m: [] for m in ("creeping right", "moving right", "dashing right")}
    for seed in range(8):
        for m in disp:
            c = _centroids(_masks(_spec(m, seed=seed)))
            disp[m].append(c[-1, 0] - c[0, 0])
    assert min(disp["creeping right"]) > 3
    assert max(disp["creeping right"]) * 1.5 < min(disp["moving right"])
    assert max(disp["moving right"]) * 1.2 < min(disp["dashing right"])


@pytest.mark.parametrize("motion", ["growing", "shrinking"])
def test_growing_shrinking_area(motion):
    for seed, app in enumerate(_random_appearances(4, seed=6)):
        area = _masks(_spec(motion, app, seed=seed)).sum(axis=(1, 2)).astype(float)
        ratio = area[-1] / area[0] if motion == "growing" else area[0] / area[-1]
        assert ratio >= 2.0, (motion, seed, ratio)
        c = _centroids(_masks(_spec(motion, app, seed=seed)))
        assert np.abs(c - c[0]).max() < 2.0, "growing/shrinking objects stay in place"


def test_appearing_disappearing_blinking():
    for seed, app in enumerate(_random_appearances(4, seed=7)):
        area = _masks(_spec("appearing", app, seed=seed)).sum(axis=(1, 2))
        assert area[: FMT.num_frames // 4].max() <= 3 and area[-FMT.num_frames // 4 :].min() > 50
        area = _masks(_spec("disappearing", app, seed=seed)).sum(axis=(1, 2))
        assert area[: FMT.num_frames // 4].min() > 50 and area[-FMT.num_frames // 4 :].max() <= 3
        visible = _masks(_spec("blinking", app, seed=seed)).sum(axis=(1, 2)) > 50
        assert np.count_nonzero(np.diff(visible.astype(int))) >= 3
        # the same toggles show in 8 uniformly sampled frames of a longer clip
        long_spec = _spec("blinking", app, S.VideoFormat(160, 120, 30, 240), seed=seed)
        idx = np.linspace(0, 239, 8).round().astype(int)
        vis8 = _masks(long_spec, S.render_video(long_spec)[idx]).sum(axis=(1, 2)) > 50
        assert np.count_nonzero(np.diff(vis8.astype(int))) >= 2


def test_bouncing_and_orbiting_paths():
    for seed, app in enumerate(_random_appearances(4, seed=8)):
        c = _centroids(_masks(_spec("bouncing", app, S.VideoFormat(160, 120, 25, 100), seed=seed)))
        assert np.ptp(c[:, 0]) < 2.0
        assert np.ptp(c[:, 1]) > 0.25 * 120 * (1 - app.size)
        dy = np.diff(c[:, 1])
        turns = np.count_nonzero(np.diff(np.sign(dy[np.abs(dy) > 1e-3])))
        assert 3 <= turns <= 6, turns  # 2-3 periods

        c = _centroids(_masks(_spec("orbiting", app, S.VideoFormat(160, 120, 25, 100), seed=seed)))
        centre = (c.max(axis=0) + c.min(axis=0)) / 2
        rel = c - centre
        radius = np.hypot(rel[:, 0], rel[:, 1])
        assert radius.mean() > 8 and radius.std() / radius.mean() < 0.2
        sweep = np.unwrap(np.arctan2(rel[:, 1], rel[:, 0]))
        assert abs(sweep[-1] - sweep[0]) > 1.5 * math.pi


def test_staying_still_is_static():
    for seed, app in enumerate(_random_appearances(3, seed=9)):
        frames = S.render_video(_spec("staying still", app, seed=seed))
        assert (frames == frames[0]).all()
        assert _masks(_spec("staying still", app, seed=seed), frames[:1]).sum() > 50


def _marker_angles(frames: np.ndarray, spec: S.SceneSpec) -> np.ndarray:
    """Image-space angle of the (white) orientation marker around the object centroid."""
    masks = _masks(spec, frames)
    marker = (frames.astype(int) > 200).all(axis=-1) & masks
    out = []
    for m, mk in zip(masks, marker):
        ys, xs = np.nonzero(m)
        my, mx = np.nonzero(mk)
        assert len(mx) >= 3, "marker not visible"
        out.append(math.atan2(my.mean() - ys.mean(), mx.mean() - xs.mean()))
    return np.unwrap(np.array(out))


@pytest.mark.parametrize("shape", ["circle", "square"])
def test_rotation_direction_and_flip(shape):
    app = S.Appearance(shape, "red", "solid", "plain", ("blue", "black"), 0.34, 0)
    video = S.VideoFormat(160, 120, 25, 48)
    for seed in range(3):
        cw = _spec("rotating clockwise", app, video, seed=seed)
        ccw = _spec("rotating counterclockwise", app, video, seed=seed)
        cw_frames = S.render_video(cw)
        a_cw = _marker_angles(cw_frames, cw)
        a_ccw = _marker_angles(S.render_video(ccw), ccw)
        # image y points down: a growing atan2 angle is a clockwise turn on screen
        assert a_cw[-1] - a_cw[0] > math.radians(170)
        assert a_ccw[-1] - a_ccw[0] < -math.radians(170)
        assert (np.diff(a_cw) > 0).all() and (np.diff(a_ccw) < 0).all()
        # horizontally flipped clockwise video turns counterclockwise (the static layer flips too)
        flipped = cw_frames[:, :, ::-1]
        masks = _masks(cw, cw_frames)[:, :, ::-1]
        marker = (flipped.astype(int) > 200).all(axis=-1) & masks
        ang = []
        for m, mk in zip(masks, marker):
            ys, xs = np.nonzero(m)
            my, mx = np.nonzero(mk)
            ang.append(math.atan2(my.mean() - ys.mean(), mx.mean() - xs.mean()))
        ang = np.unwrap(np.array(ang))
        assert ang[-1] - ang[0] < -math.radians(170)


def test_horizontal_flip_turns_left_into_right():
    for seed, app in enumerate(_random_appearances(3, seed=10)):
        spec = _spec("moving left", app, seed=seed)
        frames = S.render_video(spec)
        masks = _masks(spec, frames)
        c = _centroids(masks)
        cf = _centroids(masks[:, :, ::-1])
        assert c[-1, 0] < c[0, 0] - 10 and cf[-1, 0] > cf[0, 0] + 10
        np.testing.assert_allclose(cf[:, 0], FMT.width - 1 - c[:, 0], atol=1e-6)


def test_motion_visible_in_8_uniform_frames_of_long_clips():
    """The class depends on normalised time: 8 frames sampled from a long clip tell it apart."""
    video = S.VideoFormat(160, 120, 30, 300)
    idx = np.linspace(0, video.num_frames - 1, 8).round().astype(int)
    spec = _spec("moving right", video=video, seed=3)
    c = _centroids(_masks(spec, S.render_video(spec)[idx]))
    assert (np.diff(c[:, 0]) > 3).all()
    spec = _spec("rotating clockwise", video=video, seed=3)
    a = _marker_angles(S.render_video(spec)[idx], spec)
    assert (np.diff(a) > 0).all() and a[-1] - a[0] > math.radians(170)


def test_multi_step_motion():
    spec = _spec(("appearing", "moving right", "shrinking"), video=S.VideoFormat(160, 120, 25, 90), seed=2)
    masks = _masks(spec)
    area = masks.sum(axis=(1, 2))
    c = _centroids(masks)
    assert area[:5].max() <= 3 and area[28:31].min() > 50  # absent, then present in step 1
    assert c[59, 0] - c[31, 0] > 20  # moves right in step 2
    assert abs(c[89, 0] - c[61, 0]) < 2 and area[61] > 2 * area[89]  # shrinks in place in step 3


def test_background_is_static_and_distractors_do_not_move():
    app = S.Appearance("star", "yellow", "striped", "noise", ("blue", "black"), 0.3, 2)
    spec = _spec("dashing right", app, seed=4)
    frames = S.render_video(spec)
    bg = S.render_background(spec)
    track = motion_planning._plan(spec)
    ys, xs = np.mgrid[0:120, 0:160]
    for t in range(len(frames)):
        changed = (frames[t] != bg).any(axis=-1)
        r = track.radius[t] + 1.5
        inside = (np.abs(xs + 0.5 - track.x[t]) <= r) & (np.abs(ys + 0.5 - track.y[t]) <= r)
        assert changed.any() and not (changed & ~inside).any(), t
    # a different motion with the same seed keeps the background texture
    other = _spec("staying still", app, seed=4)
    bg_a, bg_b = backgrounds._background(app, 160, 120, 4), backgrounds._background(other.appearance, 160, 120, 4)
    np.testing.assert_array_equal(bg_a, bg_b)


def test_render_image_and_location_captions():
    rng = np.random.default_rng(11)
    hits = 0
    for i, app in enumerate(_random_appearances(12, seed=12)):
        for w, h in ((160, 120), (144, 176)):
            img = S.render_image(app, w, h, seed=i)
            assert img.shape == (h, w, 3) and img.dtype == np.uint8
            np.testing.assert_array_equal(img, S.render_image(app, w, h, seed=i))
            cx, cy, col, row = render._image_layout(app, w, h)
            caps = S.image_captions(app, rng, 12, width_height=(w, h))
            located = [c for c in caps if any(p in c for p in captions._LOCATION_PHRASES[(col, row)])]
            hits += bool(located)
            others = [p for k, v in captions._LOCATION_PHRASES.items() if k != (col, row) for p in v]
            assert not any(p in c for c in caps for p in others if p not in captions._LOCATION_PHRASES[(col, row)])
            # the object really is where the caption says
            third = {"left": (0, 1 / 3), "centre": (1 / 3, 2 / 3), "right": (2 / 3, 1)}[col]
            assert third[0] * w <= cx <= third[1] * w
            vthird = {"top": (0, 1 / 3), "middle": (1 / 3, 2 / 3), "bottom": (2 / 3, 1)}[row]
            assert vthird[0] * h <= cy <= vthird[1] * h
            colour = np.array(S.COLOURS[app.colour])
            px = img[int(cy) - 1 : int(cy) + 2, int(cx) - 1 : int(cx) + 2].reshape(-1, 3).astype(int)
            if app.texture == "solid":  # centre pixel of a solid object has its colour
                assert np.abs(px - colour).max(axis=1).min() <= 3
    assert hits >= 18


# ------------------------------------------------------------------------------------------
# captions
# ------------------------------------------------------------------------------------------


def test_describe_object():
    app = S.Appearance("square", "red", "striped", "gradient", ("blue", "white"), 0.3, 0)
    assert S.describe_object(app) == "red striped square"
    assert S.describe_object(SOLID_RED_CIRCLE) == "red circle"


def test_video_captions_single_motion():
    for i, motion in enumerate(S.MOTIONS):
        app = _random_appearances(len(S.MOTIONS), seed=13)[i]
        spec = _spec(motion, app, seed=i)
        caps = S.video_captions(spec, np.random.default_rng(i), 20)
        assert len(caps) == 20 and len(set(caps)) == 20
        for c in caps:
            assert c.strip() == c and c
            assert app.colour in c and app.shape in c
            assert any(p in c for form in captions._MOTION_PHRASES[motion].values() for p in form), c
        assert caps == S.video_captions(spec, np.random.default_rng(i), 20)
        assert caps != S.video_captions(spec, np.random.default_rng(i + 100), 20)


def test_video_captions_multi_step_in_order():
    app = S.Appearance("circle", "green", "dotted", "grid", ("blue", "white"), 0.3, 1)
    for motions in [
        ("appearing", "moving right", "shrinking"),
        ("growing", "rotating counterclockwise"),
        ("moving left", "bouncing", "moving left", "disappearing"),
    ]:
        spec = _spec(motions, app, seed=1)
        caps = S.video_captions(spec, np.random.default_rng(0), 10)
        assert len(set(caps)) == 10
        for c in caps:
            assert "green" in c and "circle" in c
            pos = 0
            for m in motions:
                hits = [c.find(p, pos) for p in captions._MOTION_PHRASES[m]["verb"] if c.find(p, pos) >= 0]
                assert hits, f"{m!r} not found in order in {c!r}"
                pos = min(hits) + 1
    # a 3-step example reads like "a green circle appears, then moves right, then shrinks"
    example = S.video_captions(_spec(motions[:3], app), np.random.default_rng(5), 30)
    assert any(", then " in c for c in example)


def test_image_captions():
    for i, app in enumerate(_random_appearances(10, seed=14)):
        caps = S.image_captions(app, np.random.default_rng(i), 10)
        assert len(caps) == 10 and len(set(caps)) == 10
        for c in caps:
            assert app.colour in c and app.shape in c
        assert any(app.background_colours[0] in c for c in caps)
    with pytest.raises(ValueError):
        S.image_captions(SOLID_RED_CIRCLE, np.random.default_rng(0), 10_000)


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------


def test_write_mp4_decodes_close_deterministic_and_atomic(tmp_path: Path):
    import decord

    app = S.Appearance("star", "orange", "checkered", "grid", ("blue", "white"), 0.3, 1)
    spec = _spec("orbiting", app, S.VideoFormat(176, 144, 15, 30), seed=3)
    frames = S.render_video(spec)
    a, b = tmp_path / "nested" / "dir" / "a.mp4", tmp_path / "nested" / "dir" / "b.mp4"
    S.write_mp4(frames, 15, a)
    S.write_mp4(frames, 15, b)
    assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in a.parent.iterdir()) == ["a.mp4", "b.mp4"]  # no temp files left
    S.write_mp4(frames, 15, a)  # overwriting is atomic too
    assert sorted(p.name for p in a.parent.iterdir()) == ["a.mp4", "b.mp4"]

    vr = decord.VideoReader(str(a))
    assert len(vr) == 30
    decoded = vr.get_batch(list(range(30))).asnumpy()
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 4.0
    assert abs(vr.get_avg_fps() - 15) < 0.01

    for bad in (frames[..., :2], frames.astype(np.float32), frames[:, :, :-1]):
        with pytest.raises(ValueError):
            S.write_mp4(bad, 15, tmp_path / "bad.mp4")
    assert not any(p.name.startswith(".bad") for p in tmp_path.iterdir())


def test_write_mp4_failure_leaves_nothing(tmp_path: Path, monkeypatch):
    import av

    def boom(*args, **kwargs):
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(av, "open", boom)
    with pytest.raises(RuntimeError):
        S.write_mp4(np.zeros((2, 16, 16, 3), np.uint8), 10, tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_write_jpeg(tmp_path: Path):
    from PIL import Image

    img = S.render_image(SOLID_RED_CIRCLE, 160, 120, seed=0)
    path = tmp_path / "sub" / "x.jpg"
    S.write_jpeg(img, path)
    assert [p.name for p in path.parent.iterdir()] == ["x.jpg"]
    back = np.asarray(Image.open(path).convert("RGB"))
    assert back.shape == img.shape and np.abs(back.astype(int) - img).mean() < 4
    first = path.read_bytes()
    S.write_jpeg(img, path)
    assert path.read_bytes() == first


def test_yuv_conversion_incremental_matches_full():
    app = _random_appearances(1, seed=15)[0]
    frames = S.render_video(_spec(("moving left", "blinking"), app, S.VideoFormat(150, 112, 10, 24), seed=1))
    full = encode._rgb_to_yuv420p(frames)
    for t, planes in enumerate(encode._iter_yuv420p(frames)):
        np.testing.assert_array_equal(np.concatenate([p.ravel() for p in planes]), full[t].ravel())
