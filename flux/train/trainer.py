"""The one training loop, for every stage: optimiser, backends, checkpoints, resume, metrics (each stage's data, model
and objective come from flux.train.stages).

A run writes its resume state (model, optimiser, schedule, RNG states, sampler position, step) atomically
every `checkpoint_every` steps under `results/state/<run>/` (outside the rule's outputs, which Snakemake
deletes before a rerun); a restarted job continues from it and ends with the same weights as an
uninterrupted run (CPU, single process). The rule's outputs are written at the end: `final.pt` (weights and
metadata), `final.json` (summary and provenance) and `metrics.jsonl` (per step: losses, lr, gradient norms
per module, tokens/s). A NaN or infinite loss saves the state and stops the run with the step number.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from flux.data.datasets import (
    collate_clips,
)
from flux.errors import TrainingError
from flux.io import atomic_path, atomic_write_json, atomic_write_text
from flux.models.checkpoint import load_checkpoint, read_state_dict
from flux.models.fluxvit import FluxViT, build_model
from flux.models.saved import write_run_checkpoint
from flux.models.sizes import MODEL_SWITCHES
from flux.provenance import provenance
from flux.train.distributed import Topology, device_for, init_process_group, topology_from_env
from flux.train.objectives import Objective
from flux.train.optim import build_optimizer, build_scheduler, grad_norms
from flux.train.runs import ResolvedRun, run_from_dict
from flux.train.spec import TrainSpec
from flux.train.stages import TRAINING_STAGES, Source, validation_accuracy

logger = logging.getLogger(__name__)

GRADIENT_GROUPS = {
    "patch_embed": ("patch_embed.",),
    "position": ("pos_embed", "gpe_proj.", "cls_token"),
    "blocks": ("blocks.",),
    "attention_pooling": ("clip_projector.",),
    "classifier": ("head.", "fc_norm."),
    "projectors": ("final_clip_decoder_for_projs.", "clip_decoder.", "final_clip_decoder.", "vision_proj."),
}


def epoch_schedule(sources: list[Source], epoch: int, seed: int, mix: str) -> list[int]:
    """Which source each step of an epoch draws from: alternating (then the rest of the longer one), or
    shuffled in proportion to their sizes."""
    counts = [len(source.sampler) for source in sources]
    if mix == "proportional":
        order = [index for index, count in enumerate(counts) for _ in range(count)]
        return np.random.default_rng((seed, epoch, 7)).permutation(order).tolist()
    order, remaining = [], list(counts)
    while any(remaining):
        for index, left in enumerate(remaining):
            if left:
                order.append(index)
                remaining[index] -= 1
    return order


class TrainedModules(nn.ModuleDict):
    """The vision model and the objective's own modules (text tower, temperature) as one module, for the
    optimiser and the resume state. timm's optimiser factory reads `group_matcher` (layer-wise lr decay) and
    `no_weight_decay` from the module it is given: they are the model's, under its `model.` prefix; the
    objective's modules fall in the last layer group (with the heads). Its forward is the objective's loss,
    so DDP wraps this module: objectives call several model methods (features, pooling, heads, projectors),
    and DDP synchronises gradients only for what runs inside the wrapped module's forward."""

    def __init__(self, modules: dict[str, nn.Module], objective: Objective | None = None) -> None:
        super().__init__(modules)
        self.objective = objective

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.objective(self["model"], batch)

    def group_matcher(self, coarse: bool = False) -> dict:
        def prefixed(pattern: str) -> str:
            return pattern.replace("^", r"^model\.")

        return {
            group: prefixed(rule) if isinstance(rule, str) else [(prefixed(pattern), order) for pattern, order in rule]
            for group, rule in self["model"].group_matcher(coarse).items()
        }

    def no_weight_decay(self) -> set[str]:
        return {f"model.{name}" for name in self["model"].no_weight_decay()}


