"""Checkpoints: official key layouts load, grids resize, K710 heads slice, nothing is loaded silently wrong."""

import pickle

import pytest
import torch

from flux.errors import CheckpointError
from flux.models.checkpoint import load_checkpoint, read_state_dict
from flux.models.fluxvit import build_model
from flux.models.posembed import resize_grid
from flux.models.sizes import SIZES

D = SIZES["fluxvit_tiny"].embed_dim  # the tiny model's width
HEADS = SIZES["fluxvit_tiny"].num_heads


def official_fluxvit_keys(depth: int) -> list[str]:
    """The key list of the released FluxViT checkpoints (OpenGVLab/FluxViT models/fluxvit.py), written out."""
    keys = ["cls_token", "pos_embed", "patch_embed.norm_before.weight", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    keys += [
        "patch_embed.norm.weight",
        "gpe_proj.depthwise_conv.weight",
        "gpe_proj.depthwise_conv.bias",
        "fc_norm.weight",
        "fc_norm.bias",
    ]
    for i in range(depth):
        keys += [f"blocks.{i}.{name}" for name in (
            "norm1.weight", "attn.qkv.weight", "attn.proj.weight", "attn.proj.bias", "attn.q_norm.weight", "attn.k_norm.weight",
            "attn.lpe.depthwise_conv.weight", "attn.lpe.depthwise_conv.bias", "ls1.gamma", "norm2.weight",
            "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma",
        )]  # fmt: skip
    for i in range(3):
        keys += [f"clip_projector.{i}.{name}" for name in (
            "norm1_q.weight", "norm1_q.bias", "norm1_k.weight", "norm1_k.bias", "norm1_v.weight", "norm1_v.bias",
            "cross_attn.q.weight", "cross_attn.k.weight", "cross_attn.v.weight", "cross_attn.q_bias", "cross_attn.k_bias",
            "cross_attn.v_bias", "cross_attn.proj.weight", "cross_attn.proj.bias",
        )]  # fmt: skip
        keys += [f"head.{i}.weight", f"head.{i}.bias"]
    for i in range(2):
        keys += [f"final_clip_decoder_for_projs.{i}.{name}" for name in ("head.weight", "head.bias", "norm.weight", "norm.bias")]
    return keys


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("fluxvit_tiny", num_classes=6).eval()


def clip():
    return torch.randn(1, 3, 4, 56, 56, generator=torch.Generator().manual_seed(3))


def test_official_layout_loads_with_nothing_missing(model):
    shapes = {key: value.shape for key, value in model.state_dict().items()}
    official = official_fluxvit_keys(len(model.blocks))
    assert sorted(official) == sorted(shapes)  # our module names are the official ones
    generator = torch.Generator().manual_seed(1)
    state = {f"module.{key}": torch.randn(shapes[key], generator=generator) for key in official}
    fresh = build_model("fluxvit_tiny", num_classes=6)
    report = load_checkpoint(fresh, {"model": state}, strict=True)
    assert str(report) == "all keys matched"
    assert torch.equal(fresh.head[1].weight, state["module.head.1.weight"])


def test_position_grid_is_resized(model):
    state = {key: value.clone() for key, value in model.state_dict().items()}
    source = torch.randn(D, 4, 6, 6)
    state["pos_embed"] = torch.cat([torch.zeros(1, 1, D), source.permute(1, 2, 3, 0).reshape(1, -1, D)], dim=1)
    fresh = build_model("fluxvit_tiny", num_classes=6)
    report = load_checkpoint(fresh, state, strict=True, grid=(4, 6, 6))
    assert report.resized == ["pos_embed (4, 6, 6) -> (8, 8, 8)"]
    expected = resize_grid(source, (8, 8, 8)).permute(1, 2, 3, 0).reshape(-1, D)
    assert torch.allclose(fresh.pos_embed[0, 1:], expected, atol=1e-6)
    # without the grid, the model's frame count is assumed: 144 positions are not 8 square frames
    with pytest.raises(CheckpointError, match="checkpoint_grid"):
        load_checkpoint(build_model("fluxvit_tiny", num_classes=6), state)


def test_k710_head_is_sliced_with_the_index_map(model):
    state = {key: value.clone() for key, value in model.state_dict().items()}
    k710 = build_model("fluxvit_tiny", num_classes=10).state_dict()
    for i in range(3):
        state[f"head.{i}.weight"], state[f"head.{i}.bias"] = k710[f"head.{i}.weight"], k710[f"head.{i}.bias"]
    index_map = [9, 0, 3, 4, 5, 7]  # the K710 index of each of the 6 target classes
    fresh = build_model("fluxvit_tiny", num_classes=6)
    report = load_checkpoint(fresh, state, strict=True, class_index_map=index_map)
    assert len(report.sliced) == 6
    assert torch.equal(fresh.head[2].weight, k710["head.2.weight"][index_map])
    assert torch.equal(fresh.head[0].bias, k710["head.0.bias"][index_map])


def test_multimodal_checkpoint_keeps_the_vision_tower(model):
    state = {f"vision_encoder.{key}": value for key, value in model.state_dict().items()}
    state["text_encoder.layer.0.weight"] = torch.zeros(2)
    state["vision_encoder.clip_pos_embed"] = torch.zeros(1, 2, 3)
    report = load_checkpoint(build_model("fluxvit_tiny", num_classes=6), state)
    assert report.missing == [] and report.unexpected == ["clip_pos_embed"]
    with pytest.raises(CheckpointError, match="clip_pos_embed"):
        load_checkpoint(build_model("fluxvit_tiny", num_classes=6), state, strict=True)


def test_shape_conflicts_and_missing_keys(model):
    state = dict(model.state_dict())
    state["head.0.weight"] = torch.zeros(3, D)
    with pytest.raises(CheckpointError, match=rf"head.0.weight \(3, {D}\) vs model \(6, {D}\)"):
        load_checkpoint(build_model("fluxvit_tiny", num_classes=6), state)
    partial = {key: value for key, value in model.state_dict().items() if not key.startswith("head.")}
    report = load_checkpoint(build_model("fluxvit_tiny", num_classes=6), partial)
    assert sorted(report.missing) == sorted(f"head.{i}.{p}" for i in range(3) for p in ("weight", "bias"))


class NotWeights:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_only_weights_are_unpickled(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"model": NotWeights()}, handle, protocol=2)
    with pytest.raises(CheckpointError, match="not a weights-only checkpoint: it holds a pickled print, which could run code"):
        read_state_dict(path)
    with pytest.raises(CheckpointError, match="dvc pull"):
        read_state_dict(tmp_path / "absent.pt")


def test_equal_payloads_give_byte_identical_files(tmp_path):
    """The zip records do not carry the random temporary name of the atomic write (stable DVC hashes)."""
    from flux.models.checkpoint import write_payload

    payload = {"model": {"w": torch.arange(6.0)}, "metadata": {"run": "x"}}
    write_payload(payload, tmp_path / "a" / "final.pt")
    write_payload(payload, tmp_path / "b" / "final.pt")
    assert (tmp_path / "a" / "final.pt").read_bytes() == (tmp_path / "b" / "final.pt").read_bytes()
    assert torch.load(tmp_path / "a" / "final.pt", weights_only=True)["metadata"] == {"run": "x"}
