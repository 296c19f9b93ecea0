"""Fixtures of the evaluation tests."""

import pytest
import torch

from flux.models.fluxvit import build_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("fluxvit_tiny", num_classes=2, output_heads=3)
    path = tmp_path_factory.mktemp("ckpt") / "final.pt"
    metadata = {
        "run": "toy",
        "stage": "finetune",
        "model": "fluxvit_tiny",
        "model_switches": {"output_heads": 3},
        "num_classes": 2,
        "trained_heads": [{"head": 0, "tokens": 48}, {"head": 1, "tokens": 32}, {"head": 2, "tokens": 16}],
    }
    torch.save({"model": model.state_dict(), "metadata": metadata}, path)
    return path
