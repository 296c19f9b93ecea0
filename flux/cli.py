"""`flux` command line: one verb per pipeline step; every Snakemake rule calls one of them.

Rules pass `--spec` (the JSON built by flux.jobs); by hand, name the target and the config files:
    flux download kinetics400 --config config/paper.yaml
    flux index synth_k400 --config config/config.yaml --config config/micro.yaml
    flux import fluxvit_s14_k400 --config config/paper.yaml
    flux flops --model fluxvit_s --tokens 2048
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from flux.errors import FluxError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _runner(verb: str) -> Callable[[dict], object]:
    # imported lazily: `flux --help` and light verbs must not pay for torch/decord imports
    if verb == "synth":
        from flux.data.synthetic import run
    elif verb == "download":
        from flux.data.registry import run
    elif verb == "kinetics710":
        from flux.data.kinetics710 import run
    elif verb == "index":
        from flux.data.index import run
    elif verb == "table":
        from flux.tables.render import run
    elif verb == "train":
        from flux.train.trainer import run
    elif verb == "evaluate":
        from flux.eval.runner import run
    elif verb == "import":
        from flux.models.importing import run
    elif verb == "document":
        from flux.tables.document import run_document as run
    elif verb == "pdf":
        from flux.tables.document import run_pdf as run
    elif verb == "figure":
        from flux.tables.figures import run
    else:
        raise FluxError(f"unknown verb {verb}")
    return run


DESCRIPTIONS = {
    "synth": "generate a synthetic dataset (real h264 mp4 files + annotations in the real format)",
    "download": "fetch a dataset: download its URL files (resumable, verified) and link its local directory",
    "kinetics710": "build Kinetics-710 lists, label map and head maps from the K400/K600/K700 annotations",
    "index": "probe every media file of a dataset and write its manifest (parquet) and report",
    "table": "render a paper table as LaTeX",
    "train": "train one run of config/runs.yaml (resumes from its latest state)",
    "import": "import an external checkpoint of config/checkpoints.yaml as results/runs/<name>/final.pt",
    "evaluate": "evaluate a checkpoint under a protocol of config/tables.yaml (target: <run>/<protocol>)",
    "figure": "draw a figure of config/tables.yaml as PNG from training logs and metrics files",
    "document": "write results/tables/all.tex, which inputs every table and figure",
    "pdf": "compile results/tables/all.tex with pdflatex",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flux", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb, description in DESCRIPTIONS.items():
        sub = verbs.add_parser(verb, help=description, description=description)
        sub.add_argument("target", nargs="?", help="dataset, run, checkpoint or table id (with --config)")
        sub.add_argument("--config", action="append", default=[], metavar="FILE", help="config file(s), later ones win")
        sub.add_argument("--spec", help="job spec JSON, as the Snakemake rules pass it")
        if verb in ("index", "train", "evaluate"):
            sub.add_argument("--threads", type=int, default=1, help="CPU threads (rules pass theirs); index: probe processes")
    check = verbs.add_parser(
        "check",
        help="load and validate configuration files as Snakemake would (file:line for YAML errors, which Snakemake omits)",
    )
    check.add_argument("--config", action="append", default=[], metavar="FILE", help="config file(s), later ones win")
    verbs.add_parser(
        "pull",
        add_help=False,
        help="dvc pull data and checkpoints; on failure, name every missing or corrupted file (`flux pull --help`)",
    )
    verbs.add_parser(
        "flops",
        add_help=False,
        help="analytic per-view GFLOPs of a model at a token count (`flux flops --help`); the number is the last line",
    )
    return parser


def resolve_spec(verb: str, target: str | None, config_files: Sequence[str], spec: str | None) -> dict:
    if spec is not None:
        if target or config_files:
            raise FluxError("give either --spec or a target with --config, not both")
        try:
            return json.loads(spec)
        except json.JSONDecodeError as error:
            raise FluxError(f"--spec is not valid JSON: {error}") from None
    if not target or not config_files:
        raise FluxError(f"`flux {verb}` needs a target and --config FILE (e.g. `flux {verb} <id> --config config/config.yaml`)")
    from flux.config import load_config
    from flux.jobs import job_spec

    return job_spec(load_config(config_files), verb, target)


def check_config(files: Sequence[str]) -> int:
    """`flux check --config A --config B`: the configuration Snakemake would build from `--configfile A B` (over
    config/config.yaml, as the Snakefile loads it), with every error as `file:line` or `key`, and the files jobs
    will need that do not exist yet."""
    from flux.config import load_config

    try:
        config = load_config(["config/config.yaml", *files])
    except FluxError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    for missing in config.missing_files():
        print(f"flux: {missing}", file=sys.stderr)
    print(f"{' + '.join(['config/config.yaml', *files])}: valid ({config.scale} scale, {len(config.selected_runs)} runs)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments, rest = parser.parse_known_args(argv)
    if arguments.verb == "flops":  # its own parser: flux.models.flops.main_flops
        from flux.models.flops import main_flops

        return main_flops(rest)
    if arguments.verb == "pull":
        from flux.artifacts import main_pull

        return main_pull(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if arguments.verb == "check":
        return check_config(arguments.config)
    logging.basicConfig(level=logging.DEBUG if arguments.verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    try:
        spec = resolve_spec(arguments.verb, arguments.target, arguments.config, arguments.spec)
        if arguments.verb in ("index", "train", "evaluate"):
            spec = {**spec, "threads": arguments.threads}
        _runner(arguments.verb)(spec)
    except FluxError as error:
        logging.getLogger("flux").error("%s", error)
        return 2
    return 0
