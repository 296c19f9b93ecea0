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
from collections.abc import Sequence

from flux.errors import FluxError
from flux.verbs import VERBS, resolve

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flux", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for entry in VERBS.values():
        if not entry.is_job:  # a command: its own parser reads the rest of the line
            verbs.add_parser(entry.name, add_help=False, help=entry.help)
            continue
        sub = verbs.add_parser(entry.name, help=entry.help, description=entry.help)
        sub.add_argument("target", nargs="?", help="dataset, run, checkpoint or table id (with --config)")
        sub.add_argument("--config", action="append", default=[], metavar="FILE", help="config file(s), later ones win")
        sub.add_argument("--spec", help="job spec JSON, as the Snakemake rules pass it")
        if entry.threads:
            sub.add_argument("--threads", type=int, default=1, help="CPU threads (rules pass theirs); index: probe processes")
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


def main_check(argv: Sequence[str]) -> int:
    """`flux check --config A --config B`: the configuration Snakemake would build from `--configfile A B` (over
    config/config.yaml, as the Snakefile loads it), with every error as `file:line` or `key`, and the files jobs
    will need that do not exist yet."""
    parser = argparse.ArgumentParser(prog="flux check", description=VERBS["check"].help)
    parser.add_argument("--config", action="append", default=[], metavar="FILE", help="config file(s), later ones win")
    files = parser.parse_args(argv).config
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
    entry = VERBS[arguments.verb]
    if not entry.is_job:
        return resolve(entry.run)(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.DEBUG if arguments.verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    try:
        spec = resolve_spec(arguments.verb, arguments.target, arguments.config, arguments.spec)
        if entry.threads:
            spec = {**spec, "threads": arguments.threads}
        resolve(entry.run)(spec)
    except FluxError as error:
        logging.getLogger("flux").error("%s", error)
        return 2
    return 0
