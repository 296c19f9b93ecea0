"""`flux pull`: `dvc pull` of data and checkpoints, with a diagnosis that names every file at fault.

DVC refuses to check out a target whose remote copy is missing or fails its hash (the remote is configured
with `verify = true`), so nothing in the workspace is overwritten; but it reports only the target ("Checkout
failed for following targets: data"), and `dvc status --cloud` trusts a pushed directory's listing (it calls every
file of it present). On failure this reads the target's listing from the remote through DVC's own object store,
so any remote kind DVC supports (a directory, s3://, ssh://, ...), and names each file whose object is absent;
on a remote in the local file system it also checks each object's md5 (elsewhere that would download everything).
"""

from __future__ import annotations

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


class RemoteStore:
    """A DVC remote's content-addressed object store (DVC 3: files/md5/<2 hex>/<rest>, `.dir` for listings)."""

    def __init__(self, repo: Path, remote: str | None) -> None:
        from dvc.exceptions import DvcException
        from dvc.repo import Repo

        try:
            self.odb = Repo(str(repo)).cloud.get_remote_odb(remote)
        except DvcException as error:
            raise FluxError(
                f"the DVC remote {remote or '(default)'} cannot be opened: {error}; check `dvc remote list`"
            ) from None
        self.root = str(self.odb.path).removesuffix("/files/md5")
        self.local = self.odb.fs.protocol == "local"

    def unreachable(self) -> str | None:
        """Why the remote's object store cannot be read (None: it can)."""
        try:
            return None if self.odb.fs.exists(self.odb.path) else f"{self.odb.path} does not exist"
        except Exception as error:  # noqa: BLE001 (s3, ssh, ... each raise their own; the message is what matters)
            return f"{type(error).__name__}: {error}"

    def has(self, checksum: str) -> bool:
        return bool(self.odb.exists(checksum))

    def read_json(self, checksum: str) -> Any:
        with self.odb.fs.open(self.odb.oid_to_path(checksum), "r") as handle:
            return json.load(handle)

    def corrupted(self, checksum: str) -> str | None:
        """The md5 of a local object when it differs from its name (None: intact, or not checked off the local disk)."""
        if not self.local:
            return None
        actual = md5(Path(self.odb.oid_to_path(checksum)))
        return actual if actual != checksum else None


def diagnose(repo: Path, target: str, store: RemoteStore) -> list[str]:
    """Files of a `.dvc` target whose remote copy is absent or corrupted, as messages."""
    entry = yaml.safe_load((repo / target).read_text(encoding="utf-8"))
    problems = []
    for out in entry.get("outs", []):
        checksum, path = out["md5"], out["path"]
        base = Path(target).parent / path
        if not checksum.endswith(".dir"):
            problems += _check(store, base, checksum)
            continue
        if not store.has(checksum):
            problems.append(f"{base}/: the directory listing {checksum} is not in the remote {store.root}; `dvc push` it first")
            continue
        for item in store.read_json(checksum):
            problems += _check(store, base / item["relpath"], item["md5"])
    return problems


def _check(store: RemoteStore, path: Path, checksum: str) -> list[str]:
    if not store.has(checksum):
        return [f"{path}: missing from the remote {store.root} (md5 {checksum})"]
    actual = store.corrupted(checksum)
    if actual is not None:
        return [f"{path}: the remote copy {store.odb.oid_to_path(checksum)} is corrupted (md5 {actual}, expected {checksum})"]
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
    detail = finished.stderr.strip().splitlines()[-3:]
    store = RemoteStore(repo, job.get("remote"))
    why = store.unreachable()
    if why is not None:
        raise FluxError(
            f"the DVC remote {store.root} is unreachable ({why}); check `dvc remote list` / .dvc/config, and its credentials"
        )
    problems = [problem for target in targets for problem in diagnose(repo, target, store)]
    listed = "\n  ".join(problems) if problems else "(every remote file checks out; see dvc's message)"
    raise FluxError(f"dvc pull failed; nothing was checked out for the failing targets:\n  {listed}\ndvc said: {detail}")
