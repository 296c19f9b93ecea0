"""Does the video-text chain learn words, or memorise its captions? Text-to-video ranks of the teacher and of
Flux-CLIP on captions they trained on and on captions none of them saw, against chance.

    snakemake --cores 2                                   # the embedded default, once
    python benchmarks/retrieval_generalisation.py         # teacher, clip1_s, clip2_s on three caption sets
    python benchmarks/retrieval_generalisation.py --runs teacher --datasets synth_webvid10m:train synth_webvid2m:train

Run from the repository root of a built configuration. Each run is scored by `flux evaluate`'s own retrieval code
(one centre view at the first input of Flux-CLIP's retrieval protocol, 8x224 = 2048 tokens in paper units, on the
checkpoint's first trained head), on the captions of each named `dataset:split`. The default sets: the teacher's
own training captions (synth_webvid10m, which Flux-CLIP stage 1 reads too), captions that no run trains on
(synth_webvid2m) and the MSR-VTT stand-in the claims table reads. Printed per run and set: captions, videos,
T2V R@1 against chance (100 / videos) and the median rank against the median of a random ranking
((videos + 1) / 2). A chain that learned its words ranks both kinds of set well; one that memorised ranks only its
training set well.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from flux.config import load_config
from flux.eval import runner
from flux.jobs import job_spec
from flux.train.inheritance import trained_heads

RUNS = ["teacher", "clip1_s", "clip2_s"]
DATASETS = ["synth_webvid10m:train", "synth_webvid2m:train", "synth_msrvtt:test"]
REFERENCE = "clip2_s/retrieval"  # the built evaluation whose spec (input, head, seed) every measurement reuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=RUNS, help="trained video-text runs of the configuration")
    parser.add_argument("--datasets", nargs="+", default=DATASETS, help="dataset:split pairs with captions")
    parser.add_argument("--config", action="append", default=None, help="configuration files (default config/config.yaml)")
    arguments = parser.parse_args()
    config = load_config(arguments.config or ["config/config.yaml"])
    reference = job_spec(config, "evaluate", REFERENCE)
    setting = reference["settings"][0]
    roles = []
    for entry in arguments.datasets:
        dataset, _, split = entry.partition(":")
        if dataset not in config.datasets or not split:
            parser.error(f"{entry}: give <dataset>:<split> with a dataset of {config.registry_path}")
        roles.append(
            {
                "dataset": dataset,
                "frame_sampling": config.datasets[dataset].frame_sampling,
                "manifest": str(config.manifest_path(dataset)),
                "role": dataset,
                "splits": [split],
            }
        )
    print(f"input {setting['key']} ({setting['frames']} frames of {setting['resolution']} px, {setting['budget']} tokens)")
    print(f"{'run':10} {'captions':28} {'texts':>5} {'videos':>6} {'R@1':>6} {'chance':>6} {'MdR':>5} {'random':>6}")
    with tempfile.TemporaryDirectory() as scratch:
        for run in arguments.runs:
            checkpoint = config.checkpoint_path(run)
            out = Path(scratch) / f"{run}.json"
            head = min(trained_heads(config.runs, run))  # the checkpoint's first trained head, from the config
            runner.run(
                {
                    **{key: value for key, value in reference.items() if key != "clip_cache"},
                    "run": run,
                    "eval": f"{run}/retrieval_generalisation",
                    "lineage": "benchmark",
                    "checkpoint": str(checkpoint),
                    "out": str(out),
                    "roles": roles,
                    "settings": [{**setting, "head": head}],
                    "token_optimization": [],
                }
            )
            results = json.loads(out.read_text())["results"]
            for role, split in zip(roles, arguments.datasets):
                measured = results[role["role"]][setting["key"]]
                videos, t2v = measured["videos"], measured["plain"]["t2v"]
                print(
                    f"{run:10} {split:28} {measured['texts']:5d} {videos:6d} {t2v['R@1']:6.1f} {100 / videos:6.1f} "
                    f"{t2v['MdR']:5.0f} {(videos + 1) / 2:6.1f}"
                )


if __name__ == "__main__":
    main()
