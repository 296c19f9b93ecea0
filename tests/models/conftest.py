"""The tiny FluxViT shared by the model tests (built once per module: a few hundred ms each)."""

import pytest
import torch

from flux.models.fluxvit import build_model
from flux.models.sizes import SIZES

D = SIZES["fluxvit_tiny"].embed_dim  # the tiny model's width
HEADS = SIZES["fluxvit_tiny"].num_heads


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("fluxvit_tiny", num_classes=5).eval()
