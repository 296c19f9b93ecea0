"""Typed job specs: the base of every verb's spec dataclass (flux.train.spec.TrainSpec, flux.eval.spec.EvaluateSpec).

A spec is built by flux.jobs from the configuration and travels as JSON (a Snakemake param, so that a job reruns
exactly when it changes); its job reads it back with `from_dict`, which names an unknown or missing key instead of
failing deep inside the job. Field metadata says what a field is:
- EXECUTION: how a job runs, not what it computes (threads, data-loading processes, how often state is saved);
  left out of a spec's `identity`, so rerunning with another `--cores` resumes instead of restarting;
- WHEN_SET: written only when not None (the configuration sets it for some jobs only; a spec's JSON stays short).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from flux.errors import ConfigError

EXECUTION = "execution"
WHEN_SET = "when_set"

Spec = TypeVar("Spec", bound="JobSpec")


class JobSpec:
    """Mixin for frozen dataclasses: strict reading from, and writing to, JSON-ready dicts. Nested specs are
    declared in `nested` (field -> spec class of its list items)."""

    nested: ClassVar[dict[str, type[JobSpec]]] = {}

    @classmethod
    def from_dict(cls: type[Spec], data: Mapping[str, Any], where: str = "") -> Spec:
        where = where or f"{cls.__name__} job spec"
        specified = dataclasses.fields(cls)  # type: ignore[arg-type]
        known = {spec_field.name for spec_field in specified}
        required = {
            spec_field.name
            for spec_field in specified
            if spec_field.default is dataclasses.MISSING and spec_field.default_factory is dataclasses.MISSING
        }
        unknown, missing = sorted(set(data) - known), sorted(required - set(data))
        if unknown or missing:
            raise ConfigError(
                f"{where}: unknown keys {unknown}, missing keys {missing}; build it with `flux <verb> <target> --config "
                f"...` (flux.jobs), not by hand"
            )
        values = dict(data)
        for name, item in cls.nested.items():
            if name in values:
                values[name] = [item.from_dict(entry, f"{where}: {name}[{index}]") for index, entry in enumerate(values[name])]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        written = {}
        for spec_field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, spec_field.name)
            if value is None and spec_field.metadata.get(WHEN_SET):
                continue
            if spec_field.name in self.nested:
                value = [item.to_dict() for item in value]
            written[spec_field.name] = value
        return written

    def identity(self) -> str:
        """sha256 of what the job computes (its JSON without the execution settings)."""
        execution = {spec_field.name for spec_field in dataclasses.fields(self) if spec_field.metadata.get(EXECUTION)}  # type: ignore[arg-type]
        kept = {key: value for key, value in self.to_dict().items() if key not in execution}
        return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()
