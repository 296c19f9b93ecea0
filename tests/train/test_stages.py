"""The training-stage registry: one entry per stage the configuration accepts, and a loop that never asks which."""

import ast

import pytest

from flux.config import load_config
from flux.errors import ConfigError
from flux.jobs import train_spec
from flux.train.runs import STAGES
from flux.train.spec import TrainSpec
from flux.train.stages import TRAINING_STAGES
from tests.paths import REPO


def test_every_configurable_stage_has_an_entry():
    assert list(TRAINING_STAGES) == list(STAGES)
    assert all(name == stage.name for name, stage in TRAINING_STAGES.items())


def test_the_trainer_does_not_branch_on_the_stage():
    """Stage-specific data, towers and objectives belong to flux.train.stages: the trainer reads `.stage` only to
    record it."""
    tree = ast.parse((REPO / "flux" / "train" / "trainer.py").read_text(encoding="utf-8"))
    compared = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(part, ast.Attribute) and part.attr == "stage" for part in [node.left, *node.comparators])
    ]
    assert compared == [], f"flux/train/trainer.py compares a stage at lines {compared}"


def test_a_train_spec_round_trips_and_names_what_is_wrong():
    """The spec the workflow builds reads back into the same JSON (so Snakemake's params, and the resume identity,
    are what they were before specs were typed); a hand-made one with a typo fails naming the key."""
    config = load_config([REPO / "config" / "config.yaml"])
    for run in ("teacher", "umt_s", "clip1_s", "k400_s", "ft_flux_single_k400"):
        job = train_spec(config, run)
        assert TrainSpec.from_dict(job).to_dict() == job
    with pytest.raises(ConfigError, match=r"unknown keys \['sed'\], missing keys \['seed'\]"):
        TrainSpec.from_dict({**{key: value for key, value in job.items() if key != "seed"}, "sed": 0})
