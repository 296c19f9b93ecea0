"""GPU check (issue 17): the paths a cluster uses, measured on one GPU in one run of at most about 6 minutes.

Two steps, because the GPU machine has no Snakemake (the configuration loader validates with it):

    python benchmarks/gpu_check.py plan                     # here: resolve config/paper.yaml -> gpu_check_plan.json
    PYTHONPATH=. python3 benchmarks/gpu_check.py run --plan gpu_check_plan.json --out "$OUT"     # on the GPU
    python benchmarks/gpu_check.py plan --tiny --plan-out P && python benchmarks/gpu_check.py run --plan P --out D
                                                            # the same at CPU size (tests/test_gpu_check.py)

DeepSpeed is not installed on the lent GPU machines: `bash benchmarks/gpu_check_wheels.sh` puts it (and the
packages it needs that are missing there) in .whl/, to carry and install as ../.library/device/README.md says.

What `run` measures, part by part (each part's result is written to gpu_check.json as soon as it ends, so a run cut
short keeps what it finished; gpu_check.md is the readable table):
  peak       a large matrix product (bf16 on a GPU, fp32 on CPU): the device's dense FLOP/s, the MFU denominator
  train      the trainer's own step (flux.train.trainer.Trainer.train_step: autocast, the objective, backward,
             gradient norms, optimiser, schedule) on the plan's run, plain PyTorch backend: FluxViT-B Flux-Single at
             8 x 224^2 / 2048 tokens, and Flux-Multi 3072/2048/1024 on one 16 x 224^2 batch. Step time, tokens/s,
             peak memory, and model FLOP utilisation: 3 x (2 x the MACs of flux.models.flops per view, summed over
             the budgets) x batch / step time / peak. A batch that does not fit is halved and tried again.
  precision  fp32 against bf16 autocast on one batch, same weights and random draws: the Flux-Single loss (train
             mode) within 1% and the eval-mode logits within 5% (relative L2), top-1 agreement reported
  placement  every parameter, buffer and cached position embedding on the device after a train step and an eval
             forward; host-device synchronisations (torch.cuda.set_sync_debug_mode) in one trainer step and in
             the objective's forward, backward and optimiser step alone: the trainer's step reads its scalars in
             two transfers (loss and components, gradient norms), the rest should read none
  eval       FluxViT-S under the released protocol (benchmarks/released_evaluation.py: 12 views of 8 x 224^2 at
             2048 tokens), forward only, bf16 on a GPU: videos/s, and the model's share of a pass over the 19,906
             K400 validation videos (decoding not included)
  ddp        `torchrun --nproc_per_node 1`: the trainer's step under DistributedDataParallel (NCCL on a GPU, gloo
             on CPU); its first loss must equal the single-process first loss (same seed, same batch)
  deepspeed  the same under the trainer's DeepSpeed backend, ZeRO-2, bf16 on a GPU; or why it could not run
  compile    torch.compile of the trained modules (inductor; the CPU test uses the eager backend): compile time
             and the speed-up of the step over eager, or the error
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from released_evaluation import BUDGET, FRAMES, HEAD, K400_VAL_VIDEOS, SIZE, VIEWS  # noqa: E402 (the released protocol)

PARTS = ("peak", "train", "precision", "placement", "eval", "ddp", "deepspeed", "compile")
LOSS_TOLERANCE = 1e-2  # relative, Flux-Single loss, bf16 autocast vs fp32
LOGIT_TOLERANCE = 5e-2  # relative L2 of eval-mode logits, bf16 autocast vs fp32
TRAIN_BATCH_STEP = 2  # mixup pairs the clips of a batch (flux.train.optim.VideoMixup): training batches are even
EXPECTED_TRAINER_SYNCS = 2  # flux.train.trainer.host_scalars and flux.train.optim.grad_norms

# Sizes: the paper's, and the CPU test's (the embedded default's FluxViT-B stand-in at 56 px).
PROFILES = {
    "paper": {
        "config": "config/paper.yaml",
        "run": "k710_b",  # FluxViT-B, Flux-Multi with alignment, 3072/2048/1024: the released fine-tuning recipe
        "classes": 710,
        "resolution": SIZE,
        "batch": {"single": 32, "multi": 12},
        "precision_batch": 4,
        "eval": {
            "model": "fluxvit_s",
            "frames": FRAMES,
            "tokens": BUDGET,
            "head": HEAD,
            "views": VIEWS,
            "videos_per_batch": 8,
            "classes": 400,
        },
        "warmup": 2,
        "repeats": 5,
        "matmul": 8192,
        "compile_backend": "inductor",
        "time_budget_s": 330,
    },
    "tiny": {
        "config": "config/config.yaml",
        "run": "k710_b",
        "classes": 10,
        "resolution": 56,
        "batch": {"single": 2, "multi": 2},
        "precision_batch": 2,
        "eval": {
            "model": "fluxvit_tiny",
            "frames": 4,
            "tokens": 64,
            "head": HEAD,
            "views": VIEWS,
            "videos_per_batch": 1,
            "classes": 10,
        },
        "warmup": 1,
        "repeats": 2,
        "matmul": 256,
        "compile_backend": "eager",
        "time_budget_s": 600,
    },
}


# ------------------------------------------------------------------------------------------- plan (needs the config)
def make_plan(profile: str, config_path: str | None, run_id: str | None) -> dict:
    """The run and job spec resolved from a configuration, with the check's sizes: everything `run` needs."""
    from flux import jobs
    from flux.config import load_config
    from flux.train.runs import run_to_dict

    settings = dict(PROFILES[profile])
    settings["config"] = config_path or settings["config"]
    settings["run"] = run_id or settings["run"]
    config = load_config([ROOT / settings["config"]])
    run = config.runs[settings["run"]]
    if run.stage != "finetune" or run.method != "multi" or run.input.method != "flexible":
        raise SystemExit(f"{settings['run']}: the check needs a flexible-input Flux-Multi fine-tuning run")
    return {"profile": profile, **settings, "run_dict": run_to_dict(run), "spec": jobs.train_spec(config, settings["run"])}


