"""Write the test fixture of an official FluxViT checkpoint: the official model class at a tiny width and depth,
fixed random weights, saved as the official training script saves them, with its logits on a few inputs.

    python benchmarks/official_checkpoint_fixture.py --official /tmp/off/FluxViT/single_modality

`--official` is the `single_modality` folder of OpenGVLab/FluxViT; its `models/fluxvit.py` is imported from
there as it is (nothing is copied into this repository; the CUDA-only packages it imports are stubbed, as in
benchmarks/official_parity.py). The model is the official `FluxViT` class with the shape of this registry's
`fluxvit_tiny` (width 128, depth 4, 2 heads, 2-head attention pooling to 128, 8 x 112^2 position grid), all of
FluxViT's modules on, 5 classes. Every weight is drawn from a seed (official_parity.seeded_weights, scales that
make every module matter) over the official model's own state dict, and kept in fp16. Written to
tests/models/fixtures/:

- official_fluxvit_tiny.pth: `{"model": state_dict, "epoch": 0, "args": argparse.Namespace(...)}`, the layout
  of the official `utils.save_model` (its argparse namespace included), tensors in fp16;
- official_fluxvit_tiny_outputs.pt: the inputs (fixed random videos, normalised, 2 per case) and the official logits of
  every output head, on an unmasked input (2 x 112^2, 128 patches, no budget) and a masked one (6 x 84^2 at
  108 of 216 patches: the official selection over 2 groups of 3 frames, as its evaluation engine asks for it
  through `masking_ratio = 1 - budget / patches`; the official selection cannot take 4 frames, which it splits
  into 4 groups of one frame, whose frame differences are empty). Both inputs resize the position embedding.

tests/models/test_official_import.py imports the .pth through the registry path (`flux import`) and checks our
logits against these within 1e-4.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import official_parity as parity  # noqa: E402  (benchmarks/ is not a package)

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "models" / "fixtures"
CHECKPOINT = FIXTURES / "official_fluxvit_tiny.pth"
OUTPUTS = FIXTURES / "official_fluxvit_tiny_outputs.pt"
MODEL = "fluxvit_tiny"  # our registry's architecture of the same shape
NUM_CLASSES = 5
SEED = 7
BATCH = 2  # the official non-flash attention squeezes a batch of one away (`self.lpe(lpe).squeeze()`) and fails
# name -> (frames, side, budget): budget None is an input the official engine passes no masking ratio for
CASES = {"unmasked 2x112": (2, 112, None), "masked 6x84@108": (6, 84, 108)}
OFFICIAL_SHAPE = {
    "patch_size": 14,
    "img_size": 112,
    "num_frames": 8,
    "embed_dim": 128,
    "depth": 4,
    "num_heads": 2,
    "mlp_ratio": 4,
    "attn_pool_num_heads": 2,
    "clip_embed_dim": 128,
    "use_gpe_proj": True,
    "use_lpe": True,
    "dual_norm_in_patch_embed": True,
}


def build_official(module) -> torch.nn.Module:
    with contextlib.redirect_stdout(sys.stderr):  # it prints its settings while building
        model = module.FluxViT(
            **OFFICIAL_SHAPE,
            num_classes=NUM_CLASSES,
            use_flash_attn=False,
            use_fused_rmsnorm=False,
            use_fused_mlp=False,
            drop_path_rate=0.0,
        )
    model.load_state_dict(half_precision(parity.seeded_weights(model, SEED)))
    return model.eval()


def half_precision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fp16 copies: half the fixture's size, and the case of a checkpoint saved in half precision (the model runs
    in fp32 on exactly these values, so nothing is lost between the official run and the import)."""
    return {key: value.half() if value.is_floating_point() else value for key, value in state.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="the single_modality folder of OpenGVLab/FluxViT")
    args = parser.parse_args(argv)
    model = build_official(parity.import_official(args.official))
    generator = torch.Generator().manual_seed(SEED)
    cases = []
    for name, (frames, side, budget) in CASES.items():
        video = torch.randn(BATCH, 3, frames, side, side, generator=generator).half()  # stored in fp16, run in fp32
        patches = frames * (side // 14) ** 2
        ratio = None if budget is None else 1 - budget / patches
        with torch.no_grad(), parity.cuda_is_identity():
            logits = [model(video.float(), masking_ratio=ratio, output_head=head) for head in range(3)]
        cases.append({"name": name, "video": video, "budget": budget, "masking_ratio": ratio, "logits": torch.cat(logits)})
    namespace = argparse.Namespace(model="FluxViT " + str(OFFICIAL_SHAPE), nb_classes=NUM_CLASSES, seed=SEED)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    torch.save({"model": half_precision(model.state_dict()), "epoch": 0, "args": namespace}, CHECKPOINT)
    torch.save(
        {
            "official_commit": parity.official_commit(args.official),
            "torch": str(torch.__version__),
            "model": MODEL,
            "num_classes": NUM_CLASSES,
            "cases": cases,
        },
        OUTPUTS,
    )
    for path in (CHECKPOINT, OUTPUTS):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
