"""What scoring a released model on the K400 validation set costs: the `model_zoo` protocol of the checkpoints table.

    python benchmarks/released_evaluation.py                    # FluxViT-S, 2 threads, 5 repeats
    python benchmarks/released_evaluation.py --model fluxvit_b --repeats 3

One video under the protocol is 12 views (4 clips x 3 crops) of 8 x 224^2 frames at most 2048 tokens (every
patch kept: 8 x 16 x 16 = 2048), read by head 1 with the official selector, as an imported released model is
evaluated (flux.models.importing). On random weights, fp32, no-grad, the 12 views of one video as one batch,
the median over repeats of: model seconds per video and clips (views) per second on this CPU. Then the analytic
cost of the whole validation set (flux.models.flops: MACs x 2 = FLOPs per view, x 12 views x the videos of the
official kinetics-400_val.csv, 19,906): total PFLOPs, this CPU's hours at the measured rate, and one GPU's hours
at a stated sustained rate (an H100 runs bf16 dense at ~990 TFLOP/s peak; ViT inference at batch 12-64 sustains
~30-40 % of it). Decoding is not included: 4 clips of a 10 s video per view set, measured by benchmarks/decode.py.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from flux.models.flops import model_macs
from flux.models.fluxvit import build_model

VIEWS = 12  # 4 clips x 3 crops
FRAMES, SIZE, BUDGET, HEAD = 8, 224, 2048, 1
K400_VAL_VIDEOS = 19906  # rows of the official kinetics-400_val.csv (ActivityNet crawler, 199c935)
GPU_SUSTAINED_TFLOPS = 0.35 * 990  # assumption: 35 % of an H100's bf16 dense peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fluxvit_s")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.model, num_classes=400, selector="official").eval()
    video = torch.randn(VIEWS, 3, FRAMES, SIZE, SIZE)
    seconds = []
    with torch.no_grad():
        model.forward_head(model.forward_features(video[:1], BUDGET).tokens, HEAD)  # warm-up
        for _ in range(args.repeats):
            started = time.perf_counter()
            model.forward_head(model.forward_features(video, BUDGET).tokens, HEAD)
            seconds.append(time.perf_counter() - started)
    per_video = statistics.median(seconds)
    patches = FRAMES * (SIZE // 14) ** 2
    gflops_view = 2 * model_macs(args.model, min(BUDGET, patches), patches, 400).gflops
    total_pflops = gflops_view * VIEWS * K400_VAL_VIDEOS / 1e6
    print(f"{args.model}, {platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}")
    print(f"views per video: {VIEWS} of {FRAMES}x{SIZE}^2 at {BUDGET} tokens, head {HEAD}")
    print(f"model time per video (median of {args.repeats}): {per_video:.2f} s  ->  {VIEWS / per_video:.2f} clips/s on this CPU")
    print(
        f"analytic cost: {gflops_view / 2:.1f} GMACs per view (the paper's 'GFLOPs'), {gflops_view:.1f} GFLOPs per view, "
        f"{gflops_view * VIEWS:.0f} GFLOPs per video"
    )
    print(f"K400 validation ({K400_VAL_VIDEOS} videos): {total_pflops:.1f} PFLOPs")
    print(f"  this CPU at the measured rate: {per_video * K400_VAL_VIDEOS / 3600:.1f} h")
    print(
        f"  one GPU at {GPU_SUSTAINED_TFLOPS:.0f} TFLOP/s sustained (assumed): "
        f"{total_pflops * 1e3 / GPU_SUSTAINED_TFLOPS / 60:.1f} min of model time"
    )


if __name__ == "__main__":
    main()
