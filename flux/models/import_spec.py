"""The job spec of `flux import`, typed: an external checkpoint of config/checkpoints.yaml, imported into this
pipeline's checkpoint format. Built by flux.jobs.import_spec, read by flux.models.importing (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flux.specs import WHEN_SET, JobSpec


@dataclass(frozen=True)
class ImportSpec(JobSpec):
    name: str
    model: str  # an architecture of flux.models.sizes
    model_options: dict[str, Any]
    preprocessing: dict[str, Any]  # mean / std the checkpoint was trained with
    trained_heads: dict[str, Any]  # flux.train.inheritance.heads_record of the registry's heads
    label_dataset: str  # the dataset whose classes the classifier scores
    label_manifest: str
    url: str | None  # where to download the weights (None: a local file only)
    sha256: str | None
    local_hint: str | None  # how to get a file that cannot be downloaded (descriptive: not in the lineage)
    file: str | None  # the user's copy (config `checkpoints.files`)
    file_key: str  # the configuration key that names it, for messages
    download_dir: str
    checkpoint: str  # outputs: final.pt and final.json
    summary: str
    head_map: str | None  # a K710 classifier's head map, cut to the role's classes
    head_map_key: str
    lineage: str | None = field(default=None, metadata={WHEN_SET: True})
