"""FluxViT training throughput on CPU and the cost of token selection, side by side in one run.

    python benchmarks/model_throughput.py                          # FluxViT-S, 2 threads, batch 1, 7 repeats
    python benchmarks/model_throughput.py --repeats 9 --batch 2

Settings (fp32, attention through SDPA, random inputs, random weights):
  native_1024    4 x 224^2 input, all 1024 patches kept
  native_2048    8 x 224^2 input, all 2048 patches kept
  select_1024   16 x 224^2 input (4096 patches) cut to 1024 tokens by the selector (forward_features budget)
Each repeat times, in rotating order, one forward+backward step of every setting (logits summed, gradients
cleared outside the timer) and one no-grad eval forward of native_1024 and select_1024, so machine noise hits
all alike. Prints per setting the median wall and process-CPU seconds per step (CPU time is less
disturbed by other tenants of a shared machine), kept tokens/s (wall), and the analytic forward GFLOPs of
flux.models.flops (MACs / 1e9 per view, embedding all input patches); then the ratios, each the median of
the per-repeat paired ratios: 2048 vs 1024 tokens, and select_1024 vs native_1024 (the issue's goal for the
selected input: <= 1.15 of the native cost), next to the corresponding MAC ratio.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from flux.models.flops import model_macs
from flux.models.fluxvit import FluxViT, build_model


@dataclass(frozen=True)
class Setting:
    name: str
    frames: int
    budget: int | None
    size: int = 224

    def patches(self, patch_size: int) -> int:
        return self.frames * (self.size // patch_size) ** 2

    def kept(self, patch_size: int) -> int:
        patches = self.patches(patch_size)
        return patches if self.budget is None else min(self.budget, patches)


SETTINGS = (Setting("native_1024", 4, None), Setting("native_2048", 8, None), Setting("select_1024", 16, 1024))
FORWARD_ONLY = ("native_1024", "select_1024")  # test-time Token Optimization runs forward only


def train_step(model: FluxViT, video: torch.Tensor, budget: int | None) -> tuple[float, float]:
    """(wall, process CPU) seconds of one forward+backward."""
    model.zero_grad(set_to_none=True)
    start, cpu = time.perf_counter(), time.process_time()
    model(video, budget).sum().backward()
    return time.perf_counter() - start, time.process_time() - cpu


def eval_step(model: FluxViT, video: torch.Tensor, budget: int | None) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        model(video, budget)
    return time.perf_counter() - start, time.process_time() - cpu


def run(model_name: str, batch: int, repeats: int, warmup: int, seed: int) -> None:
    torch.manual_seed(seed)
    model = build_model(model_name)
    patch = model.size.patch_size
    videos = {s.name: torch.randn(batch, 3, s.frames, s.size, s.size) for s in SETTINGS}
    budgets = {s.name: s.budget for s in SETTINGS}
    jobs: list[tuple[str, str, Callable[[FluxViT, torch.Tensor, int | None], tuple[float, float]]]] = [
        *(("train", s.name, train_step) for s in SETTINGS),
        *(("eval", name, eval_step) for name in FORWARD_ONLY),
    ]
    times: dict[tuple[str, str], list[tuple[float, float]]] = {(mode, name): [] for mode, name, _ in jobs}
    for repeat in range(warmup + repeats):
        shift = repeat % len(jobs)
        for mode, name, step in jobs[shift:] + jobs[:shift]:
            model.train(mode == "train")
            elapsed = step(model, videos[name], budgets[name])
            if repeat >= warmup:
                times[(mode, name)].append(elapsed)
        print(f"  repeat {repeat + 1}/{warmup + repeats}{' (warm-up)' if repeat < warmup else ''} done", flush=True)

    gflops = {s.name: model_macs(model_name, s.kept(patch), s.patches(patch)).gflops for s in SETTINGS}
    print(
        f"\n{model_name}, batch {batch}, fp32, {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.machine()}"
    )
    print(f"medians of {repeats} repeats ({warmup} warm-up)\n")
    columns = ("input", "patches", "kept", "wall s", "cpu s", "kept tok/s", "fwd GFLOPs")
    widths = (10, 8, 6, 8, 8, 11, 11)
    header = f"{'mode':<6} {'setting':<12} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths))
    print(header)
    print("-" * len(header))
    for mode, name, _ in jobs:
        setting = next(s for s in SETTINGS if s.name == name)
        median = statistics.median(wall for wall, _ in times[(mode, name)])
        cpu = statistics.median(cpu for _, cpu in times[(mode, name)])
        shape = f"{setting.frames}x{setting.size}^2"
        tokens_per_s = batch * setting.kept(patch) / median
        row = f"{mode:<6} {name:<12} {shape:>10} {setting.patches(patch):>8} {setting.kept(patch):>6} {median:8.3f} {cpu:8.3f}"
        print(f"{row} {tokens_per_s:11.1f} {gflops[name]:11.2f}")

    def ratio(mode: str, name: str, reference: str, clock: int = 0) -> float:
        return statistics.median(a[clock] / b[clock] for a, b in zip(times[(mode, name)], times[(mode, reference)]))

    print("\nratios (median of per-repeat paired ratios)           wall     cpu    MACs")
    lines = [
        ("train", "native_2048", "native_1024", "fwd+bwd  2048 vs 1024 native tokens     "),
        ("train", "select_1024", "native_1024", "fwd+bwd  16x224^2 -> 1024 vs native 1024"),
        ("eval", "select_1024", "native_1024", "forward  16x224^2 -> 1024 vs native 1024"),
    ]
    for mode, name, reference, label in lines:
        clocks = f"{ratio(mode, name, reference):6.3f}  {ratio(mode, name, reference, 1):6.3f}"
        print(f"  {label}     {clocks}  {gflops[name] / gflops[reference]:6.3f}")
    selected = ratio("train", "select_1024", "native_1024")
    verdict = "meets" if selected <= 1.15 else "misses"
    print(f"\nselected-input cost ratio {selected:.3f} {verdict} the issue's goal (<= 1.15) for fwd+bwd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="fluxvit_s")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    run(arguments.model, arguments.batch, arguments.repeats, arguments.warmup, arguments.seed)


if __name__ == "__main__":
    main()
