"""Retrieval metrics on a 10k x 10k similarity: time and peak memory, chunked vs the whole matrix at once.

    python benchmarks/retrieval.py                   # 10,000 captions x 10,000 videos, 512-d, 2 repeats
    python benchmarks/retrieval.py --items 5000 --repeats 3

Each variant runs `flux.eval.retrieval.retrieval_metrics` (T2V and V2T, plain and dual softmax: four
ranking passes plus two DSL normalisers) in a fresh subprocess, so its peak resident memory (ru_maxrss) is its
own; variants alternate within each repeat so machine noise hits both. Printed: median seconds and peak MiB
per variant, then chunked / whole ratios, and the float64 size of one full similarity matrix for scale.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CHILD = """
import json, resource, sys, time, torch
from flux.eval.retrieval import retrieval_metrics
items, dim, chunk = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
videos = torch.randn(items, dim)
texts = videos + 12.0 * torch.randn(items, dim)  # caption t describes video t, noisily
started = time.perf_counter()
result = retrieval_metrics(texts, videos, list(range(items)), chunk=chunk)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "t2v_r1": result["plain"]["t2v"]["R@1"], "dsl_t2v_r1": result["dual_softmax"]["t2v"]["R@1"]}))
"""


def measure(items: int, dim: int, chunk: int) -> dict:
    finished = subprocess.run(
        [sys.executable, "-c", CHILD, str(items), str(dim), str(chunk)], capture_output=True, text=True, check=True
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    arguments = parser.parse_args()
    variants = {"chunked": arguments.chunk, "whole": arguments.items}
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for repeat in range(arguments.repeats):
        order = list(variants) if repeat % 2 == 0 else list(reversed(variants))
        for name in order:
            runs[name].append(measure(arguments.items, arguments.dim, variants[name]))
    items, dim = arguments.items, arguments.dim
    print(f"{items} texts x {items} videos, dim {dim}, chunk {arguments.chunk}, {arguments.repeats} repeats")
    print(f"one float64 similarity matrix: {items**2 * 8 / 2**20:.0f} MiB")
    summary = {}
    for name, records in runs.items():
        seconds = statistics.median(r["seconds"] for r in records)
        peak = statistics.median(r["peak_mib"] for r in records)
        summary[name] = (seconds, peak)
        first = records[0]
        print(f"{name:8s} {seconds:7.2f} s  peak {peak:7.0f} MiB  T2V R@1 {first['t2v_r1']:.2f}  DSL {first['dsl_t2v_r1']:.2f}")
    if any(runs["chunked"][0][key] != runs["whole"][0][key] for key in ("t2v_r1", "dsl_t2v_r1")):
        raise SystemExit("chunked and whole-matrix metrics differ")
    time_ratio = summary["chunked"][0] / summary["whole"][0]
    memory_ratio = summary["chunked"][1] / summary["whole"][1]
    print(f"chunked / whole: time {time_ratio:.2f}x, peak memory {memory_ratio:.2f}x")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this process: {peak_mib:.0f} MiB; finished {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