# ------------------------------------------------------------------------------------------- pure helpers (tested)
def model_flop_utilisation(forward_macs: int, batch: int, step_s: float, peak_flops: float) -> float:
    """Training FLOPs (3 x the forward's 2 x MACs, per clip, times the batch) per second, over the device's peak."""
    return 3 * 2 * forward_macs * batch / step_s / peak_flops


def relative_l2(value, reference) -> float:
    return float((value.float() - reference.float()).norm() / reference.float().norm())


def misplaced(tensors: dict[str, Any], device_type: str) -> list[str]:
    """Names of the tensors that are not on a device of `device_type`."""
    return [f"{name} ({tensor.device})" for name, tensor in tensors.items() if tensor.device.type != device_type]


def module_tensors(prefix: str, module) -> dict[str, Any]:
    named = {f"{prefix}{name}": tensor for name, tensor in module.named_parameters()}
    named.update({f"{prefix}{name}": tensor for name, tensor in module.named_buffers()})
    return named


# ------------------------------------------------------------------------------------------- set-up from a plan
class Check:
    """The plan's run and spec, the device, and fresh trainers for a setting, built the same way in every process."""

    def __init__(self, plan: dict) -> None:
        import torch

        from flux.train.runs import run_from_dict
        from flux.train.spec import TrainSpec

        self.plan = plan
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.run = dataclasses.replace(run_from_dict(plan["run_dict"]), parent=None)  # random weights: no parent to load
        self.state_dir = tempfile.mkdtemp(prefix="gpu_check_")
        self.spec = dataclasses.replace(TrainSpec.from_dict(plan["spec"]), backend="torch", state_dir=self.state_dir)
        self.patches_per_frame = (plan["resolution"] // self.run.input.spec.patch_size) ** 2

    def setting(self, name: str):
        """(run, frames) of a setting: `single` keeps the middle budget of a matching input (8 x 224^2 at 2048),
        `multi` is the run itself at the top of its token range (16 x 224^2 for 3072/2048/1024)."""
        run = self.run
        if name == "single":
            budget = run.budgets[1]
            run = dataclasses.replace(run, method="single", align=False, budgets=(budget,), heads=(run.heads[1],))
            return run, budget // self.patches_per_frame
        return run, run.input.spec.token_max // self.patches_per_frame

    def batch(self, frames: int, size: int, seed: int) -> dict:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        resolution = self.plan["resolution"]
        video = torch.randn(size, 3, frames, resolution, resolution, generator=generator)
        labels = torch.randint(self.plan["classes"], (size,), generator=generator)
        return {"video": video.to(self.device), "label": labels.to(self.device)}

    def trainer(self, run, spec=None, seed: int = 0):
        """A real Trainer on random weights. The check feeds its batches itself; the trainer reads only the
        sampler's length (steps per epoch, for the schedule)."""
        from flux.train.distributed import topology_from_env
        from flux.train.objectives import Classification
        from flux.train.stages import Source, build_student
        from flux.train.trainer import Trainer, seed_everything

        seed_everything(seed)
        facts = {"num_classes": self.plan["classes"]}
        model = build_student(run, self.spec, facts, None, None)
        source = Source("random", None, range(1000))
        return Trainer(run, spec or self.spec, model, Classification(run, facts["num_classes"]), [source], topology_from_env())

    def forward_macs(self, run, frames: int) -> int:
        from flux.models.flops import model_macs

        patches = frames * self.patches_per_frame
        return sum(model_macs(run.model, min(budget, patches), patches, self.plan["classes"]).total for budget in run.budgets)


def failure(error: BaseException) -> dict:
    return {"status": "failed", "error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]}


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, device, warmup: int, repeats: int) -> tuple[list[float], list[Any]]:
    """Seconds of each timed call (after `warmup` untimed ones) and every call's return value."""
    returned, seconds = [], []
    for index in range(warmup + repeats):
        synchronize(device)
        started = time.perf_counter()
        returned.append(step())
        synchronize(device)
        if index >= warmup:
            seconds.append(time.perf_counter() - started)
    return seconds, returned


@contextlib.contextmanager
def counted_syncs(device):
    """Host-device synchronisations inside the block, as 'file:line' of the Python code that caused them (CUDA
    only: torch.cuda.set_sync_debug_mode); None on CPU, where there is nothing to count."""
    import torch

    if device.type != "cuda":
        yield None
        return
    sites: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield sites
        finally:
            torch.cuda.set_sync_debug_mode("default")
    sites.extend(f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchroniz" in str(w.message))


def out_of_memory(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def free_memory(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def halving_on_oom(attempt, size: int, device, step: int = 1) -> tuple:
    """attempt(size)'s results and the size that fitted: a batch that runs out of device memory is halved,
    staying a multiple of `step`."""
    while True:
        free_memory(device)
        try:
            return *attempt(size), size
        except RuntimeError as error:
            if not out_of_memory(error) or size <= step:
                raise
            size = max(step, size // 2 // step * step)


def peak_memory_gib(device) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


# ------------------------------------------------------------------------------------------- parts
def part_peak(check: Check, report: dict) -> dict:
    import torch

    size = check.plan["matmul"]
    dtype = torch.bfloat16 if check.device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=check.device, dtype=dtype)
    b = torch.randn(size, size, device=check.device, dtype=dtype)
    seconds, _ = timed(lambda: a @ b, check.device, warmup=3, repeats=10)
    flops = 2 * size**3 / statistics.median(seconds)
    return {"dtype": str(dtype).removeprefix("torch."), "size": size, "flops": flops}


def train_setting(check: Check, name: str, batch_size: int, peak: float | None) -> dict:
    run, frames = check.setting(name)

    def attempt(size: int):
        trainer = check.trainer(run)
        batch = check.batch(frames, size, seed=1)
        return trainer, *timed(lambda: trainer.train_step(batch), check.device, check.plan["warmup"], check.plan["repeats"])

    trainer, seconds, records, batch_size = halving_on_oom(attempt, batch_size, check.device, step=TRAIN_BATCH_STEP)
    step = statistics.median(seconds)
    macs = check.forward_macs(run, frames)
    result = {
        "input": f"{frames}x{check.plan['resolution']}^2",
        "budgets": list(run.budgets),
        "batch": batch_size,
        "step_s": step,
        "tokens_per_s": round(records[-1]["tokens"] / step),
        "peak_memory_gib": peak_memory_gib(check.device),
        "forward_macs_per_clip": macs,
        "first_loss": records[0]["loss"],
        "autocast_bf16": trainer.autocast,
    }
    if peak:
        result["mfu"] = model_flop_utilisation(macs, batch_size, step, peak)
    return result


def part_train(check: Check, report: dict) -> dict:
    peak = report["parts"].get("peak", {}).get("flops")
    results = {name: train_setting(check, name, check.plan["batch"][name], peak) for name in ("single", "multi")}
    results["profile"] = profile_step(check)
    return results


def profile_step(check: Check) -> list[dict]:
    """Where a Flux-Multi step's time goes: the ten operators with the most self time on the device (CPU here)."""
    from torch.profiler import ProfilerActivity, profile

    run, frames = check.setting("multi")
    trainer = check.trainer(run)
    batch = check.batch(frames, TRAIN_BATCH_STEP, seed=1)
    trainer.train_step(batch)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if check.device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        trainer.train_step(batch)
        synchronize(check.device)
    on_device = check.device.type == "cuda"
    key = "self_device_time_total" if on_device else "self_cpu_time_total"
    events = sorted(profiler.key_averages(), key=lambda event: getattr(event, key, 0), reverse=True)[:10]
    total = sum(getattr(event, key, 0) for event in profiler.key_averages())
    return [
        {"op": event.key, "self_ms": round(getattr(event, key, 0) / 1e3, 2), "share": round(getattr(event, key, 0) / total, 3)}
        for event in events
    ]


def part_precision(check: Check, report: dict) -> dict:
    import torch

    run, frames = check.setting("single")
    trainer = check.trainer(run)
    model, objective = trainer.model, trainer.objective
    batch = check.batch(frames, check.plan["precision_batch"], seed=2)

    def loss(bf16: bool) -> float:
        torch.manual_seed(3)  # the same drop-path and mixup draws for both
        import numpy as np

        np.random.seed(3)
        model.train()
        with torch.no_grad(), torch.autocast(check.device.type, dtype=torch.bfloat16, enabled=bf16):
            return float(objective(model, batch)[0])

    def logits(bf16: bool):
        model.eval()
        with torch.no_grad(), torch.autocast(check.device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(batch["video"], run.budgets[0], run.heads[0]).float()

    loss32, loss16 = loss(False), loss(True)
    logits32, logits16 = logits(False), logits(True)
    loss_error = abs(loss16 - loss32) / abs(loss32)
    logit_error = relative_l2(logits16, logits32)
    return {
        "loss_fp32": loss32,
        "loss_bf16": loss16,
        "loss_relative_error": loss_error,
        "logits_relative_l2": logit_error,
        "top1_agreement": float((logits16.argmax(-1) == logits32.argmax(-1)).float().mean()),
        "tolerances": {"loss": LOSS_TOLERANCE, "logits": LOGIT_TOLERANCE},
        "ok": loss_error <= LOSS_TOLERANCE and logit_error <= LOGIT_TOLERANCE,
    }


def part_placement(check: Check, report: dict) -> dict:
    import torch

    run, frames = check.setting("multi")
    trainer = check.trainer(run)
    batch = check.batch(frames, TRAIN_BATCH_STEP, seed=4)
    trainer.train_step(batch)
    with counted_syncs(check.device) as trainer_syncs:
        trainer.train_step(batch)
    with counted_syncs(check.device) as model_syncs:
        with torch.autocast(check.device.type, dtype=torch.bfloat16, enabled=trainer.autocast):
            loss, _ = trainer.wrapped(batch)
        loss.backward()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
    model = trainer.model.eval()
    with torch.no_grad():
        model(batch["video"], run.budgets[1], run.heads[1])
    tensors = module_tensors("", trainer.modules)
    tensors.update({f"position_cache[{index}]": value for index, value in enumerate(model._position_cache._entries.values())})
    wrong = misplaced(tensors, check.device.type)
    result = {
        "tensors_checked": len(tensors),
        "position_cache_entries": len(model._position_cache._entries),
        "misplaced": wrong[:20],
        "ok": not wrong and bool(model._position_cache._entries),
    }
    if trainer_syncs is None:
        result["syncs"] = "not applicable: no CUDA device"
    else:
        result["trainer_step_syncs"] = trainer_syncs
        result["model_step_syncs"] = model_syncs
        result["ok"] = result["ok"] and len(trainer_syncs) <= EXPECTED_TRAINER_SYNCS and not model_syncs
    return result


def part_eval(check: Check, report: dict) -> dict:
    import torch

    from flux.models.fluxvit import build_model

    settings = check.plan["eval"]
    resolution = check.plan["resolution"]
    videos = settings["videos_per_batch"]
    torch.manual_seed(0)
    model = build_model(settings["model"], num_classes=settings["classes"]).to(check.device).eval()
    bf16 = check.device.type == "cuda"

    def attempt(size: int):
        clips = torch.randn(size * settings["views"], 3, settings["frames"], resolution, resolution, device=check.device)

        def forward() -> None:
            with torch.inference_mode(), torch.autocast(check.device.type, dtype=torch.bfloat16, enabled=bf16):
                model(clips, settings["tokens"])

        return timed(forward, check.device, check.plan["warmup"], check.plan["repeats"])

    seconds, _, videos = halving_on_oom(attempt, videos, check.device)
    per_second = videos / statistics.median(seconds)
    return {
        "model": settings["model"],
        "input": f"{settings['frames']}x{resolution}^2, {settings['tokens']} tokens, {settings['views']} views",
        "videos_per_forward": videos,
        "videos_per_s": round(per_second, 2),
        "peak_memory_gib": peak_memory_gib(check.device),
        "k400_validation_minutes": round(K400_VAL_VIDEOS / per_second / 60, 1),
    }


def part_distributed(kind: str, check: Check, report: dict, plan_path: Path, remaining: float) -> dict:
    """A one-process torchrun of this script's worker (a fresh process: its own process group and CUDA context)."""
    with tempfile.TemporaryDirectory() as directory:
        result_path = Path(directory) / "result.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", __file__]
        command += ["worker", kind, "--plan", str(plan_path), "--result", str(result_path)]
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(command, capture_output=True, text=True, timeout=max(30, remaining), env=environment)
        if not result_path.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
            raise RuntimeError(f"torchrun exited {done.returncode} without a result:\n" + "\n".join(tail))
        result = json.loads(result_path.read_text())
    single = report["parts"].get("train", {}).get("single", {})
    if "first_loss" in single and "first_loss" in result and single["batch"] == result["batch"]:
        result["first_loss_vs_single_process"] = result["first_loss"] - single["first_loss"]
    return result


def worker(kind: str, plan: dict, result_path: Path) -> None:
    """Runs under torchrun: the Flux-Single step under DDP (the plain backend) or the DeepSpeed backend."""
    import torch

    from flux.train.distributed import process_group_backend
    from flux.train.trainer import wrap_distributed

    check = Check(plan)
    run, frames = check.setting("single")
    batch_size = plan["batch"]["single"]
    result: dict[str, Any] = {"kind": kind, "batch": batch_size}
    try:
        if kind == "ddp":
            backend = process_group_backend(check.device)
            torch.distributed.init_process_group(backend, rank=0, world_size=1)  # a world of one: the trainer would not wrap
            trainer = check.trainer(run)
            trainer.wrapped = wrap_distributed(trainer.modules, check.device, distributed=True)
            result["process_group"] = backend
        else:
            spec = dataclasses.replace(check.spec, backend="deepspeed", zero_stage=2)
            trainer = check.trainer(run, spec)
            result["deepspeed_config"] = trainer.backend.config
        result["wrapper"] = type(trainer.wrapped).__name__
        batch = check.batch(frames, batch_size, seed=1)
        with counted_syncs(check.device) as syncs:
            first = trainer.train_step(batch)
        seconds, _ = timed(lambda: trainer.train_step(batch), check.device, plan["warmup"], plan["repeats"])
        result.update(first_loss=first["loss"], step_s=round(statistics.median(seconds), 4), syncs_in_first_step=syncs)
        result["peak_memory_gib"] = peak_memory_gib(check.device)
    except Exception as error:  # noqa: BLE001 (the parent reports why)
        result.update(failure(error))
    result_path.write_text(json.dumps(result, default=str))


def part_compile(check: Check, report: dict) -> dict:
    import torch

    run, frames = check.setting("single")
    batch_size = report["parts"].get("train", {}).get("single", {}).get("batch", check.plan["batch"]["single"])
    trainer = check.trainer(run)
    batch = check.batch(frames, batch_size, seed=1)
    eager, _ = timed(lambda: trainer.train_step(batch), check.device, check.plan["warmup"], check.plan["repeats"])
    trainer.wrapped = torch.compile(trainer.modules, backend=check.plan["compile_backend"])
    started = time.perf_counter()
    trainer.train_step(batch)
    synchronize(check.device)
    first = time.perf_counter() - started
    compiled, _ = timed(lambda: trainer.train_step(batch), check.device, 1, check.plan["repeats"])
    return {
        "backend": check.plan["compile_backend"],
        "first_step_s": round(first, 2),
        "eager_step_s": round(statistics.median(eager), 4),
        "compiled_step_s": round(statistics.median(compiled), 4),
        "speedup": round(statistics.median(eager) / statistics.median(compiled), 3),
    }


# ------------------------------------------------------------------------------------------- report
def memory(result: dict) -> str:
    return "n/a (CPU)" if result.get("peak_memory_gib") is None else f"{result['peak_memory_gib']} GiB"


def table(report: dict) -> str:
    parts = report["parts"]
    lines = [
        f"# GPU check: {report['device']}",
        "",
        f"torch {report['torch']}, Python {report['python']}, profile {report['profile']}, run {report['run']}, "
        f"{report['seconds']:.0f} s",
        "",
        "| part | setting | result |",
        "|---|---|---|",
    ]

    def row(part: str, setting: str, text: str) -> None:
        lines.append(f"| {part} | {setting} | {text} |")

    for name in PARTS:
        result = parts.get(name)
        if result is None:
            continue
        if result.get("status") in ("failed", "skipped"):
            row(name, "", f"**{result['status']}**: {result.get('error') or result.get('reason')}")
            continue
        if name == "peak":
            row(name, f"{result['size']}^3 {result['dtype']} matmul", f"{result['flops'] / 1e12:.3g} TFLOP/s")
        elif name == "train":
            for setting in ("single", "multi"):
                r = result[setting]
                mfu = f", MFU {100 * r['mfu']:.1f}%" if "mfu" in r else ""
                row(
                    name,
                    f"{setting} {r['input']} budgets {r['budgets']}, batch {r['batch']}",
                    f"{r['step_s']:.4f} s/step, {r['tokens_per_s']} tokens/s, peak memory {memory(r)}{mfu}",
                )
            top = ", ".join(f"{op['op']} {100 * op['share']:.0f}%" for op in result["profile"][:5])
            row(name, "multi step, top operators", top)
        elif name == "precision":
            verdict = "ok" if result["ok"] else "**outside tolerance**"
            row(
                name,
                "bf16 vs fp32",
                f"{verdict}: loss {result['loss_relative_error']:.2e} (tol {LOSS_TOLERANCE}), logits "
                f"{result['logits_relative_l2']:.2e} (tol {LOGIT_TOLERANCE}), top-1 agree {result['top1_agreement']:.2f}",
            )
        elif name == "placement":
            verdict = "ok" if result["ok"] else "**problem**"
            syncs = result.get("syncs") or (
                f"syncs: trainer step {len(result['trainer_step_syncs'])} {result['trainer_step_syncs']}, "
                f"model step {len(result['model_step_syncs'])} {result['model_step_syncs']}"
            )
            row(name, f"{result['tensors_checked']} tensors", f"{verdict}; misplaced {result['misplaced'] or 'none'}; {syncs}")
        elif name == "eval":
            row(
                name,
                f"{result['model']} {result['input']}",
                f"{result['videos_per_s']} videos/s; K400 val (~{K400_VAL_VIDEOS} videos) "
                f"{result['k400_validation_minutes']} min",
            )
        elif name in ("ddp", "deepspeed"):
            delta = result.get("first_loss_vs_single_process")
            delta_text = f", first loss - single process {delta:.2e}" if delta is not None else ""
            syncs = result.get("syncs_in_first_step")
            sync_text = f", syncs in first step {len(syncs)}" if syncs is not None else ""
            row(name, f"single batch {result['batch']}", f"{result['step_s']} s/step{delta_text}{sync_text}")
        elif name == "compile":
            row(
                name,
                result["backend"],
                f"first step {result['first_step_s']} s; {result['eager_step_s']} -> {result['compiled_step_s']} s/step "
                f"(x{result['speedup']})",
            )
    return "\n".join(lines) + "\n"


def run_check(plan_path: Path, out: Path, parts: list[str]) -> dict:
    import torch

    started = time.perf_counter()
    plan = json.loads(plan_path.read_text())
    check = Check(plan)
    device_name = torch.cuda.get_device_name(check.device) if check.device.type == "cuda" else f"CPU ({platform.machine()})"
    report: dict[str, Any] = {
        "device": device_name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "profile": plan["profile"],
        "run": plan["run"],
        "parts": {},
        "seconds": 0.0,
    }
    out.mkdir(parents=True, exist_ok=True)
    functions = {
        "peak": part_peak,
        "train": part_train,
        "precision": part_precision,
        "placement": part_placement,
        "eval": part_eval,
        "compile": part_compile,
    }
    for name in parts:
        remaining = plan["time_budget_s"] - (time.perf_counter() - started)
        needed = 120 if name == "compile" else 20
        print(f"[gpu_check] {name} ({remaining:.0f} s left)", flush=True)
        if remaining < needed:
            result = {"status": "skipped", "reason": f"time budget: {remaining:.0f} s left, {needed} s needed"}
        else:
            try:
                if name in ("ddp", "deepspeed"):
                    result = part_distributed(name, check, report, plan_path, remaining)
                else:
                    result = functions[name](check, report)
            except Exception as error:  # noqa: BLE001 (a part's failure is a finding; the others still run)
                result = {
                    "status": "failed",
                    "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc()[-2000:],
                }
        report["parts"][name] = result
        report["seconds"] = round(time.perf_counter() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
        (out / "gpu_check.md").write_text(table(report))
        free_memory(check.device)
    print(table(report), flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="resolve the configuration into a plan file (needs Snakemake)")
    plan.add_argument("--tiny", action="store_true", help="CPU sizes: the embedded default's models at 56 px")
    plan.add_argument("--config", help="configuration file (default: the profile's)")
    plan.add_argument("--run", dest="run_id", help="a Flux-Multi fine-tuning run (default: k710_b)")
    plan.add_argument("--plan-out", type=Path, default=ROOT / "gpu_check_plan.json")
    check = commands.add_parser("run", help="measure, from a plan file (needs torch, timm; DeepSpeed for that part)")
    check.add_argument("--plan", type=Path, default=ROOT / "gpu_check_plan.json")
    check.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    check.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    work = commands.add_parser("worker", help=argparse.SUPPRESS)
    work.add_argument("kind", choices=("ddp", "deepspeed"))
    work.add_argument("--plan", type=Path, required=True)
    work.add_argument("--result", type=Path, required=True)
    arguments = parser.parse_args(argv)
    if arguments.command == "plan":
        resolved = make_plan("tiny" if arguments.tiny else "paper", arguments.config, arguments.run_id)
        arguments.plan_out.write_text(json.dumps(resolved, indent=1))
        print(f"wrote {arguments.plan_out}")
    elif arguments.command == "run":
        parts = [part.strip() for part in arguments.parts.split(",") if part.strip()]
        unknown = sorted(set(parts) - set(PARTS))
        if unknown:
            parser.error(f"--parts: unknown {unknown}; choose from {', '.join(PARTS)}")
        run_check(arguments.plan, arguments.out, parts)
    else:
        worker(arguments.kind, json.loads(arguments.plan.read_text()), arguments.result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
