"""The typed evaluation spec: what the workflow builds reads back unchanged; a wrong key is named with its path."""

import pytest

from flux.config import load_config
from flux.errors import ConfigError
from flux.eval.spec import EvaluateSpec
from flux.jobs import evaluate_spec
from tests.paths import REPO


def test_every_evaluation_of_the_default_reads_back_unchanged():
    config = load_config([REPO / "config" / "config.yaml"])
    protocols = config.table_document["protocols"]
    specs = [evaluate_spec(config, f"{run}/{protocol}") for run in config.selected_runs for protocol in protocols]
    assert len(specs) > 50 and any(setting.get("merge") for spec in specs for setting in spec["settings"])
    for spec in specs:
        typed = EvaluateSpec.from_dict(spec)
        assert typed.to_dict() == spec and all(role.manifest.endswith(".parquet") for role in typed.roles)


def test_a_wrong_nested_key_is_named_with_its_place():
    config = load_config([REPO / "config" / "config.yaml"])
    spec = evaluate_spec(config, "k400_s/k400_views")
    spec["settings"][0] = {**spec["settings"][0], "budjet": 1}
    with pytest.raises(ConfigError, match=r"settings\[0\]: unknown keys \['budjet'\]"):
        EvaluateSpec.from_dict(spec)
