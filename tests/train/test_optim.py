"""The optimiser the trainer builds: layer-wise lr decay over the model's blocks, no decay where the paper's
recipe has none, the objective's modules with the heads; the schedule's warm-up and cosine by hand."""

import math

import pytest
import torch
from torch import nn

from flux.models.fluxvit import build_model
from flux.train.optim import OptimSettings, build_optimizer, build_scheduler
from flux.train.trainer import TrainedModules


def groups_by_parameter(modules: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    names = {id(parameter): name for name, parameter in modules.named_parameters()}
    return {names[id(parameter)]: group for group in optimizer.param_groups for parameter in group["params"]}


def test_layer_decay_and_no_decay_reach_through_the_trained_modules():
    model = build_model("fluxvit_tiny", num_classes=5)  # 4 blocks: stem = layer 0, blocks 1-4, heads 5
    modules = TrainedModules({"model": model, "extra": nn.ModuleDict({"scale": nn.Linear(2, 2)})})
    optimizer = build_optimizer(modules, OptimSettings(lr=1e-3, weight_decay=0.05, layer_decay=0.5))
    groups = groups_by_parameter(modules, optimizer)
    scale = {name: group["lr_scale"] for name, group in groups.items()}
    assert scale["model.patch_embed.proj.weight"] == 0.5**5 and scale["model.pos_embed"] == 0.5**5
    assert [scale[f"model.blocks.{i}.attn.qkv.weight"] for i in range(4)] == [0.5**4, 0.5**3, 0.5**2, 0.5**1]
    assert scale["model.head.0.weight"] == 1.0 and scale["extra.scale.weight"] == 1.0
    assert scale["model.gpe_proj.depthwise_conv.weight"] == 1.0  # the official last group, not the stem
    decay = {name: group["weight_decay"] for name, group in groups.items()}
    assert decay["model.pos_embed"] == 0.0 and decay["model.cls_token"] == 0.0  # 3-D, excluded by name
    assert decay["model.blocks.0.norm1.weight"] == 0.0 and decay["model.blocks.0.attn.proj.bias"] == 0.0
    assert decay["model.blocks.0.attn.qkv.weight"] == 0.05 and decay["extra.scale.weight"] == 0.05


def test_schedule_warmup_then_cosine_by_hand():
    layer = nn.Linear(2, 2)
    settings = OptimSettings(lr=1.0, weight_decay=0.0, epochs=2, warmup_epochs=0.5, min_lr=0.0, warmup_lr=0.0)
    optimizer = build_optimizer(layer, settings)
    scheduler = build_scheduler(optimizer, settings, steps_per_epoch=4)  # 8 steps, 2 of warm-up, 6 of cosine
    rates = []
    for step in range(8):
        scheduler.step_update(step)
        rates.append(optimizer.param_groups[0]["lr"])
    expected = [0.0, 0.5] + [0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)]
    assert rates == pytest.approx(expected)
