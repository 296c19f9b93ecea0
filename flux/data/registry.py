"""Dataset-level operations over registry entries: fetching a dataset and locating its files.

A dataset is ready when `<data>/ready/<id>.json` exists: written last, atomically, by `flux synth`,
`flux download` or `flux kinetics710`, and recording what was fetched (with sha256) or generated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from flux import __version__
from flux.data.download import download, sha256_of
from flux.data.job_spec import DownloadJob
from flux.data.spec import DatasetSpec
from flux.errors import ConfigError, DatasetMissingError
from flux.io import atomic_write_json

logger = logging.getLogger(__name__)


FETCH_VERBS = {"synthetic": "synth", "derived": "kinetics710", "fetch": "download"}


def fetch_hint(spec: DatasetSpec) -> str:
    verb = FETCH_VERBS[spec.source_kind]
    return (
        f"run `flux {verb} {spec.id} --config <your config>` (or `snakemake` on any target that needs it), "
        f"or `dvc pull data.dvc` to restore the data directory; if data/ready/{spec.id}.json exists, the "
        f"directory was removed after it was fetched: delete that marker too"
    )


def require_dataset_dir(spec: DatasetSpec, dataset_dir: Path) -> Path:
    if not dataset_dir.exists():
        raise DatasetMissingError(f"dataset directory {dataset_dir} does not exist: {fetch_hint(spec)}")
    return dataset_dir


ANNOTATION_HASH_LIMIT = 64 << 20  # larger annotation files (WebVid's, CC12M's lists) are compared by size only
AS_FETCHED = "as fetched"


def annotation_state(spec: DatasetSpec, dataset_dir: Path) -> dict[str, dict[str, Any] | None]:
    """What indexing reads, per annotation role: size and (up to 64 MB) sha256, None where the file is absent."""
    state: dict[str, dict[str, Any] | None] = {}
    for role, relative in sorted(spec.annotation_files.items()):
        path = dataset_dir / relative
        if not path.is_file():
            state[role] = None
            continue
        size = path.stat().st_size
        state[role] = {"size": size, "sha256": sha256_of(path) if size <= ANNOTATION_HASH_LIMIT else None}
    return state


def annotations_since_fetch(spec: DatasetSpec, dataset_dir: Path, marker: Path) -> str:
    """A param of the index rule: "as fetched" while the annotation files are those the ready marker recorded,
    else a digest of what they are now. Snakemake reruns a job whose params change, so an edited annotation file
    re-indexes its dataset, while an unfetched dataset (no marker yet) and a fetched one give the same value (an
    input-file list would differ between the two and re-index every dataset once after its first fetch)."""
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))["annotations"]
    except (OSError, ValueError, KeyError, TypeError):
        return AS_FETCHED
    current = annotation_state(spec, dataset_dir)
    if current == recorded:
        return AS_FETCHED
    return hashlib.sha256(json.dumps(current, sort_keys=True).encode()).hexdigest()


def write_ready_marker(path: Path, spec: DatasetSpec, dataset_dir: Path, kind: str, details: dict[str, Any]) -> None:
    """Written last: the dataset's fetch is complete. Records its annotation files as fetched (annotations_since_fetch)."""
    atomic_write_json(
        path,
        {
            "dataset": spec.id,
            "kind": kind,
            "flux_version": __version__,
            "created_unix": int(time.time()),
            "annotations": annotation_state(spec, dataset_dir),
            **details,
        },
    )


def link_local(spec: DatasetSpec, dataset_dir: Path, local_path: Path | None) -> dict[str, str] | None:
    """Symlink the user's directory into the dataset directory (`links` = '.' makes it the directory)."""
    if spec.local is None:
        return None
    target = dataset_dir if spec.local.links == "." else dataset_dir / spec.local.links
    if local_path is None:
        if target.exists():
            logger.info("%s: %s already present (restored or linked earlier)", spec.id, target)
            return {"link": str(target), "to": str(target.resolve())}
        raise DatasetMissingError(
            f"{spec.id}: {target} does not exist and `local_paths.{spec.id}` is not set in your config. "
            f"Set it to {spec.local.hint}; or `dvc pull data.dvc`"
        )
    if not local_path.is_dir():
        raise DatasetMissingError(f"local_paths.{spec.id}: {local_path} is not a directory ({spec.local.hint})")
    if target.is_symlink() or target.exists():
        if target.resolve() == local_path.resolve():
            return {"link": str(target), "to": str(local_path.resolve())}
        if not target.is_symlink():
            raise DatasetMissingError(f"{spec.id}: {target} exists and is not a link to {local_path}; move it away, then rerun")
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.link-tmp")
    temporary.unlink(missing_ok=True)
    os.symlink(local_path.resolve(), temporary, target_is_directory=True)
    os.replace(temporary, target)
    return {"link": str(target), "to": str(local_path.resolve())}


def run(job: dict[str, Any]) -> None:
    """`flux download`: fetch every URL file of the dataset, link its local directory, mark it ready."""
    task = DownloadJob.from_dict(job)
    spec = task.dataset_spec()
    dataset_dir = Path(task.dataset_dir)
    if spec.local is not None and spec.local.links == "." and spec.files:
        raise ConfigError(f"datasets.{spec.id}: a `local` source linked as '.' cannot also download `files`")
    local_path = Path(task.local_path) if task.local_path else None
    link = link_local(spec, dataset_dir, local_path)
    files = []
    for remote in spec.files:
        result = download(remote, dataset_dir)
        files.append(
            {
                "url": remote.url,
                "path": remote.path,
                "sha256": result.sha256,
                "verified": remote.sha256 is not None,
                "completeness": result.completeness,  # flux.data.download.COMPLETE_*
                "size": result.size,
                "extracted_to": str(result.extracted_to) if result.extracted_to else None,
            }
        )
        if remote.sha256 is None:
            logger.warning(
                "%s: %s has no published checksum; recorded sha256 %s in the ready marker", spec.id, remote.path, result.sha256
            )
    write_ready_marker(Path(task.ready), spec, dataset_dir, "fetch", {"files": files, "local": link})
