"""benchmarks/gpu_check.py at CPU size: every part runs through the real trainer and reports; the pure helpers by hand.

The GPU run itself (issue 17) needs a lent GPU machine; this keeps the script working until one is there."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

from flux.models.flops import model_macs
from tests.paths import REPO
from tests.train.conftest import require_deepspeed

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_model_flop_utilisation_and_relative_error_by_hand():
    gpu_check = load_script()
    # 3 x (2 x 10 MACs) x batch 2 = 120 FLOPs per step, in 0.5 s = 240 FLOP/s, of a 480 FLOP/s peak
    assert gpu_check.model_flop_utilisation(10, 2, 0.5, 480.0) == pytest.approx(0.5)
    # |(3, 4.5) - (3, 4)| / |(3, 4)| = 0.5 / 5
    assert gpu_check.relative_l2(torch.tensor([3.0, 4.5]), torch.tensor([3.0, 4.0])) == pytest.approx(0.1)


def test_placement_names_what_is_not_on_the_device():
    gpu_check = load_script()
    module = torch.nn.Linear(2, 2)
    module.register_buffer("stray", torch.zeros(1, device="meta"))
    tensors = gpu_check.module_tensors("model.", module)
    assert sorted(tensors) == ["model.bias", "model.stray", "model.weight"]
    assert gpu_check.misplaced(tensors, "cpu") == ["model.stray (meta)"]


def test_the_check_runs_every_part_at_cpu_size(tmp_path):
    require_deepspeed()
    plan, out = tmp_path / "plan.json", tmp_path / "out"
    for command in (["plan", "--tiny", "--plan-out", str(plan)], ["run", "--plan", str(plan), "--out", str(out)]):
        done = subprocess.run([sys.executable, str(SCRIPT), *command], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    parts = report["parts"]
    assert list(parts) == list(load_script().PARTS)
    assert not [name for name, result in parts.items() if "status" in result], json.dumps(parts, indent=1)[:3000]

    single, multi = parts["train"]["single"], parts["train"]["multi"]
    assert (single["input"], single["budgets"], multi["input"], multi["budgets"]) == ("4x56^2", [64], "8x56^2", [96, 64, 32])
    assert multi["mfu"] == pytest.approx(
        6 * multi["forward_macs_per_clip"] * multi["batch"] / multi["step_s"] / parts["peak"]["flops"]
    )
    patches = 8 * (56 // 14) ** 2  # Flux-Multi: every budget's forward embeds the whole 8 x 56^2 input
    assert multi["forward_macs_per_clip"] == sum(
        model_macs("fluxvit_tiny_b", budget, patches, 10).total for budget in (96, 64, 32)
    )
    assert parts["train"]["profile"] and not single["autocast_bf16"]  # fp32 on CPU, as the trainer decides
    assert parts["precision"]["ok"] and parts["placement"]["ok"] and parts["placement"]["position_cache_entries"] >= 1
    # one process, the same seed and batch: the wrapped step starts from the single-process loss exactly (fp32 on CPU)
    assert parts["ddp"]["wrapper"] == "DistributedDataParallel" and parts["ddp"]["process_group"] == "gloo"
    assert parts["ddp"]["first_loss_vs_single_process"] == 0.0
    assert parts["deepspeed"]["deepspeed_config"]["zero_optimization"] == {"stage": 2}
    assert parts["deepspeed"]["first_loss_vs_single_process"] == 0.0
    assert parts["compile"]["speedup"] > 0 and parts["eval"]["videos_per_s"] > 0
    table = (out / "gpu_check.md").read_text()
    assert all(f"| {name} |" in table for name in parts)


def test_a_batch_that_does_not_fit_is_halved_and_stays_even():
    gpu_check = load_script()
    tried = []

    def attempt(size):
        tried.append(size)
        if size > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return ("ran",)

    assert gpu_check.halving_on_oom(attempt, 12, torch.device("cpu"), step=2) == ("ran", 2) and tried == [12, 6, 2]
    with pytest.raises(RuntimeError, match="shape"):
        gpu_check.halving_on_oom(lambda size: (_ for _ in ()).throw(RuntimeError("shape mismatch")), 8, torch.device("cpu"))
