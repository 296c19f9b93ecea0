"""The job specs of the data verbs (`flux synth`, `download`, `kinetics710`, `index`), typed. Built by flux.jobs from
the configuration; each carries its dataset's registry entry (descriptive fields left out, flux.jobs.semantic_entry),
read back as a flux.data.spec.DatasetSpec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flux.data.spec import DatasetSpec, dataset_spec_from_entry
from flux.specs import EXECUTION, WHEN_SET, JobSpec


@dataclass(frozen=True)
class DatasetJob(JobSpec):
    dataset: str
    entry: dict[str, Any]
    dataset_dir: str

    def dataset_spec(self) -> DatasetSpec:
        return dataset_spec_from_entry(self.dataset, self.entry)


@dataclass(frozen=True)
class SynthJob(DatasetJob):
    render_version: int  # flux.data.scenes.RENDER_VERSION: a renderer change regenerates the data
    settings: dict[str, Any]  # seed, count_scale, duration_s, fps (flux.data.spec.SyntheticSettings)
    ready: str


@dataclass(frozen=True)
class DownloadJob(DatasetJob):
    local_path: str | None  # the user's directory for a licensed dataset (config `local_paths`)
    ready: str


@dataclass(frozen=True)
class SourceJob(DatasetJob):
    role: str  # k400, k600 or k700


@dataclass(frozen=True)
class Kinetics710Job(DatasetJob):
    nested = {"sources": SourceJob}

    sources: list[SourceJob]  # in precedence order: which release's row wins a duplicate
    ready: str


@dataclass(frozen=True)
class IndexJob(DatasetJob):
    media_roots: dict[str, str]  # dataset -> media directory (a derived dataset's media are its sources')
    data_dir: str
    probe_cache: str
    reuse_probes: list[str]  # the sources' probe caches
    manifest: str
    report: str
    ready: str | None = None  # the ready marker (its downloads' completeness goes into the report)
    thorough: bool | None = field(default=None, metadata={WHEN_SET: True})  # probe every frame
    threads: int | None = field(default=None, metadata={EXECUTION: True, WHEN_SET: True})  # probe processes
