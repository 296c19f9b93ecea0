"""Snakemake's own CPU time over many short jobs, with its default job rate limit and without it (what the
Snakefile's onstart does: flux.cluster.drop_default_job_rate_limit), side by side, alternating.

    python benchmarks/scheduler_overhead.py                      # 150 jobs of 0.7 s on 2 cores, each variant twice
    python benchmarks/scheduler_overhead.py --jobs 300 --repeats 1

The jobs only sleep, so the CPU time of the snakemake process and its children is Snakemake's own: scheduling
passes, job bookkeeping and the `benchmark:` sampling, which both variants keep, as the rules do. With the
default limit every finished job adds a one-second timer chain of scheduling passes (snakemake#3744), so the
difference grows with the number of jobs and with the time they run.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SNAKEFILE = """\
from flux.cluster import drop_default_job_rate_limit


onstart:
    if config["drop_limit"]:
        assert drop_default_job_rate_limit(workflow.scheduler)


rule all:
    input:
        expand("out/{{i}}.txt", i=range({jobs})),


rule one:
    output:
        "out/{{i}}.txt",
    benchmark:
        "bench/{{i}}.tsv"
    shell:
        "sleep {seconds}; touch {{output}}"
"""


def run_once(root: Path, drop_limit: bool, cores: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of snakemake and its children) of one run from nothing."""
    for name in ("out", "bench", ".snakemake"):
        shutil.rmtree(root / name, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all", "--config", f"drop_limit={drop_limit}"]
    subprocess.run(command, cwd=root, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=0.7, help="how long each job sleeps")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant, alternating")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "Snakefile").write_text(SNAKEFILE.format(jobs=args.jobs, seconds=args.seconds))
        measured: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for _ in range(args.repeats):
            for drop_limit in (False, True):
                measured[drop_limit].append(run_once(root, drop_limit, args.cores))
    print(f"{args.jobs} jobs of {args.seconds} s on {args.cores} cores; per run: wall s, snakemake CPU s")
    for drop_limit, label in ((False, "default limit (100/1s)"), (True, "limit dropped")):
        runs = ", ".join(f"{wall:.1f} / {cpu:.1f}" for wall, cpu in measured[drop_limit])
        print(f"  {label:24s} {runs}")
    mean = {key: sum(cpu for _, cpu in runs) / len(runs) for key, runs in measured.items()}
    print(f"snakemake CPU, dropped / default: {mean[True] / mean[False]:.2f}")


if __name__ == "__main__":
    main()
