"""Parity of our FluxViT-S (selector 'official') with the released code, on identical random weights.

    python benchmarks/official_parity.py --official /tmp/off/FluxViT/single_modality
    python benchmarks/official_parity.py --official PATH --write-fixture tests/models/fixtures/official_parity.json

`--official` is the `single_modality` folder of OpenGVLab/FluxViT. Its `models/fluxvit.py` is imported from
there as it is (nothing is copied into this repository); the CUDA-only packages it imports at load time
(flash_attn, ...) are stubbed when absent, and the model is built with flash attention and the fused
kernels off. Its position-embedding resize moves tensors to the CPU and back with `.cuda()`, which is made
a no-op for the official forward.

Both models get the same weights, drawn key by key from a seed (`seeded_weights`, which needs only our model:
the official checkpoint layout has the same keys), and see the same seeded video (`seeded_video`), in fp32,
eval mode, batch 2. The masking ratio passed to the official forward is the one its evaluation engine
computes, `1 - max_tokens / current_tokens` (None when the input fits the budget); both classify with the
same output head, another one in each case. Cases:
  12x196^2 at 2048 tokens  (selection, 4 groups of 3 frames)
  6x168^2  at 512 tokens   (selection, 2 groups of 3 frames)
  4x224^2  at 1024 tokens  (no selection: the 1024 patches fit, the engine passes no masking ratio)
Prints per case the max |logit difference| and whether the kept token sets are identical. With
--write-fixture, writes the recipe and the official logits / kept sets (a few KB of JSON) that
tests/models/test_official_parity.py checks our model against without the official code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import subprocess
import sys
import types
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from flux.models.fluxvit import FluxViT, build_model

SEED = 13  # one where, in both selection cases, a stable sort would keep the other token of a tie at the cut
NUM_CLASSES = 5
BATCH = 2
MODEL = "fluxvit_s"
OFFICIAL_MODEL = "fluxvit_small_patch14"
PATCH = 14
# imported at load time by the official models package; stubbed when not installed (CPU machines)
OFFICIAL_CUDA_MODULES = (
    "flash_attn",
    "flash_attn.flash_attn_interface",
    "flash_attn.bert_padding",
    "flash_attn.modules",
    "flash_attn.modules.mlp",
    "flash_attn.ops",
    "flash_attn.ops.rms_norm",
)


@dataclass(frozen=True)
class Case:
    name: str
    frames: int
    size: int  # frame side in pixels
    budget: int  # the engine's eval_max_token_num
    head: int  # output head, the same on both sides

    @property
    def patches(self) -> int:
        return self.frames * (self.size // PATCH) ** 2

    @property
    def masking_ratio(self) -> float | None:
        """As the official evaluation engine computes it from eval_true_frame, eval_input_size, eval_max_token_num."""
        return None if self.patches <= self.budget else 1 - self.budget / self.patches


CASES = (
    Case("12x196^2@2048", 12, 196, 2048, head=1),
    Case("6x168^2@512", 6, 168, 512, head=2),
    Case("4x224^2@1024 (unmasked)", 4, 224, 1024, head=0),
)


# -- the recipe (also used by the test, without the official code) ------------------------------------
def seeded_weights(model: nn.Module, seed: int = SEED) -> dict[str, torch.Tensor]:
    """Random values for every state-dict key, each from its own generator seeded by (seed, crc32(key)), so
    that a key's values do not depend on which other keys exist or their order. Scales keep activations of
    order one through 12 blocks and make every module matter (LayerScale 0.1, not the 1e-5 init): norm and
    depth-wise scales 1 + 0.1 N(0, 1), LayerScale 0.1 + 0.02 N, biases 0.02 N, cls / position embedding
    0.5 N, other weights N(0, 1 / fan_in)."""
    state = {}
    for key, reference in model.state_dict().items():
        generator = torch.Generator().manual_seed(seed << 32 | zlib.crc32(key.encode()))
        noise = torch.randn(reference.shape, generator=generator)
        fan_in = reference[0].numel() if reference.dim() > 1 else 1
        if key.endswith("gamma"):
            value = 0.1 + 0.02 * noise
        elif key.endswith("weight") and fan_in == 1:
            value = 1 + 0.1 * noise
        elif key.endswith("bias"):
            value = 0.02 * noise
        elif key in ("cls_token", "pos_embed"):
            value = 0.5 * noise
        else:
            value = noise / fan_in**0.5
        state[key] = value.to(reference.dtype)
    return state


def seeded_video(case: Case, seed: int = SEED, batch: int = BATCH) -> torch.Tensor:
    """(B, 3, T, H, W) standard normal pixels (already 'normalised' input)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, case.frames, case.size, case.size, generator=generator)


def build_ours(seed: int = SEED) -> FluxViT:
    model = build_model(MODEL, num_classes=NUM_CLASSES, selector="official")
    model.load_state_dict(seeded_weights(model, seed))
    return model.eval()


