"""The training-stage registry: one entry per stage the configuration accepts, and a loop that never asks which."""

import ast

from flux.train.runs import STAGES
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
