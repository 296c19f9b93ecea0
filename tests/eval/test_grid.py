"""The Token Optimization heuristic on the paper's own accuracy surface and on a monotone one."""

import pytest

from flux.errors import ConfigError
from flux.eval.grid import full_grid, token_optimization_search

FRAMES = (4, 6, 8, 10, 12, 16, 20)
RESOLUTIONS = (168, 196, 224, 252, 280)
# supp Table 1: FluxViT-S on K400 at 1024 tokens, rows = frames, columns = resolutions
SUPP_TABLE1 = {
    4: (80.4, 81.7, 82.3, 82.6, 82.3),
    6: (83.5, 84.5, 84.3, 84.2, 83.6),
    8: (84.4, 84.8, 84.6, 84.4, 83.7),
    10: (85.2, 85.1, 85.0, 84.5, 83.5),
    12: (85.3, 85.3, 84.9, 84.4, 83.4),
    16: (85.3, 85.1, 84.8, 84.4, 83.5),
    20: (85.1, 85.0, 84.6, 84.0, 83.2),
}


def paper_surface(frames: int, resolution: int) -> float:
    return SUPP_TABLE1[frames][RESOLUTIONS.index(resolution)]


def test_the_heuristic_finds_the_paper_optimum_with_seven_of_35_evaluations():
    result = token_optimization_search(FRAMES, RESOLUTIONS, paper_surface, start=(4, 224))
    # step 2 at 224: 82.3, 84.3, 84.6, 85.0, then 84.9 stops it; step 3 from (10, 224): (12, 196) 85.3,
    # then (16, 168) 85.3 is no gain
    assert [shape for shape, _ in result.evaluations] == [
        (4, 224),
        (6, 224),
        (8, 224),
        (10, 224),
        (12, 224),
        (12, 196),
        (16, 168),
    ]
    assert result.best == (12, 196) and result.accuracy == max(full_grid(FRAMES, RESOLUTIONS, paper_surface).values())


def test_evaluations_stay_linear_on_a_surface_that_always_rewards_frames():
    frames, resolutions = list(range(2, 42, 2)), list(range(56, 308, 14))
    calls = []

    def more_frames_better(t: int, r: int) -> float:
        calls.append((t, r))
        return t - 0.001 * abs(r - 112)

    result = token_optimization_search(frames, resolutions, more_frames_better, start=(2, 224))
    assert len(calls) == len(set(calls)) == len(result.evaluations) <= len(frames) + len(resolutions)
    assert result.best[0] == frames[-1]


def test_a_start_off_the_grid_is_a_config_error():
    with pytest.raises(ConfigError, match=r"start \(5, 224\) is not on the grid"):
        token_optimization_search(FRAMES, RESOLUTIONS, paper_surface, start=(5, 224))