# ------------------------------------------------------------------------------------------- backends
class TorchBackend:
    """Plain PyTorch (single process or DDP): backward, optional clipping, optimiser step."""

    def __init__(self, modules: nn.Module, optimizer: torch.optim.Optimizer, clip_grad: float | None) -> None:
        self.modules, self.optimizer, self.clip_grad = modules, optimizer, clip_grad

    def backward(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()

    def step(self) -> None:
        if self.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.modules.parameters(), self.clip_grad)
        self.optimizer.step()

    collective_state_dict = False

    def full_grad(self, parameter: torch.Tensor) -> torch.Tensor | None:
        return parameter.grad

    def state_dict(self, local: bool = False) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def build_backend(spec: TrainSpec, modules: nn.Module, optimizer: torch.optim.Optimizer, run: ResolvedRun, topology: Topology):
    if spec.backend == "deepspeed":
        from flux.train.deepspeed_backend import DeepSpeedBackend

        return DeepSpeedBackend(modules, optimizer, run, spec, topology)
    return TorchBackend(modules, optimizer, run.optim.clip_grad)


def wrap_distributed(modules: nn.Module, device: torch.device, distributed: bool) -> nn.Module:
    """DDP around the trained modules in a distributed run (the plain backend; DeepSpeed reduces by itself).
    Unused parameters are searched for: a step trains only the heads of its budgets."""
    if not distributed:
        return modules
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(modules, device_ids=device_ids, find_unused_parameters=True)


