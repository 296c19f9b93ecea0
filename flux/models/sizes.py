"""The model registry: sizes of FluxViT and the InternVideo2 vision towers (torch-free, so that configs can be
validated without importing torch)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flux.errors import ConfigError

Grid = tuple[int, int, int]

PATCH_SIZE = 14  # every model of the paper: 14 x 14 pixel patches, tubelet 1
HEAD_BUDGETS = (3072, 2048, 1024)  # FluxViT's output heads 0/1/2 serve these token counts (paper units; the engine's pairing)
# the FluxViT modules, switchable one by one (main Table 3 ablations); a checkpoint records them
MODEL_SWITCHES = ("dual_patch_norm", "global_pe", "local_pe", "rope", "output_heads")


@dataclass(frozen=True)
class ModelSize:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    patch_size: int = PATCH_SIZE
    reference_grid: Grid = (8, 16, 16)  # the learnable position embedding's (T, h, w)
    pool_heads: int = 16
    clip_dim: int = 768  # attention-pooling output width
    # the FluxViT modules, switchable one by one for the main Table 3 ablations
    dual_patch_norm: bool = True
    global_pe: bool = True  # the depth-wise projection of the global position embedding (GPE)
    local_pe: bool = True  # the depth-wise embedding of V in attention (LPE)
    rope: bool = False  # 3D rotary embedding of q and k (Table 3 "w/ RoPE"), on top of the absolute embedding
    output_heads: int = 3  # pooling heads / classifiers: 3 for FluxViT (one per budget), 1 for InternVideo2

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)


PLAIN_VIT = {"dual_patch_norm": False, "global_pe": False, "local_pe": False, "output_heads": 1}
SIZES: dict[str, ModelSize] = {
    # embedded default: ~80 training runs on 2 CPU cores in minutes; grid for 8 frames of 112 px
    "fluxvit_tiny": ModelSize(128, 4, 2, reference_grid=(8, 8, 8), pool_heads=2, clip_dim=128),
    # the embedded default's stand-in for FluxViT-B (a little wider, so S and B runs differ)
    "fluxvit_tiny_b": ModelSize(160, 4, 2, reference_grid=(8, 8, 8), pool_heads=2, clip_dim=160),
    "fluxvit_s": ModelSize(384, 12, 6, reference_grid=(24, 18, 18)),
    "fluxvit_b": ModelSize(768, 12, 12, reference_grid=(32, 20, 20)),
    # FluxViT-L is not released (paper Table 10 only): InternVideo2-L's shape with FluxViT-B's grid [I]
    "fluxvit_l": ModelSize(1024, 24, 16, reference_grid=(32, 20, 20)),
    "internvideo2_tiny": ModelSize(192, 4, 3, reference_grid=(8, 8, 8), pool_heads=3, clip_dim=192, **PLAIN_VIT),
    "internvideo2_s": ModelSize(384, 12, 6, **PLAIN_VIT),
    "internvideo2_b": ModelSize(768, 12, 12, **PLAIN_VIT),
    "internvideo2_l": ModelSize(1024, 24, 16, **PLAIN_VIT),
    "internvideo2_1b": ModelSize(1408, 40, 16, mlp_ratio=48 / 11, **PLAIN_VIT),
}


# Token selectors by name (flux.models.selector builds them; listed here for config validation).
SELECTOR_NAMES = (
    "group_dynamic_l2",
    "group_dynamic_l2_4",
    "group_dynamic_l2_2",
    "dynamic_l2",
    "dynamic_l1",
    "tube",
    "random",
    "official",
)


def nearest_head(tokens: int, heads: Mapping[int, int]) -> int:
    """The head (of `heads`: head -> tokens it serves) trained for the budget nearest `tokens`; a tie goes to
    the larger budget (more tokens seen in training)."""
    if not heads:
        raise ConfigError("no trained head to choose from")
    return min(heads, key=lambda head: (abs(heads[head] - tokens), -heads[head], head))
