"""What the decoded-view cache (evaluation.clip_cache) saves: evaluations of a built embedded default, each run
without the cache, then with a cold cache (it decodes and writes the views), then warm (it reads them).

    snakemake --cores 2                                   # the embedded default, once
    python benchmarks/clip_cache.py                       # three evaluations of different protocols
    python benchmarks/clip_cache.py k400_s/k400_views clip2_s/retrieval

Run from the repository root of a built default. Prints, per evaluation, seconds without / cold / warm, the
warm speed-up over no cache, and whether the three metrics files hold the same results (they must: the cache
keeps exactly what the dataset gives). The views go to a temporary folder; the build's own cache is not touched.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from flux.config import load_config
from flux.eval import runner
from flux.jobs import job_spec

DEFAULT = ["ft_flux_single_k400/ablation", "t1_multi/token_grid", "clip2_s/retrieval"]


def results(path: Path) -> dict:
    record = json.loads(path.read_text())["results"]
    return {
        role: {key: {m: v for m, v in value.items() if m != "seconds"} for key, value in keys.items()}
        for role, keys in record.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="*", default=DEFAULT, help="<run>/<protocol> of the built configuration")
    parser.add_argument("--config", action="append", default=None, help="configuration files (default config/config.yaml)")
    arguments = parser.parse_args()
    config = load_config(arguments.config or ["config/config.yaml"])
    print(f"{'evaluation':36} {'no cache':>9} {'cold':>7} {'warm':>7} {'speed-up':>9}  same results")
    with tempfile.TemporaryDirectory() as scratch:
        for target in arguments.evaluations:
            spec = job_spec(config, "evaluate", target)
            timings, outputs = [], []
            for name, cache in (("plain", None), ("cold", f"{scratch}/{target}"), ("warm", f"{scratch}/{target}")):
                out = Path(scratch) / f"{target.replace('/', '_')}-{name}.json"
                started = time.perf_counter()
                runner.run(
                    {
                        **{k: v for k, v in spec.items() if k != "clip_cache"},
                        "out": str(out),
                        **({"clip_cache": cache} if cache else {}),
                    }
                )
                timings.append(time.perf_counter() - started)
                outputs.append(results(out))
            same = outputs[0] == outputs[1] == outputs[2]
            print(f"{target:36} {timings[0]:9.2f} {timings[1]:7.2f} {timings[2]:7.2f} {timings[0] / timings[2]:8.1f}x  {same}")


if __name__ == "__main__":
    main()
