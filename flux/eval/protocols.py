"""Evaluation protocols of config/tables.yaml expanded into settings and Token Optimization searches.

Everything is named in the paper's units (`8x224@2048`) and carries this configuration's values beside (the
embedded default halves frames and quarters pixels, so `8x224@2048` runs 4 x 56^2 at 64 tokens). A setting
exists only where the input has at least as many tokens as the budget (the paper's "∅" cells), unless the
protocol says `under_budget: true` (supplementary Table 1 shows those inputs unmasked).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flux.errors import ConfigError
from flux.models.sizes import PATCH_SIZE, nearest_head
from flux.units import UnitScale

TOKENS_PER_FRAME_224 = (224 // PATCH_SIZE) ** 2  # 256: the unmasked frame count of a budget is budget / 256


def paper_tokens(frames: int, resolution: int) -> int:
    return frames * (resolution // PATCH_SIZE) ** 2


def setting_key(frames: int, resolution: int, budget: int | None = None, merge: Sequence[int] | None = None) -> str:
    if merge is not None:
        return f"{frames}x{resolution}~" + "-".join(str(target) for target in merge)
    return f"{frames}x{resolution}@{budget}"


def unmasked_frames(budget: int) -> int:
    """Frames of the unmasked 224^2 input with `budget` tokens (3072 -> 12, 2048 -> 8, 1024 -> 4, 512 -> 2)."""
    if budget % TOKENS_PER_FRAME_224:
        raise ConfigError(f"budget {budget} is not a whole number of 224^2 frames ({TOKENS_PER_FRAME_224} tokens each)")
    return budget // TOKENS_PER_FRAME_224


def _listed(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass(frozen=True)
class Expanded:
    settings: list[dict[str, Any]]
    searches: list[dict[str, Any]]

    @property
    def keys(self) -> set[str]:
        return {setting["key"] for setting in self.settings} | {search["key"] for search in self.searches}


def expand_protocol(name: str, protocol: Mapping[str, Any], heads: Mapping[int, int], scale: UnitScale) -> Expanded:
    try:
        return _expand(name, protocol, heads, scale)
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith("protocols.") else f"protocols.{name}: {message}") from None


def _expand(name: str, protocol: Mapping[str, Any], heads: Mapping[int, int], scale: UnitScale) -> Expanded:
    """`heads`: the run's trained heads (head -> tokens, flux.train.inheritance.trained_heads); every setting
    reads the one trained for the nearest budget."""

    def head_for(budget: int) -> int:
        return nearest_head(scale.tokens(budget), heads)

    settings: dict[str, dict[str, Any]] = {}
    for entry in protocol["settings"]:
        shapes = itertools.product(_listed(entry["frames"]), _listed(entry["resolution"]))
        for frames, resolution in shapes:
            scaled = {"frames": scale.frame(frames), "resolution": scale.pixels(resolution)}
            tokens = paper_tokens(frames, resolution)
            for budget in entry.get("budgets", []):
                if tokens < budget and not entry.get("under_budget", False):
                    continue
                key = setting_key(frames, resolution, budget)
                settings[key] = {"key": key, **scaled, "budget": scale.tokens(budget), "head": head_for(budget)}
            for schedule in entry.get("merge", []):
                if tokens <= schedule[-1]:
                    continue
                key = setting_key(frames, resolution, merge=schedule)
                settings[key] = {
                    "key": key,
                    **scaled,
                    "budget": None,
                    "head": head_for(schedule[-1]),
                    "merge": [scale.tokens(target) for target in schedule],
                }
    searches = []
    to = protocol.get("token_optimization")
    if to:
        frames = sorted({scale.frame(f) for f in to["frames"]})
        resolutions = sorted({scale.pixels(r) for r in to["resolutions"]})
        for budget in to["budgets"]:
            start = (scale.frame(unmasked_frames(budget)), scale.pixels(to["start_resolution"]))
            if start[0] not in frames or start[1] not in resolutions:
                raise ConfigError(
                    f"protocols.{name}.token_optimization: the start {unmasked_frames(budget)}x{to['start_resolution']} "
                    f"of budget {budget} is not on the grid; add it to `frames` / `resolutions`"
                )
            search = {
                "key": f"to@{budget}",
                "budget": scale.tokens(budget),
                "head": head_for(budget),
                "frames": frames,
                "resolutions": resolutions,
                "search": to["search"],
                "start": list(start),
            }
            searches.append(search)
            if to.get("held_out"):
                searches.append({**search, "key": f"to_held_out@{budget}", "held_out": True})
    return Expanded(list(settings.values()), searches)
