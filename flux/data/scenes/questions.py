"""Multiple-choice questions and reference events from a scene's ground truth (the synthetic MVBench, DREAM-1K and
instruction-data stand-ins): which object moves, its colour, which movement it makes, what it does last, how many
movements it makes. Questions are asked as MVBench asks them (four options, the answer one of them, in a seeded
order); each task keeps the name of the MVBench task it resembles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flux.data.scenes.captions import describe_object, object_phrase, step_event
from flux.data.scenes.vocabulary import COLOURS, MOTIONS, SHAPES, TEXTURES, SceneSpec

OPTIONS = 4
MAX_STEPS = OPTIONS  # action_count's options are 1..4 movements


def _options(answer: str, others: list[str], rng: np.random.Generator) -> tuple[list[str], str]:
    picked = [others[int(k)] for k in rng.choice(len(others), size=OPTIONS - 1, replace=False)]
    candidates = [answer, *picked]
    return [candidates[int(k)] for k in rng.permutation(OPTIONS)], answer


def _moving_attribute(spec: SceneSpec, rng: np.random.Generator) -> tuple[str, list[str], str]:
    colour = spec.appearance.colour
    return ("What color is the moving object?", *_options(colour, [c for c in COLOURS if c != colour], rng))


def _object_existence(spec: SceneSpec, rng: np.random.Generator) -> tuple[str, list[str], str]:
    """Which object moves: the answer and three others that differ from it in colour, shape or texture."""
    app = spec.appearance
    others: set[str] = set()
    while len(others) < OPTIONS - 1:
        colour = str(rng.choice(list(COLOURS)))
        shape = str(rng.choice(SHAPES))
        texture = str(rng.choice(TEXTURES))
        if (colour, shape, texture) != (app.colour, app.shape, app.texture):
            others.add(object_phrase(colour, shape, texture))
    return ("Which object moves in the video?", *_options(describe_object(app), sorted(others), rng))


def _fine_grained_action(spec: SceneSpec, rng: np.random.Generator) -> tuple[str, list[str], str]:
    motion = spec.motions[0]
    return ("Which movement does the object make?", *_options(motion, [m for m in MOTIONS if m not in spec.motions], rng))


def _action_sequence(spec: SceneSpec, rng: np.random.Generator) -> tuple[str, list[str], str]:
    last = spec.motions[-1]
    return ("What does the object do at the end?", *_options(last, [m for m in MOTIONS if m != last], rng))


def _action_count(spec: SceneSpec, rng: np.random.Generator) -> tuple[str, list[str], str]:
    steps = len(spec.motions)
    if steps > MAX_STEPS:
        raise ValueError(f"action_count asks about at most {MAX_STEPS} movements, the scene has {steps}")
    counts = [str(count) for count in range(1, MAX_STEPS + 1)]
    return "How many movements does the object make?", [counts[int(k)] for k in rng.permutation(OPTIONS)], str(steps)


TASKS: dict[str, Callable[[SceneSpec, np.random.Generator], tuple[str, list[str], str]]] = {
    "object_existence": _object_existence,
    "moving_attribute": _moving_attribute,
    "fine_grained_action": _fine_grained_action,
    "action_sequence": _action_sequence,
    "action_count": _action_count,
}


def question(task: str, spec: SceneSpec, rng: np.random.Generator) -> dict[str, object]:
    """One MVBench entry's text fields: {"question", "candidates", "answer"}."""
    text, candidates, answer = TASKS[task](spec, rng)
    return {"question": text, "candidates": candidates, "answer": answer}


def reference_events(spec: SceneSpec) -> list[str]:
    """DREAM-1K's `extra_info.events` of a scene: one short sentence per movement, the object named."""
    return [step_event(spec.appearance, motion) for motion in spec.motions]
