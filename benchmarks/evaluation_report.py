"""Evaluation cost per table of a finished `snakemake` run, read from its outputs.

    python benchmarks/evaluation_report.py [--config config/config.yaml ...]

For every grid table of the configuration: its evaluation jobs (run x protocol), the sum of their Snakemake job
wall times (`results/benchmarks/evaluate/<run>/<protocol>.tsv`: interpreter start-up and model loading
included), the sum of in-process evaluation time (`seconds` in the metrics files), the results recorded
(settings and TO searches, over all datasets), and the table job's own time. An evaluation shared by several
tables (main Tables 2-4 share rows) counts in each; the last line is the whole evaluation stage, each job once.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from flux.config import load_config
from flux.jobs import table_evaluations


def benchmark_seconds(path: Path) -> float | None:
    if not path.is_file():
        return None
    rows = list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"))
    return float(rows[-1]["s"]) if rows else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", default=None, help="config files (default: config/config.yaml)")
    arguments = parser.parse_args()
    config = load_config(arguments.config or ["config/config.yaml"])
    benchmarks = config.results_dir / "benchmarks"
    print(f"{'table':12s} {'evals':>5s} {'job wall s':>10s} {'in-process s':>12s} {'results':>7s} {'table s':>8s}")
    seen: dict[tuple[str, str], tuple[float, float, int]] = {}
    for table in config.tables:
        evaluations = table_evaluations(config, table)
        if not evaluations:
            continue
        wall = inner = 0.0
        inputs = 0
        for run, protocol in evaluations:
            seconds = benchmark_seconds(benchmarks / "evaluate" / run / f"{protocol}.tsv") or 0.0
            record = json.loads(config.metrics_path(run, protocol).read_text(encoding="utf-8"))
            count = sum(len(results) for results in record["results"].values())
            seen[(run, protocol)] = (seconds, record["seconds"], count)
            wall, inner, inputs = wall + seconds, inner + record["seconds"], inputs + count
        rendered = benchmark_seconds(benchmarks / "tables" / f"{table}.tsv") or 0.0
        print(f"{table:12s} {len(evaluations):5d} {wall:10.1f} {inner:12.1f} {inputs:7d} {rendered:8.1f}")
    total_wall = sum(value[0] for value in seen.values())
    total_inner = sum(value[1] for value in seen.values())
    print(f"{'all (once)':12s} {len(seen):5d} {total_wall:10.1f} {total_inner:12.1f} {sum(v[2] for v in seen.values()):7d}")


if __name__ == "__main__":
    main()