def run_ours(model: FluxViT, case: Case, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits (B, classes), kept (B, K) sorted grid indices or None when nothing is dropped)."""
    with torch.no_grad():
        features = model.forward_features(seeded_video(case, seed), case.budget)
        return model.forward_head(features.tokens, case.head), features.kept


def pack_kept(kept: torch.Tensor, patches: int) -> list[str]:
    """Kept indices per sample as a base64 bitmask over the T*h*w grid (a few hundred bytes a sample)."""
    mask = torch.zeros(kept.shape[0], patches, dtype=torch.bool)
    mask.scatter_(1, kept, True)
    return [base64.b64encode(np.packbits(row.numpy()).tobytes()).decode() for row in mask]


def unpack_kept(packed: list[str], patches: int) -> torch.Tensor:
    rows = [np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))[:patches] for text in packed]
    return torch.from_numpy(np.stack(rows)).bool().nonzero()[:, 1].reshape(len(rows), -1)


# -- the official side ------------------------------------------------------------------------------
def import_official(folder: Path) -> types.ModuleType:
    """The official `models/fluxvit.py` as a module, its missing CUDA-only imports stubbed."""
    source = folder / "models" / "fluxvit.py"
    if not source.is_file():
        raise SystemExit(f"{source} not found: --official must be the single_modality folder of OpenGVLab/FluxViT")
    return import_models_package(folder, "official_fluxvit", "fluxvit")


def import_models_package(folder: Path, name: str, module: str, extra_stubs: tuple[str, ...] = ()) -> types.ModuleType:
    """`folder/models` imported as package `name` (its relative imports work), returning its submodule `module`;
    the CUDA-only packages it imports at load time are stubbed when absent."""
    installed = sys.modules.get("flash_attn")
    real = not getattr(installed, "flux_stub", False) if installed else importlib.util.find_spec("flash_attn") is not None
    if not real:  # (a second official package imported in the same process finds the first one's stubs)
        for stubbed in (*OFFICIAL_CUDA_MODULES, *extra_stubs):
            sys.modules.setdefault(stubbed, _stub(stubbed))
    spec = importlib.util.spec_from_file_location(
        name, folder / "models" / "__init__.py", submodule_search_locations=[str(folder / "models")]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    return sys.modules[f"{spec.name}.{module}"]


def _stub(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.flux_stub = True

    def missing(attribute: str):
        def unavailable(*args, **kwargs):
            raise RuntimeError(f"{name}.{attribute} is a stub of the parity script; build the official model without it")

        return unavailable

    module.__getattr__ = missing
    return module


@contextlib.contextmanager
def cuda_is_identity() -> Iterator[None]:
    """The official expand_pos_embed resizes on the CPU and calls .cuda() on the result."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


def build_official(module: types.ModuleType, weights: dict[str, torch.Tensor]) -> nn.Module:
    with contextlib.redirect_stdout(sys.stderr):  # it prints its settings while building
        model = getattr(module, OFFICIAL_MODEL)(
            num_classes=NUM_CLASSES, use_flash_attn=False, use_fused_rmsnorm=False, use_fused_mlp=False, drop_path_rate=0.0
        )
    result = model.load_state_dict(weights, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise SystemExit(f"key layouts differ: official lacks {result.unexpected_keys}, ours lacks {result.missing_keys}")
    return model.eval()


def run_official(model: nn.Module, case: Case, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits, kept) as run_ours; kept read off the mask its sparse_group_token_selection returns."""
    masks = []
    select = model.sparse_group_token_selection

    def recording(*args, **kwargs):
        masks.append(select(*args, **kwargs))  # (B, T*L) True = dropped
        return masks[-1]

    model.sparse_group_token_selection = recording
    try:
        with torch.no_grad(), cuda_is_identity():
            logits = model(seeded_video(case, seed), masking_ratio=case.masking_ratio, output_head=case.head)
    finally:
        del model.sparse_group_token_selection
    if not masks:
        return logits, None
    kept = (~masks[0]).nonzero()[:, 1].reshape(masks[0].shape[0], -1)
    return logits, kept


def official_commit(folder: Path) -> str | None:
    try:
        return subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="the single_modality folder of OpenGVLab/FluxViT")
    parser.add_argument("--write-fixture", type=Path, help="write the recipe and the official outputs here (JSON)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    ours = build_ours(args.seed)
    official = build_official(import_official(args.official), seeded_weights(ours, args.seed))
    records = []
    print(f"{'case':<26} {'kept ours':>9} {'kept official':>13} {'same kept':>9} {'max |dlogit|':>13}")
    for case in CASES:
        logits, kept = run_ours(ours, case, args.seed)
        reference_logits, reference_kept = run_official(official, case, args.seed)
        same = (kept is None and reference_kept is None) or (
            kept is not None and reference_kept is not None and torch.equal(kept, reference_kept)
        )
        difference = (logits - reference_logits).abs().max().item()
        counts = [case.patches if indices is None else indices.shape[1] for indices in (kept, reference_kept)]
        print(f"{case.name:<26} {counts[0]:>9} {counts[1]:>13} {str(same):>9} {difference:>13.2e}")
        records.append(
            {
                **asdict(case),
                "masking_ratio": case.masking_ratio,
                "logits": reference_logits.tolist(),
                "kept": None if reference_kept is None else pack_kept(reference_kept, case.patches),
            }
        )
    if args.write_fixture:
        fixture = {
            "about": "official FluxViT outputs on seeded random weights; written by benchmarks/official_parity.py",
            "official_commit": official_commit(args.official),
            "torch": torch.__version__,
            "recipe": {
                "seed": args.seed,
                "model": MODEL,
                "selector": "official",
                "num_classes": NUM_CLASSES,
                "batch": BATCH,
                "dtype": "float32",
                "weights": "benchmarks/official_parity.py seeded_weights(model, seed)",
                "video": "benchmarks/official_parity.py seeded_video(case, seed, batch)",
            },
            "cases": records,
        }
        args.write_fixture.parent.mkdir(parents=True, exist_ok=True)
        args.write_fixture.write_text(json.dumps(fixture, indent=1) + "\n")
        print(f"wrote {args.write_fixture} ({args.write_fixture.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
