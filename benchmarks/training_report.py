"""Training cost and accuracy of a finished `snakemake` run, read from its outputs.

    python benchmarks/training_report.py [--results results]

Per stage: runs, the sum of in-process training time (`final.json` train_seconds: the loop, without
interpreter start-up, model building or the validation check), the sum of Snakemake's job wall time
(`results/benchmarks/train/<run>.tsv`: everything, start-up included), and the median training throughput
(tokens through the model per second of step time). Then every run with a validation check: top-1 against
chance on its dataset's validation split.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path


def job_seconds(results: Path, run: str) -> float | None:
    path = results / "benchmarks" / "train" / f"{run}.tsv"
    if not path.is_file():
        return None
    rows = list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"))
    return float(rows[-1]["s"]) if rows else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    arguments = parser.parse_args()
    summaries = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(arguments.results.glob("runs/*/final.json"))]
    if not summaries:
        raise SystemExit(f"no results/runs/*/final.json under {arguments.results}: run snakemake first")
    by_stage: dict[str, list[dict]] = defaultdict(list)
    for summary in summaries:
        by_stage[summary["stage"]].append(summary)
    print(f"{'stage':10} {'runs':>4} {'train s':>9} {'job s':>9} {'tokens/s (median)':>18}")
    total_train = total_job = 0.0
    for stage, runs in by_stage.items():
        train = sum(run["train_seconds"] for run in runs)
        jobs = [job_seconds(arguments.results, run["run"]) for run in runs]
        job = sum(value for value in jobs if value is not None)
        rates = [run["tokens_per_second"] for run in runs if run.get("tokens_per_second")]
        total_train, total_job = total_train + train, total_job + job
        median = f"{statistics.median(rates):.0f}" if rates else "-"
        print(f"{stage:10} {len(runs):>4} {train:>9.1f} {job:>9.1f} {median:>18}")
    print(f"{'total':10} {len(summaries):>4} {total_train:>9.1f} {total_job:>9.1f}")
    print(f"\n{'run':28} {'steps':>5} {'top-1':>6} {'chance':>6} {'videos':>6}")
    for summary in summaries:
        check = summary.get("validation")
        if check:
            print(f"{summary['run']:28} {summary['steps']:>5} {check['top1']:>6.3f} {check['chance']:>6.3f} {check['videos']:>6}")


if __name__ == "__main__":
    main()
