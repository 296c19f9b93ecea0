"""Checkpoints: official FluxViT / InternVideo2 state dicts in, ours out, with a report of what did not fit.

Loading never unpickles code (`torch.load(weights_only=True)`). Official files keep the weights under `model`
or `module` (sometimes `state_dict`), with `module.` / `model.` / `backbone.` / `encoder.` key prefixes, and
multimodal InternVideo2 checkpoints keep the vision tower under `vision_encoder.`. A position embedding saved
for another grid is resized (linear in time, bicubic in space); a Kinetics-710 classifier is cut to
K400/K600/K700 with the index map of the Kinetics-710 builder (`head_maps.json`): the official code's slicing
only matches a key named `head.weight` and never fires on FluxViT's `head.0/1/2`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flux.errors import CheckpointError
from flux.io import atomic_path
from flux.models.posembed import resize_grid

PREFIXES = ("module.", "model.", "backbone.", "encoder.")
CONTAINER_KEYS = ("model", "module", "state_dict", "model_state")
VISION_SUBTREE = "vision_encoder."
CLASSIFIER_KEYS = ("head", "head.0", "head.1", "head.2")
UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


@dataclass
class LoadReport:
    missing: list[str] = field(default_factory=list)  # model keys the checkpoint lacks (left as initialised)
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys the model has no place for
    resized: list[str] = field(default_factory=list)
    sliced: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = []
        for label, keys in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            ("resized", self.resized),
            ("sliced", self.sliced),
        ):
            if keys:
                shown = ", ".join(keys[:12]) + (f", ... ({len(keys) - 12} more)" if len(keys) > 12 else "")
                lines.append(f"{label} ({len(keys)}): {shown}")
        return "\n".join(lines) or "all keys matched"


def read_payload(
    path: Path,
    what: str = "checkpoint",
    fix: str = "`dvc pull` it or fix the path in your config",
    allowed_globals: Sequence[type] = (),
) -> Any:
    """The one checked reader of checkpoint files (`torch.load(weights_only=True)`, plus `allowed_globals`, classes
    a file may hold besides tensors and containers): a missing or damaged file, or one holding other pickled
    objects, is a CheckpointError naming it, what it is, and `fix`, how to get it back."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist; {fix}")
    try:
        with torch.serialization.safe_globals(list(allowed_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or EOFError depending on the damage
        refused = UNSUPPORTED_GLOBAL.search(str(error))
        if refused:
            raise CheckpointError(
                f"{what} {path} is not a weights-only checkpoint: it holds a pickled {refused.group(1)}, which could run "
                f"code when loaded, so it is refused; {fix}"
            ) from None
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"{what} {path} is damaged or not a loadable weights-only checkpoint ({type(error).__name__}: {first_line}); {fix}"
        ) from None


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from the usual containers."""
    return unwrap(read_payload(path), str(path))


def unwrap(content: Any, origin: str = "checkpoint") -> dict[str, torch.Tensor]:
    while isinstance(content, Mapping) and not _is_state_dict(content):
        inner = next((content[key] for key in CONTAINER_KEYS if key in content), None)
        if inner is None:
            raise CheckpointError(f"{origin}: no tensors and none of the containers {CONTAINER_KEYS}; keys: {list(content)[:10]}")
        content = inner
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{origin}: expected a state dict, found {type(content).__name__}")
    return dict(content)


def _is_state_dict(content: Mapping) -> bool:
    return bool(content) and all(isinstance(value, torch.Tensor) for value in content.values())


def strip_prefixes(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes; keep only the vision tower of a multimodal checkpoint."""
    if any(key.startswith(VISION_SUBTREE) for key in state):
        state = {key[len(VISION_SUBTREE) :]: value for key, value in state.items() if key.startswith(VISION_SUBTREE)}
    stripped = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        stripped[key] = value
    return stripped


def checkpoint_grid(tokens: int, frames: int) -> tuple[int, int, int]:
    """(T, h, w) of a saved embedding of `tokens` grid positions, given its frame count (square frames)."""
    side = math.isqrt(tokens // frames) if tokens % frames == 0 else 0
    if side * side * frames != tokens:
        raise CheckpointError(
            f"pos_embed has {tokens} grid positions, which is not {frames} frames of a square grid; pass the checkpoint's "
            f"grid explicitly (checkpoint_grid=(T, h, w))"
        )
    return frames, side, side


def resize_position_embedding(
    state: dict[str, torch.Tensor], model: nn.Module, grid: Sequence[int] | None, report: LoadReport
) -> None:
    if "pos_embed" not in state:
        return
    saved = state["pos_embed"]
    target = model.pos_embed
    if saved.shape == target.shape or saved.shape[2] != target.shape[2]:
        return  # another width is another architecture: the shape check lists it with the other keys that do not fit
    frames, rows, columns = model.size.reference_grid
    source = tuple(grid) if grid else checkpoint_grid(saved.shape[1] - 1, frames)
    if math.prod(source) != saved.shape[1] - 1:
        raise CheckpointError(f"pos_embed {tuple(saved.shape)} does not fit grid {source}")
    embedding = saved[0, 1:].reshape(*source, -1).permute(3, 0, 1, 2).float()
    resized = resize_grid(embedding, (frames, rows, columns)).permute(1, 2, 3, 0).reshape(1, -1, saved.shape[2])
    state["pos_embed"] = torch.cat([saved[:, :1].float(), resized], dim=1).to(saved.dtype)
    report.resized.append(f"pos_embed {source} -> {(frames, rows, columns)}")


def slice_classifier(state: dict[str, torch.Tensor], index_map: Sequence[int], report: LoadReport) -> None:
    """Keep the classifier rows of the target label set (e.g. K710 -> K400 with head_maps.json)."""
    rows = torch.as_tensor(list(index_map), dtype=torch.long)
    for head in CLASSIFIER_KEYS:
        for suffix in ("weight", "bias"):
            key = f"{head}.{suffix}"
            if key in state:
                if int(rows.max()) >= state[key].shape[0]:
                    raise CheckpointError(f"{key} has {state[key].shape[0]} classes; the index map names class {int(rows.max())}")
                state[key] = state[key][rows]
                report.sliced.append(f"{key} {state[key].shape[0]} of its classes")


def pooling_prefix(head: int, heads: int) -> str:
    """Key prefix of attention-pooling head `head` in a model with `heads` of them (one: no index)."""
    return "clip_projector." if heads == 1 else f"clip_projector.{head}."


def copy_pooling_heads(
    state: Mapping[str, torch.Tensor], sources: Mapping[int, int], parent_heads: int, child_heads: int
) -> dict[str, torch.Tensor]:
    """`state` with each child pooling head of `sources` (child head -> parent head) replaced by a copy of the
    parent's head; with another head layout than the parent's, the parent's own pooling keys go (every child
    head is then in `sources`)."""
    if parent_heads != child_heads and set(sources) != set(range(child_heads)):
        raise CheckpointError(
            f"a parent with {parent_heads} pooling heads needs a source for each of the {child_heads} child heads"
        )
    copied = {}
    for child, parent in sources.items():
        prefix = pooling_prefix(parent, parent_heads)
        keys = [key for key in state if key.startswith(prefix)]
        if not keys:
            raise CheckpointError(
                f"the parent checkpoint has no pooling head {parent} ({prefix}*) to initialise head {child} from"
            )
        target = pooling_prefix(child, child_heads)
        copied.update({target + key[len(prefix) :]: state[key].clone() for key in keys})
    if parent_heads != child_heads:
        state = {key: value for key, value in state.items() if not key.startswith("clip_projector.")}
    return {**state, **copied}


def load_checkpoint(
    model: nn.Module,
    source: Path | Mapping[str, torch.Tensor],
    strict: bool = False,
    grid: Sequence[int] | None = None,
    class_index_map: Sequence[int] | None = None,
    allow_missing: Sequence[str] = (),
    allow_unexpected: Sequence[str] = (),
) -> LoadReport:
    """Load official or flux weights into `model`; shape conflicts are errors, missing/unexpected keys are
    reported. With `strict`, a missing key not matching a regex of `allow_missing` (or an unexpected one not
    matching `allow_unexpected`) is an error."""
    state = read_state_dict(source) if isinstance(source, (str, Path)) else unwrap(source)
    state = strip_prefixes(state)
    report = LoadReport()
    resize_position_embedding(state, model, grid, report)
    if class_index_map is not None:
        slice_classifier(state, class_index_map, report)
    own = model.state_dict()
    conflicts = [
        f"{key} {tuple(value.shape)} vs model {tuple(own[key].shape)}"
        for key, value in state.items()
        if key in own and own[key].shape != value.shape
    ]
    if conflicts:
        raise CheckpointError("checkpoint tensors do not fit the model: " + "; ".join(conflicts[:10]))
    result = model.load_state_dict(state, strict=False)
    report.missing, report.unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if strict:
        missing = [key for key in report.missing if not any(re.match(pattern, key) for pattern in allow_missing)]
        unexpected = [key for key in report.unexpected if not any(re.match(pattern, key) for pattern in allow_unexpected)]
        if missing or unexpected:
            raise CheckpointError(f"checkpoint does not match the model:\n{LoadReport(missing, unexpected)}")
    return report


def write_payload(payload: Mapping[str, Any], path: Path) -> None:
    """torch.save atomically, through a file handle: torch then names the zip's records `archive/...` instead of
    after the (random) temporary file, so equal payloads give byte-identical files (DVC hashes stay stable)."""
    with atomic_path(Path(path)) as temporary, open(temporary, "wb") as handle:
        torch.save(dict(payload), handle)
