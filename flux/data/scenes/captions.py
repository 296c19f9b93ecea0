"""Captions from the generator's ground truth: what the object is, how it moves, where (video and image)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from flux.data.scenes.render import _image_layout
from flux.data.scenes.vocabulary import MOTIONS, SHAPES, Appearance, SceneSpec

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


def object_phrase(colour: str, shape: str, texture: str) -> str:
    """Canonical object phrase, e.g. "red striped square" ("red square" when solid)."""
    return f"{colour} {shape}" if texture == "solid" else f"{colour} {texture} {shape}"


def describe_object(appearance: Appearance) -> str:
    return object_phrase(appearance.colour, appearance.shape, appearance.texture)


def step_event(appearance: Appearance, motion: str) -> str:
    """One movement as a DREAM-1K-style event: "The red striped square moves left." (canonical phrasing)."""
    return f"The {describe_object(appearance)} {_MOTION_PHRASES[motion]['verb'][0]}."


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
