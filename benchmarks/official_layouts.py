"""Key-by-key comparison of the official model classes' state dicts with this registry's architectures: the
check behind `flux import`'s plain strict load (flux.models.importing).

    python benchmarks/official_layouts.py --fluxvit /tmp/off/FluxViT/single_modality \
        --internvideo2 /tmp/off/InternVideo/InternVideo2/single_modality

Both folders are imported from where they are (nothing is copied here; their CUDA-only imports are stubbed as in
benchmarks/official_parity.py). Each official constructor of the released checkpoints (FluxViT-S/B, the
InternVideo2 single-modality S/B/L that the distilled models use) is built on the CPU with 400 classes, and its
state dict compared with ours: keys only one side has, and keys whose shapes differ. Prints one line per pair;
exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import official_parity as parity  # noqa: E402  (benchmarks/ is not a package)

from flux.models.fluxvit import build_model  # noqa: E402

CPU_ONLY = {"use_flash_attn": False, "use_fused_rmsnorm": False, "use_fused_mlp": False}
PAIRS = {
    "fluxvit": [("fluxvit_small_patch14", "fluxvit_s"), ("fluxvit_base_patch14", "fluxvit_b")],
    "internvideo2": [
        ("internvideo2_small_patch14_224", "internvideo2_s"),
        ("internvideo2_base_patch14_224", "internvideo2_b"),
        ("internvideo2_large_patch14_224", "internvideo2_l"),
    ],
}
EXTRA_STUBS = ("flash_attn.ops.fused_dense", "fused_dense_lib", "dropout_layer_norm")


def import_internvideo2(folder: Path):
    source = folder / "models" / "internvideo2.py"
    if not source.is_file():
        raise SystemExit(f"{source} not found: --internvideo2 must be InternVideo2/single_modality of OpenGVLab/InternVideo")
    return parity.import_models_package(folder, "official_internvideo2", "internvideo2", EXTRA_STUBS)


def compare(module, official_name: str, ours_name: str) -> bool:
    with contextlib.redirect_stdout(sys.stderr):
        official = getattr(module, official_name)(num_classes=400, **CPU_ONLY).state_dict()
    ours = build_model(ours_name, num_classes=400).state_dict()
    only_official = sorted(set(official) - set(ours))
    only_ours = sorted(set(ours) - set(official))
    shapes = [
        f"{key} {tuple(official[key].shape)} vs {tuple(ours[key].shape)}"
        for key in official
        if key in ours and official[key].shape != ours[key].shape
    ]
    same = not (only_official or only_ours or shapes)
    verdict = (
        "same keys and shapes" if same else f"official only {only_official[:5]}; ours only {only_ours[:5]}; shapes {shapes[:5]}"
    )
    print(f"{official_name:<34} {ours_name:<16} {len(official):>5} keys  {verdict}")
    return same


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fluxvit", type=Path, help="OpenGVLab/FluxViT single_modality folder")
    parser.add_argument("--internvideo2", type=Path, help="OpenGVLab/InternVideo InternVideo2/single_modality folder")
    args = parser.parse_args(argv)
    if not (args.fluxvit or args.internvideo2):
        parser.error("give --fluxvit and/or --internvideo2")
    results = []
    if args.fluxvit:
        module = parity.import_official(args.fluxvit)
        results += [compare(module, official, ours) for official, ours in PAIRS["fluxvit"]]
    if args.internvideo2:
        module = import_internvideo2(args.internvideo2)
        results += [compare(module, official, ours) for official, ours in PAIRS["internvideo2"]]
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
