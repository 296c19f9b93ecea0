"""The frames x resolution grid at a fixed token budget (supp Table 1) and the Token Optimization search
heuristic of supplementary §1.1, which finds a good input with linearly many evaluations:

1. start from a minimal input (the paper: 4 x 224^2);
2. add frames at that resolution until accuracy stops improving (a plateau);
3. from the best so far, lower the resolution one step while adding frames, until accuracy stops improving.

`evaluate(frames, resolution)` is any accuracy function (a real evaluation run, or a table of numbers);
each input is evaluated at most once and every evaluation is returned, so the cost is on record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flux.errors import ConfigError

Evaluate = Callable[[int, int], float]


@dataclass
class SearchResult:
    best: tuple[int, int]
    accuracy: float
    evaluations: list[tuple[tuple[int, int], float]] = field(default_factory=list)


def full_grid(frames: Sequence[int], resolutions: Sequence[int], evaluate: Evaluate) -> dict[tuple[int, int], float]:
    return {(t, r): evaluate(t, r) for t in frames for r in resolutions}


def token_optimization_search(
    frames: Sequence[int], resolutions: Sequence[int], evaluate: Evaluate, start: tuple[int, int], min_gain: float = 0.0
) -> SearchResult:
    """A step counts as an improvement when it beats the best accuracy by more than `min_gain`."""
    frames, resolutions = sorted(set(frames)), sorted(set(resolutions))
    if start[0] not in frames or start[1] not in resolutions:
        raise ConfigError(f"TO search start {start} is not on the grid (frames {frames}, resolutions {resolutions})")
    seen: dict[tuple[int, int], float] = {}
    result = SearchResult(start, float("-inf"))

    def visit(shape: tuple[int, int]) -> bool:
        """Evaluate `shape` once; True when it improves on the best (and becomes it)."""
        if shape not in seen:
            seen[shape] = evaluate(*shape)
            result.evaluations.append((shape, seen[shape]))
        if seen[shape] > result.accuracy + min_gain:
            result.best, result.accuracy = shape, seen[shape]
            return True
        return False

    visit(start)
    resolution = start[1]
    for count in frames[frames.index(start[0]) + 1 :]:  # step 2: more frames at the start resolution
        if not visit((count, resolution)):
            break
    t, r = frames.index(result.best[0]), resolutions.index(result.best[1])
    while t + 1 < len(frames) and r > 0:  # step 3: trade resolution for frames
        t, r = t + 1, r - 1
        if not visit((frames[t], resolutions[r])):
            break
    return result
