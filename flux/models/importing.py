"""`flux import`: an external checkpoint (config/checkpoints.yaml) into this pipeline's checkpoint format.

The official FluxViT-S/B and InternVideo2 single-modality S/B/L key layouts are this package's own (key by key and
shape by shape: benchmarks/official_layouts.py), so importing is unwrapping (`model` / `module` containers, wrapper
prefixes), an optional Kinetics-710 -> target cut of the classifier rows, and a strict load: every key of the
file must land in the named architecture and every key of the architecture must come from the file. What the
registry says but the file cannot (which heads were trained, for which budgets; whose classes the rows are; the
normalisation) goes into the metadata that evaluation reads, with the file's provenance (source, sha256, and
whether the sha256 was checked against a published one).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import torch

from flux.data.download import RemoteFile, download, sha256_of
from flux.data.index import read_manifest
from flux.errors import CheckpointError, ChecksumMismatchError, FluxError
from flux.io import atomic_write_json
from flux.models.checkpoint import (
    LoadReport,
    load_checkpoint,
    read_payload,
    slice_classifier,
    strip_prefixes,
    unwrap,
)
from flux.models.fluxvit import build_model
from flux.models.import_spec import ImportSpec
from flux.models.saved import write_run_checkpoint
from flux.models.sizes import SIZES
from flux.provenance import provenance

logger = logging.getLogger(__name__)

REGISTRY = "config/checkpoints.yaml"
# The official training scripts save their argparse namespace beside the weights (utils.save_model: `args`);
# a namespace only sets attributes, so it may be read. Anything else pickled is refused.
ALLOWED_GLOBALS = (argparse.Namespace,)
CLASSIFIER = re.compile(r"^head(\.\d+)?\.weight$")
IMPORTED_SELECTOR = "official"  # the released models are scored with the released selection, bit for bit


def weights_file(spec: ImportSpec) -> tuple[Path, str, bool]:
    """(path, sha256, verified): the configured local file, else the download of the registry URL. A published
    sha256 that the file does not match refuses it (a downloaded file is moved aside; a user's own file is left
    where it is)."""
    name, expected = spec.name, spec.sha256
    if spec.file:
        path = Path(spec.file)
        if not path.is_file():
            how = spec.local_hint or f"download {spec.url}"
            raise FluxError(f"{spec.file_key}: {path} does not exist; {how}, and put the file there (or fix the path)")
        actual = sha256_of(path)
        if expected and actual != expected:
            raise ChecksumMismatchError(
                f"{path}: sha256 {actual} differs from {expected}, the one {REGISTRY} gives for '{name}'; the file was "
                f"not imported and is left where it is: get the published file (or, if the publisher changed it, fix "
                f"the sha256 in the registry)"
            )
        return path, actual, bool(expected)
    if not spec.url:
        raise FluxError(
            f"checkpoint '{name}' cannot be downloaded: {spec.local_hint}; then name the file in your configuration "
            f"under {spec.file_key}"
        )
    filename = PurePosixPath(urlsplit(spec.url).path).name or "weights.pt"
    result = download(RemoteFile(url=spec.url, path=filename, sha256=expected, registry=REGISTRY), Path(spec.download_dir))
    return result.path, result.sha256, bool(expected)


def read_weights(path: Path, spec: ImportSpec) -> dict[str, torch.Tensor]:
    fix = (
        'if you trust the file, keep only its weights where you may unpickle it: python -c "import torch; '
        f"c = torch.load('{path}', weights_only=False); torch.save(c.get('model', c.get('module', c)), 'weights.pt')\" "
        f"and name weights.pt under {spec.file_key}"
    )
    state = unwrap(read_payload(path, f"checkpoint '{spec.name}'", fix, ALLOWED_GLOBALS), str(path))
    return strip_prefixes(state)


def classifier_rows(state: Mapping[str, torch.Tensor], origin: str) -> int:
    rows = {int(value.shape[0]) for key, value in state.items() if CLASSIFIER.match(key)}
    if not rows:
        raise CheckpointError(f"{origin} has no classifier (head.weight / head.N.weight); only classifiers are imported")
    if len(rows) > 1:
        raise CheckpointError(f"{origin}: its classifiers disagree on the class count ({sorted(rows)})")
    return rows.pop()


def fitting_architectures(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Registry architectures whose width, depth and head layout match a state dict's (an informed guess for
    the error message; the strict load is the real test)."""
    if "patch_embed.proj.weight" not in state:
        return []
    width = int(state["patch_embed.proj.weight"].shape[0])
    depth = len({key.split(".")[1] for key in state if key.startswith("blocks.")})
    heads = 3 if any(key.startswith("clip_projector.2.") for key in state) else 1
    return [name for name, size in SIZES.items() if (size.embed_dim, size.depth, size.output_heads) == (width, depth, heads)]


