"""The fingerprint of every job a configuration would run: a refactor that changes none of them changes no result.

    python benchmarks/job_specs.py                     # default, micro and paper configurations
    python benchmarks/job_specs.py --config config/config.yaml --config mine.yaml

For each configuration, the job spec (flux.jobs.job_spec: everything a job computes from) of every training run,
every (run, protocol) evaluation, every dataset's index, every table and every figure, minus the tables' and
figures' configuration digest (provenance), is hashed into one sha256, printed per configuration. Run it before
and after a change: equal
fingerprints mean every job would compute the same thing, without running any. It does not see code inside the
jobs: build the embedded default and compare with benchmarks/compare_results.py for that.
"""

from __future__ import annotations

import argparse
import hashlib
import json

from flux.config import load_config
from flux.errors import FluxError
from flux.jobs import job_spec

CONFIGURATIONS = (["config/config.yaml"], ["config/config.yaml", "config/micro.yaml"], ["config/paper.yaml"])


def fingerprint(files: list[str]) -> str:
    config = load_config(files)
    specs: dict[str, object] = {}
    for run in config.selected_runs:
        specs[f"train/{run}"] = job_spec(config, "train", run)
        for protocol in config.table_document["protocols"]:
            try:
                specs[f"evaluate/{run}/{protocol}"] = job_spec(config, "evaluate", f"{run}/{protocol}")
            except FluxError as error:  # a protocol a run cannot be evaluated under: its error is part of the print
                specs[f"evaluate/{run}/{protocol}"] = str(error)
    for dataset in config.used_datasets():
        specs[f"index/{dataset}"] = job_spec(config, "index", dataset)
    for verb, names in (("table", config.tables), ("figure", config.figures)):
        for name in names:
            spec = job_spec(config, verb, name)
            spec.pop("config_digest", None)
            specs[f"{verb}/{name}"] = spec
    return hashlib.sha256(json.dumps(specs, sort_keys=True, default=str).encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", help="config file(s) of one configuration, later ones win")
    args = parser.parse_args()
    for files in [args.config] if args.config else CONFIGURATIONS:
        print(f"{fingerprint(files)}  {' + '.join(files)}")


if __name__ == "__main__":
    main()
