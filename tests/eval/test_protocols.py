"""Protocol expansion: which (input, budget) cells exist (the paper's ∅), heads per budget, TO grids."""

import pytest

from flux.errors import ConfigError
from flux.eval.protocols import expand_protocol, setting_key, unmasked_frames
from flux.units import UnitScale

PAPER = UnitScale()
TINY = UnitScale(frames=0.5, resolution=0.25)
# trained heads (head -> tokens, this configuration's units): Flux-Multi's three, a one-head model's one
MULTI_TINY = {0: 96, 1: 64, 2: 32}
ONE_HEAD = {0: 2048}


def run_with_heads(heads: int) -> dict[int, int]:
    return MULTI_TINY if heads == 3 else ONE_HEAD


def test_unmasked_frames_of_a_budget():
    assert [unmasked_frames(b) for b in (3072, 2048, 1024, 512)] == [12, 8, 4, 2]
    with pytest.raises(ConfigError, match="whole number"):
        unmasked_frames(1000)


def test_token_grid_has_the_papers_empty_cells():
    protocol = {"settings": [{"frames": [2, 4, 8, 12], "resolution": 224, "budgets": [3072, 2048, 1024, 512]}]}
    keys = {s["key"] for s in expand_protocol("grid", protocol, run_with_heads(1), PAPER).settings}
    # main Table 1: 2x224 (512 tokens) only at 512; 8x224 (2048) at 2048 and below; 12x224 everywhere
    assert keys == {
        "2x224@512",
        "4x224@1024", "4x224@512",
        "8x224@2048", "8x224@1024", "8x224@512",
        "12x224@3072", "12x224@2048", "12x224@1024", "12x224@512",
    }  # fmt: skip


def test_under_budget_inputs_are_kept_when_asked():
    protocol = {"settings": [{"frames": [4], "resolution": [168, 224], "budgets": [1024], "under_budget": True}]}
    settings = {s["key"]: s for s in expand_protocol("grid", protocol, run_with_heads(1), PAPER).settings}
    assert set(settings) == {"4x168@1024", "4x224@1024"}  # 4x168^2 = 576 tokens: evaluated unmasked


def test_merge_settings_exist_only_when_tokens_must_go():
    protocol = {"settings": [{"frames": [4, 8], "resolution": 224, "merge": [[2048, 1536, 1024], [1024, 512]]}]}
    settings = {s["key"]: s for s in expand_protocol("tldr", protocol, run_with_heads(1), TINY).settings}
    assert set(settings) == {"4x224~1024-512", "8x224~2048-1536-1024", "8x224~1024-512"}
    assert settings["8x224~2048-1536-1024"]["merge"] == [64, 48, 32] and settings["8x224~2048-1536-1024"]["budget"] is None
    assert (settings["8x224~1024-512"]["frames"], settings["8x224~1024-512"]["resolution"]) == (4, 56)


def test_every_setting_reads_the_trained_head_of_the_nearest_budget():
    protocol = {"settings": [{"frames": [12], "resolution": 224, "budgets": [3072, 2048, 1024, 512]}]}
    heads = {s["key"]: s["head"] for s in expand_protocol("grid", protocol, MULTI_TINY, TINY).settings}
    assert heads == {"12x224@3072": 0, "12x224@2048": 1, "12x224@1024": 2, "12x224@512": 2}
    # a run that trained only the 2048-token head (Flux-Single, Flux-CLIP) reads it at every budget
    single = {s["key"]: s["head"] for s in expand_protocol("grid", protocol, {1: 2048}, PAPER).settings}
    assert set(single.values()) == {1}


def test_token_optimization_grid_is_scaled_and_deduplicated():
    protocol = {
        "settings": [],
        "token_optimization": {
            "frames": [2, 4, 8, 12],
            "resolutions": [168, 196, 224, 252, 280],
            "start_resolution": 224,
            "search": "heuristic",
            "budgets": [2048, 512],
        },
    }
    searches = expand_protocol("to", protocol, run_with_heads(3), TINY).searches
    assert [s["key"] for s in searches] == ["to@2048", "to@512"]
    assert searches[0]["frames"] == [1, 2, 4, 6] and searches[0]["resolutions"] == [42, 56, 70]
    assert searches[0]["start"] == [4, 56] and searches[0]["budget"] == 64 and searches[0]["head"] == 1
    assert searches[1]["start"] == [1, 56] and searches[1]["head"] == 2


def test_a_held_out_search_is_the_same_search_under_its_own_key():
    to = {"frames": [4, 8], "resolutions": [224], "start_resolution": 224, "search": "heuristic", "budgets": [2048]}
    plain = expand_protocol("to", {"settings": [], "token_optimization": to}, ONE_HEAD, PAPER).searches
    both = expand_protocol("to", {"settings": [], "token_optimization": {**to, "held_out": True}}, ONE_HEAD, PAPER).searches
    assert [s["key"] for s in plain] == ["to@2048"] and [s["key"] for s in both] == ["to@2048", "to_held_out@2048"]
    assert both[1] == {**plain[0], "key": "to_held_out@2048", "held_out": True}


def test_a_start_off_the_grid_is_a_config_error():
    protocol = {
        "settings": [],
        "token_optimization": {
            "frames": [4, 6],
            "resolutions": [224],
            "start_resolution": 224,
            "search": "grid",
            "budgets": [2048],
        },
    }
    with pytest.raises(ConfigError, match="8x224 of budget 2048 is not on the grid"):
        expand_protocol("to", protocol, run_with_heads(1), PAPER)


def test_setting_keys():
    assert setting_key(8, 224, 2048) == "8x224@2048"
    assert setting_key(8, 224, merge=[1024, 512]) == "8x224~1024-512"


def test_a_protocol_resolution_off_the_patch_grid_is_an_error():
    protocol = {"settings": [{"frames": [8], "resolution": 230, "budgets": [2048]}]}
    with pytest.raises(
        ConfigError, match=r"protocols\.grid: 230 px is not a multiple of the patch size 14; the nearest are 224 and 238"
    ):
        expand_protocol("grid", protocol, ONE_HEAD, PAPER)