def check_classes(rows: int, spec: ImportSpec, origin: str) -> list[str]:
    """The label dataset's class names, which must be as many as the classifier's rows."""
    info = read_manifest(Path(spec.label_manifest))[1]
    names = list(info.class_names or [])
    if rows != len(names):
        entry = f"{REGISTRY}: checkpoints.{spec.name}.classifier"
        hint = (
            f"a Kinetics-710 classifier needs a head map: set `head_map: k710` in {entry}"
            if rows == 710 and not spec.head_map
            else f"its rows are another label set's: fix {entry}.role"
        )
        raise CheckpointError(
            f"{origin}: the classifier has {rows} classes, {spec.label_dataset} (the classifier's role) has {len(names)}; {hint}"
        )
    return names


def import_checkpoint(spec: ImportSpec) -> dict[str, Any]:
    """Write the checkpoint and its summary; returns the summary."""
    path, digest, verified = weights_file(spec)
    origin = f"checkpoint '{spec.name}' ({path})"
    state = read_weights(path, spec)
    report = LoadReport()
    if spec.head_map:
        index_map = json.loads(Path(spec.head_map).read_text())[spec.head_map_key]
        slice_classifier(state, index_map, report)
    rows = classifier_rows(state, origin)
    class_names = check_classes(rows, spec, origin)
    model = build_model(spec.model, num_classes=rows, selector=IMPORTED_SELECTOR, **spec.model_options)
    try:
        report = merge_reports(report, load_checkpoint(model, state, strict=True))
    except CheckpointError as error:
        fits = [name for name in fitting_architectures(state) if name != spec.model]
        guess = f"; its width, depth and heads fit {', '.join(fits)}" if fits else ""
        raise CheckpointError(f"{origin} does not fit {spec.model} (checkpoints.{spec.name}.model){guess}: {error}") from None
    source = {"url": spec.url, "file": str(path), "sha256": digest, "verified": verified}
    metadata = {
        "run": spec.name,
        "stage": "import",
        "model": spec.model,
        "model_switches": dict(spec.model_options),
        "num_classes": rows,
        "class_names": class_names,
        "label_dataset": spec.label_dataset,
        "selector": IMPORTED_SELECTOR,
        "trained_heads": spec.trained_heads,
        "preprocessing": dict(spec.preprocessing),
        "source": source,
    }
    write_run_checkpoint(Path(spec.checkpoint), model, metadata)
    summary = {
        "run": spec.name,
        "stage": "import",
        "imported": source,
        "load_report": str(report),
        "trained_heads": spec.trained_heads,
        "provenance": provenance(spec.lineage),
    }
    atomic_write_json(Path(spec.summary), summary)
    if not verified:
        logger.warning("%s: no published sha256 to check it against; recorded as unverified (sha256 %s)", origin, digest)
    return summary


def merge_reports(first: LoadReport, second: LoadReport) -> LoadReport:
    return LoadReport(second.missing, second.unexpected, first.resized + second.resized, first.sliced + second.sliced)


def run(job: dict) -> None:
    spec = ImportSpec.from_dict(job)
    summary = import_checkpoint(spec)
    logger.info("imported %s: %s", spec.name, json.dumps(summary["imported"]))
