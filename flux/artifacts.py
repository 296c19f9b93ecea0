"""`flux pull`: `dvc pull` of data and checkpoints, with a diagnosis that names every file at fault.

DVC refuses to check out a target whose remote copy is missing or fails its hash (the remote is configured
with `verify = true`), so nothing in the workspace is overwritten; but it reports only the target ("Checkout
failed for following targets: data"). On failure this reads the target's directory listing and checks each
file's copy in a local (directory) remote: absent, or content whose md5 differs from the recorded one.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from flux.errors import FluxError

logger = logging.getLogger(__name__)

DEFAULT_TARGETS = ("data.dvc", "results/runs.dvc")


def md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def object_path(store: Path, checksum: str) -> Path:
    """DVC 3's content-addressed layout: files/md5/<first 2 hex>/<the rest> (`.dir` for listings)."""
    return store / "files" / "md5" / checksum[:2] / checksum[2:]


def remote_directory(repo: Path, remote: str | None) -> Path | None:
    """The directory of a local remote (None for s3://, ssh://, ...): `url` relative to .dvc/."""
    parser = configparser.ConfigParser()
    parser.read([repo / ".dvc" / "config", repo / ".dvc" / "config.local"])
    name = remote or parser.get("core", "remote", fallback=None)
    sections = {section.strip("'"): section for section in parser.sections()}  # DVC writes ['remote "x"']
    section = sections.get(f'remote "{name}"')
    if not name or section is None:
        return None
    url = parser.get(section, "url")
    if "://" in url:
        return None
    return (repo / ".dvc" / url).resolve()


def diagnose(repo: Path, target: str, store: Path) -> list[str]:
    """Files of a `.dvc` target whose remote copy is absent or corrupted, as messages."""
    entry = yaml.safe_load((repo / target).read_text(encoding="utf-8"))
    problems = []
    for out in entry.get("outs", []):
        checksum, path = out["md5"], out["path"]
        base = Path(target).parent / path
        listing = object_path(store, checksum)
        if not checksum.endswith(".dir"):
            problems += _check(store, base, checksum)
            continue
        if not listing.is_file():
            problems.append(f"{base}/: the directory listing {checksum} is not in the remote {store}; `dvc push` it first")
            continue
        for item in json.loads(listing.read_text(encoding="utf-8")):
            problems += _check(store, base / item["relpath"], item["md5"])
    return problems


def _check(store: Path, path: Path, checksum: str) -> list[str]:
    stored = object_path(store, checksum)
    if not stored.is_file():
        return [f"{path}: missing from the remote {store} (md5 {checksum})"]
    actual = md5(stored)
    if actual != checksum:
        return [f"{path}: the remote copy {stored} is corrupted (md5 {actual}, expected {checksum})"]
    return []


def main_pull(argv: list[str]) -> int:
    """`flux pull [--remote NAME] [TARGET.dvc ...]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="flux pull", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help=f".dvc files (default: {', '.join(DEFAULT_TARGETS)})")
    parser.add_argument("--remote", help="DVC remote (default: the repository's default remote)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run({"targets": arguments.targets, "remote": arguments.remote})
    except FluxError as error:
        logger.error("%s", error)
        return 2
    return 0


def run(job: dict[str, Any]) -> None:
    """Pull `targets` (default: data and checkpoints); raise naming the files at fault."""
    repo = Path(job.get("repo", "."))
    targets = job.get("targets") or [target for target in DEFAULT_TARGETS if (repo / target).is_file()]
    if not targets:
        raise FluxError(f"{repo}: no .dvc files to pull ({', '.join(DEFAULT_TARGETS)}); `dvc add` and commit them first")
    command = [sys.executable, "-m", "dvc", "pull", *targets] + (["--remote", job["remote"]] if job.get("remote") else [])
    finished = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    if finished.returncode == 0:
        logger.info("pulled %s", ", ".join(targets))
        return
    store = remote_directory(repo, job.get("remote"))
    detail = finished.stderr.strip().splitlines()[-3:]
    if store is None:
        raise FluxError(f"dvc pull {' '.join(targets)} failed (remote not a local directory, no per-file check): {detail}")
    if not store.is_dir():
        raise FluxError(f"the DVC remote {store} is unreachable (no such directory); check `dvc remote list` / .dvc/config")
    problems = [problem for target in targets for problem in diagnose(repo, target, store)]
    listed = "\n  ".join(problems) if problems else "(every remote file checks out; see dvc's message)"
    raise FluxError(f"dvc pull failed; nothing was checked out for the failing targets:\n  {listed}\ndvc said: {detail}")