def host_scalars(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """A step's scalars as floats, read from the device in one transfer (a float() of each would make the host
    wait for the device once per value)."""
    read = torch.stack([value.detach().float().reshape(()) for value in values.values()]).tolist()
    return dict(zip(values, read))


# ------------------------------------------------------------------------------------------- loop
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


class Trainer:
    def __init__(
        self, run: ResolvedRun, spec: TrainSpec, model: FluxViT, objective: Objective, sources: list[Source], topology: Topology
    ) -> None:
        self.run, self.spec, self.topology = run, spec, topology
        self.device = device_for(topology)
        self.model = model.to(self.device)
        self.objective = objective
        objective.setup(self.model)
        objective.to(self.device)
        self.modules = TrainedModules({"model": self.model, "extra": objective.extra_modules}, objective)
        self.sources = sources
        self.steps_per_epoch = sum(len(source.sampler) for source in sources)
        if self.steps_per_epoch == 0:
            raise TrainingError(f"{run.id}: no full batch of {run.batch_size} in the training data; lower the batch size")
        self.optimizer = build_optimizer(self.modules, run.optim)
        self.scheduler = build_scheduler(self.optimizer, run.optim, self.steps_per_epoch)
        self.epochs = max(1, round(run.optim.epochs))
        self.total_steps = max(1, round(run.optim.epochs * self.steps_per_epoch))
        self.state_dir = Path(spec.state_dir)
        self.metrics_path = self.state_dir / "metrics.jsonl"
        self.autocast = self.device.type == "cuda" and spec.precision in ("auto", "bf16")
        self.step = 0
        self.epoch = 0
        self.epoch_step = 0
        self.failed_media: dict[str, str] = {}  # media path -> failure kind: files that failed at run time
        self.backend = build_backend(spec, self.modules, self.optimizer, run, topology)
        self.wrapped = (
            self.modules if spec.backend == "deepspeed" else wrap_distributed(self.modules, self.device, topology.distributed)
        )

    # -- state ------------------------------------------------------------------------------------
    def state(self, local: bool = False) -> dict:
        return {
            "spec_key": self.spec.identity(),
            "modules": self.modules.state_dict(),
            "backend": self.backend.state_dict(local=local),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "epoch_step": self.epoch_step,
            "rng": rng_state(),
            "failed_media": dict(self.failed_media),
        }

    def save_state(self, name: str = "latest.pt", local: bool = False) -> Path:
        """Rank 0 writes; under ZeRO the optimiser state is gathered from every rank first (all must call).
        `local`: this rank's view only (a non-finite loss may be seen by one rank alone: for inspection)."""
        path = self.state_dir / name
        collective = self.backend.collective_state_dict and not local
        state = self.state(local=local) if (collective or self.topology.is_main or local) else None
        if self.topology.is_main or local:
            try:
                with atomic_path(path) as temporary:
                    torch.save(state, temporary)
            except OSError as error:  # a full disk, a directory made read-only under a running job
                raise TrainingError(
                    f"{self.run.id}: cannot write its resume state {path} ({error.strerror or error}); free space or make "
                    f"{self.state_dir} writable, then rerun: it resumes from the last state written"
                ) from None
        return path

    def resume(self) -> bool:
        path = self.state_dir / "latest.pt"
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: RNG states are numpy objects
        except Exception as error:  # truncated or damaged: torch raises RuntimeError, EOFError or UnpicklingError
            aside = path.with_name(f"corrupt-{time.strftime('%Y%m%dT%H%M%S')}-latest.pt")
            if self.topology.is_main:
                path.replace(aside)
            logger.warning(
                "%s: resume state %s is unreadable (%s: %s); moved aside to %s, starting afresh",
                self.run.id, path, type(error).__name__, error, aside,
            )  # fmt: skip
            return False
        if state.get("spec_key") != self.spec.identity():
            logger.warning("%s: %s was written for another spec of this run; starting afresh", self.run.id, path)
            return False
        self.modules.load_state_dict(state["modules"])
        self.backend.load_state_dict(state["backend"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.epoch_step = state["step"], state["epoch"], state["epoch_step"]
        self.failed_media = dict(state.get("failed_media", {}))
        set_rng_state(state["rng"])
        if self.metrics_path.is_file():  # steps logged after the saved state will be logged again
            kept = [
                line
                for line in self.metrics_path.read_text(encoding="utf-8").splitlines()
                if json.loads(line)["step"] <= self.step
            ]
            atomic_write_text(self.metrics_path, "".join(f"{line}\n" for line in kept))
        logger.info("%s: resumed from step %d (epoch %d, batch %d)", self.run.id, self.step, self.epoch, self.epoch_step)
        return True

    # -- batches ----------------------------------------------------------------------------------
    def _loader(self, source: Source, epoch: int, index: int) -> DataLoader:
        # its own generator: creating a loader iterator draws a base seed, which from the global generator
        # would shift dropout's random stream when a resumed run creates it mid-epoch
        generator = torch.Generator().manual_seed(self.spec.seed * 1_000_003 + epoch * 101 + index)
        return DataLoader(
            source.dataset,
            batch_sampler=source.sampler,
            num_workers=self.spec.workers,
            persistent_workers=False,
            generator=generator,
            collate_fn=collate_clips,
        )

    def batches(self, epoch: int, skip: int) -> Iterator[dict]:
        """The epoch's batches in schedule order, the first `skip` of them skipped (resume)."""
        order = epoch_schedule(self.sources, epoch, self.spec.seed, self.run.mix)
        done = [order[:skip].count(index) for index in range(len(self.sources))]
        iterators = []
        for index, source in enumerate(self.sources):
            source.dataset.exclude(set(self.failed_media))
            source.dataset.set_epoch(epoch)
            source.sampler.set_epoch(epoch)
            source.sampler.load_state_dict({"epoch": epoch, "batches_done": done[index]})
            iterators.append(iter(self._loader(source, epoch, index)))
        for index in order[skip:]:
            yield next(iterators[index])

    def remember_failures(self, batch: dict) -> None:
        """Files that failed to decode in this batch's items: never drawn again in this run or its resumes."""
        for reported in batch.pop("decode_failed", []):
            for media_path, kind in json.loads(reported):
                if media_path not in self.failed_media:
                    self.failed_media[media_path] = kind
                    logger.warning(
                        "%s: %s failed to decode (%s) at step %d; it is left out for the rest of the run",
                        self.run.id, media_path, kind, self.step + 1,
                    )  # fmt: skip

    def decode_failures(self) -> dict[str, Any]:
        """What final.json and metrics.jsonl record: how many files failed at run time, by kind."""
        kinds: dict[str, int] = {}
        for kind in self.failed_media.values():
            kinds[kind] = kinds.get(kind, 0) + 1
        return {"files": len(self.failed_media), "by_kind": dict(sorted(kinds.items()))}

    def _to_device(self, batch: dict) -> dict:
        return {
            key: value.to(self.device, non_blocking=True) if torch.is_tensor(value) else value for key, value in batch.items()
        }

    # -- loop -------------------------------------------------------------------------------------
    def fit(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.resume():
            self.metrics_path.unlink(missing_ok=True)
        self.modules.train()
        progress = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=self.run.id,
            unit="step",
            disable=not self.topology.is_main,
            mininterval=5,
        )
        checkpoint_every, log_every = self.spec.checkpoint_every, self.spec.log_every
        while self.step < self.total_steps:
            started = time.perf_counter()
            for batch in self.batches(self.epoch, self.epoch_step):
                if self.step >= self.total_steps:
                    break
                self.remember_failures(batch)
                record = self.train_step(self._to_device(batch))
                self.epoch_step += 1
                self.step += 1
                record.update(step=self.step, epoch=self.epoch, seconds=round(time.perf_counter() - started, 4))
                record["decode_failures"] = self.decode_failures()
                started = time.perf_counter()
                if self.topology.is_main and (self.step % log_every == 0 or self.step == self.total_steps):
                    with open(self.metrics_path, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(record) + "\n")
                if self.step % checkpoint_every == 0:
                    self.save_state()
                progress.update(1)
                progress.set_postfix(loss=f"{record['loss']:.4f}")
            else:
                self.epoch += 1
                self.epoch_step = 0
        progress.close()

    def train_step(self, batch: dict) -> dict:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss, components = self.wrapped(batch)
        scalars = host_scalars({"loss": loss, **components})
        if not math.isfinite(scalars["loss"]):
            path = self.save_state(f"nonfinite-step{self.step + 1}-rank{self.topology.rank}.pt", local=True)
            raise TrainingError(f"{self.run.id}: loss is {scalars['loss']} at step {self.step + 1}; the state is saved in {path}")
        self.backend.backward(loss)
        norms = grad_norms(self.model, GRADIENT_GROUPS, self.backend.full_grad)  # before clipping: what the supp figures plot
        self.backend.step()
        self.scheduler.step_update(self.step + 1)
        tokens = self.objective.tokens_in(batch)
        return {
            **scalars,
            "lr": max(group["lr"] for group in self.optimizer.param_groups),
            "grad_norm": norms,
            "tokens": tokens,
            "frames": int(batch["video"].shape[2]),
            "resolution": int(batch["video"].shape[-1]),
        }


# ------------------------------------------------------------------------------------------- entry
def discard_resume_state(spec: TrainSpec) -> None:
    """After the final checkpoint is written the resume state is dead weight (GBs at paper scale) and would
    make a forced rerun of the same spec start at its last step; states saved on a non-finite loss or moved aside
    as unreadable go too (inspected or not, they are a failed attempt's)."""
    state_dir = Path(spec.state_dir)
    leftovers = [*state_dir.glob("nonfinite-step*.pt"), *state_dir.glob("corrupt-*-latest.pt")]
    for path in [state_dir / "latest.pt", state_dir / "metrics.jsonl", state_dir / LOCK_NAME, *leftovers]:
        path.unlink(missing_ok=True)  # the lock file too: its holder (this process) still holds it until it exits
    if state_dir.is_dir() and not any(state_dir.iterdir()):
        state_dir.rmdir()


def save_final(
    run: ResolvedRun, spec: TrainSpec, model: FluxViT, objective: Objective | None, facts: dict, summary: dict
) -> None:
    out = Path(spec.checkpoint)
    metadata = {
        "run": run.id,
        "stage": run.stage,
        "model": run.model,
        "model_switches": {key: value for key, value in run.model_options.items() if key in MODEL_SWITCHES},
        "num_classes": facts.get("num_classes", 0),
        "class_names": facts.get("class_names", []),
        "selector": run.selector,
        "trained_heads": spec.trained_heads,
    }
    extra = objective.extra_modules if objective is not None else {}
    text, logit_scale = (extra["text"], extra["logit_scale"]()) if "text" in extra else (None, None)
    write_run_checkpoint(out, model, metadata, text, logit_scale, objective.checkpoint_extra() if objective is not None else {})
    metrics = Path(spec.state_dir) / "metrics.jsonl"
    atomic_write_text(Path(spec.metrics), metrics.read_text(encoding="utf-8") if metrics.is_file() else "")
    atomic_write_json(
        Path(spec.summary),
        {**summary, "trained_heads": spec.trained_heads, "provenance": provenance(spec.lineage, spec.seed)},
    )


def import_teacher(run: ResolvedRun, spec: TrainSpec) -> None:
    """Paper scale: the teacher is the released InternVideo2-1B; check it loads into the architecture and
    write it in this pipeline's checkpoint format."""
    model = build_model(run.model, num_classes=0)
    grid = tuple(spec.teacher_grid) if spec.teacher_grid else None
    report = load_checkpoint(model, read_state_dict(Path(spec.teacher_weights)), grid=grid)
    if report.missing:
        raise TrainingError(f"teacher weights {spec.teacher_weights} lack parts of {run.model}:\n{report}")
    save_final(
        run, spec, model, None, {"num_classes": 0}, {"run": run.id, "imported": spec.teacher_weights, "load_report": str(report)}
    )


LOCK_NAME = "lock"


@contextlib.contextmanager
def run_lock(state_dir: Path, run_id: str, is_main: bool) -> Iterator[None]:
    """Hold an exclusive lock on the run (its state directory's `lock`, flock: released when the process ends,
    however it ends) while it trains, so that a second trainer of the same run (another checkout sharing results/,
    an orphaned job after `snakemake --unlock`) stops at once, naming the holder, instead of interleaving its state
    and metrics with the first. Rank 0 locks for all ranks. On a shared file system this needs flock support
    (NFSv4, Lustre mounted with `flock`)."""
    if not is_main:
        yield
        return
    path = state_dir / LOCK_NAME
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")
    except OSError as error:
        raise TrainingError(
            f"{run_id}: cannot write its state directory {state_dir} ({error.strerror or error}); training saves its "
            f"resume state there: make it writable, or set paths.results to a writable place"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "an unknown process"
        handle.close()
        raise TrainingError(
            f"{run_id}: another trainer is training this run ({holder}; lock {path}); two trainers would interleave "
            f"its state and metrics: wait for it to finish, or stop it and rerun"
        ) from None
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
    }
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(holder) + "\n")
    handle.flush()
    try:
        yield
    finally:
        handle.close()


def run(job: dict) -> None:
    """`flux train`: one run from its job spec."""
    spec = TrainSpec.from_dict(job)
    training = run_from_dict(spec.run)
    topology = topology_from_env()
    device = device_for(topology)
    init_process_group(topology, device)
    seed_everything(spec.seed + topology.rank)
    torch.set_num_threads(max(1, spec.threads or 1))
    if spec.teacher_weights:  # paper scale: the teacher is imported, not trained
        import_teacher(training, spec)
        return
    with run_lock(Path(spec.state_dir), training.id, topology.is_main):
        set_up = TRAINING_STAGES[training.stage].set_up(training, spec, topology)
        model, objective, facts = set_up.model, set_up.objective, set_up.facts
        trainer = Trainer(training, spec, model, objective, set_up.sources, topology)
        started = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - started
        if topology.is_main:
            records = (
                [json.loads(line) for line in trainer.metrics_path.read_text().splitlines()]
                if trainer.metrics_path.is_file()
                else []
            )
            logged_seconds = sum(record["seconds"] for record in records)
            summary = {
                "run": training.id,
                "stage": training.stage,
                "steps": trainer.step,
                "epochs": trainer.epochs,
                "train_seconds": round(seconds, 2),
                # measured on the logged steps (every `log_every`-th): tokens through the model per second of step time
                "tokens_per_second": round(sum(r["tokens"] for r in records) / logged_seconds, 1) if logged_seconds else None,
                "final_loss": records[-1]["loss"] if records else None,
                # files that failed to decode at run time, left out from then on (the index decodes first and last frames)
                "decode_failures": {**trainer.decode_failures(), "files_failed": dict(sorted(trainer.failed_media.items()))},
                "validation": validation_accuracy(model, training, spec, device),
            }
            save_final(training, spec, model, objective, facts, summary)
            discard_resume_state(spec)
            logger.info("%s: %s", training.id, json.dumps({k: v for k, v in summary.items() if k != "validation"}))
            if summary["validation"]:
                logger.info("%s: validation %s", training.id, summary["validation"])
    if topology.distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
