"""The training loop on real synthetic videos: exact resume after a kill, NaN stops, recorded metrics."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from flux.data.index import run as index
from flux.data.sampling import FlexibleSpec
from flux.data.spec import SyntheticSettings, load_registry
from flux.data.synthetic import generate
from flux.jobs import semantic_entry
from flux.train.inheritance import heads_record, own_heads
from flux.train.runs import OptimSettings, ResolvedRun, RunInput, run_to_dict
from tests.paths import REPO


@pytest.fixture(scope="module")
def k400(tmp_path_factory):
    """A small synthetic K400-like dataset (8 classes x 3 training videos and 1 validation video), indexed."""
    data = tmp_path_factory.mktemp("data")
    registry = load_registry(REPO / "config" / "datasets.yaml")
    spec = registry["synth_k400"]
    spec = replace(spec, synthetic=replace(spec.synthetic, splits={"train": 10, "val": 4}))  # not the claims-sized 38
    root = data / "raw" / "k400"
    generate(spec, SyntheticSettings(count_scale=0.3, duration_s=(1.0, 2.0), fps=(8, 10)), root)
    manifest = data / "manifests" / "k400.parquet"
    index(
        {"dataset": "k400", "entry": semantic_entry(dict(spec.raw)), "dataset_dir": str(root), "data_dir": str(data),
         "media_roots": {"k400": str(root / "media")}, "probe_cache": str(data / "probes.jsonl"), "reuse_probes": [],
         "manifest": str(manifest), "report": str(data / "report.json"), "threads": 1}
    )  # fmt: skip
    return data, manifest


def finetune_job(data: Path, manifest: Path, out: Path, steps_epochs: float = 3.0, method: str = "multi") -> dict:
    spec = FlexibleSpec((2, 3), (28, 42), 8, 24, 14)
    run = ResolvedRun(
        id="toy",
        stage="finetune",
        model="fluxvit_tiny",
        model_options={"drop_path_rate": 0.1},
        parent=None,
        datasets=("k400",),
        input=RunInput("flexible", spec),
        optim=OptimSettings(lr=1e-3, weight_decay=0.05, layer_decay=0.75, epochs=steps_epochs, warmup_epochs=0.5, clip_grad=1.0),
        batch_size=4,
        method=method,
        align=method == "multi",
        budgets=(18, 12, 6) if method == "multi" else (12,),
        heads=(0, 1, 2) if method == "multi" else (1,),
        num_heads=3,
        augment={"mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1, "rand_augment": "rand-m9-n2-mstd0.5-inc1"},
    )
    return {
        "run": run_to_dict(run), "seed": 3, "data_dir": str(data), "manifests": {"k400": str(manifest)},
        "parent_checkpoint": None, "parent_plan": None, "teacher_checkpoint": None, "text_encoder": None,
        "trained_heads": heads_record(own_heads(run)),
        "teacher_weights": None, "teacher_grid": None,
        "checkpoint": str(out / "final.pt"), "summary": str(out / "final.json"), "metrics": str(out / "metrics.jsonl"),
        "state_dir": str(out / "state"), "workers": 0, "checkpoint_every": 2, "log_every": 1, "precision": "auto",
        "backend": "torch", "zero_stage": 1, "lineage": "test", "reference_input": [2, 28], "val_manifest": str(manifest),
        "threads": 1,
    }  # fmt: skip


def train_in_subprocess(job: dict) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "flux", "train", "--spec", json.dumps(job)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def final_weights(job: dict) -> dict:
    return torch.load(job["checkpoint"], weights_only=True)["model"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(k400, tmp_path):
    data, manifest = k400
    whole = finetune_job(data, manifest, tmp_path / "whole")
    process = train_in_subprocess(whole)
    assert process.wait(timeout=600) == 0, process.stderr.read()

    killed = finetune_job(data, manifest, tmp_path / "killed")
    process = train_in_subprocess(killed)
    state = Path(killed["state_dir"]) / "latest.pt"
    deadline = time.time() + 300
    while time.time() < deadline and not (state.is_file() and torch.load(state, weights_only=False)["step"] >= 4):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not Path(killed["checkpoint"]).exists()  # killed mid-training: no final output
    saved_step = torch.load(state, weights_only=False)["step"]
    assert 4 <= saved_step < json.loads(Path(whole["summary"]).read_text())["steps"]
    resumed = train_in_subprocess(killed)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()
    expected, got = final_weights(whole), final_weights(killed)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    # the metrics of the resumed run are those of the uninterrupted one, no step twice
    whole_steps = [json.loads(line)["step"] for line in Path(whole["metrics"]).read_text().splitlines()]
    killed_steps = [json.loads(line)["step"] for line in Path(killed["metrics"]).read_text().splitlines()]
    assert killed_steps == whole_steps == list(range(1, len(whole_steps) + 1))


@pytest.mark.slow
def test_ddp_under_torchrun_splits_the_batch_over_two_processes(k400, tmp_path):
    data, manifest = k400
    job = finetune_job(data, manifest, tmp_path, steps_epochs=1.0, method="single")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "flux", "train", "--spec", json.dumps(job)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in Path(job["metrics"]).read_text().splitlines()]
    # the global batch of 4 is 2 per process: rank 0 logs its own 2 clips at budget 12
    assert records and all(r["tokens"] == 2 * min(12, r["frames"] * (r["resolution"] // 14) ** 2) for r in records)
    assert all(r["grad_norm"]["total"] > 0 for r in records)
    summary = json.loads(Path(job["summary"]).read_text())
    assert summary["steps"] == len(records) and summary["validation"]["videos"] == 8
    assert torch.load(job["checkpoint"], weights_only=True)["model"]


def test_a_state_of_another_spec_is_ignored_and_a_finished_run_leaves_no_state(k400, tmp_path, caplog):
    from flux.train.trainer import run

    data, manifest = k400
    fresh = finetune_job(data, manifest, tmp_path / "fresh", steps_epochs=1.0, method="single")
    run(fresh)
    assert not Path(fresh["state_dir"]).exists()  # the final checkpoint is the output; the resume state is gone
    edited = finetune_job(data, manifest, tmp_path / "edited", steps_epochs=1.0, method="single")
    stale = Path(edited["state_dir"]) / "latest.pt"
    stale.parent.mkdir(parents=True)
    torch.save({"spec_key": "a spec with another learning rate", "step": 3}, stale)
    run(edited)
    assert "written for another spec" in caplog.text
    expected, got = final_weights(fresh), final_weights(edited)
    assert all(torch.equal(expected[key], got[key]) for key in expected)


def test_metrics_record_losses_gradients_and_throughput(k400, tmp_path):
    from flux.train.trainer import run

    data, manifest = k400
    job = finetune_job(data, manifest, tmp_path, steps_epochs=1.0, method="single")
    run(job)
    records = [json.loads(line) for line in Path(job["metrics"]).read_text().splitlines()]
    assert records and all(
        set(r["grad_norm"]) >= {"patch_embed", "blocks", "attention_pooling", "classifier", "total"} for r in records
    )
    # batch 4, budget 12 (or every patch of a smaller clip)
    assert all(r["tokens"] == 4 * min(12, r["frames"] * (r["resolution"] // 14) ** 2) and r["lr"] > 0 for r in records)
    summary = json.loads(Path(job["summary"]).read_text())
    assert summary["steps"] == len(records) and summary["tokens_per_second"] > 0
    assert summary["validation"]["videos"] == 8 and 0 <= summary["validation"]["top1"] <= 1
    assert summary["provenance"]["config_sha256"] == "test"
    payload = torch.load(job["checkpoint"], weights_only=True)
    assert payload["metadata"]["num_classes"] == 8 and len(payload["metadata"]["class_names"]) == 8


def test_validation_accuracy_is_the_hand_counted_one(k400, tmp_path):
    """A model that always says class c is right on exactly the decodable val videos of class c (counted from the
    manifest), out of all val videos, at the run's head and budget."""
    from flux.data.index import read_manifest
    from flux.models.fluxvit import build_model
    from flux.train.runs import run_from_dict
    from flux.train.spec import TrainSpec
    from flux.train.stages import validation_accuracy

    data, manifest = k400
    job = finetune_job(data, manifest, tmp_path, method="single")
    run = run_from_dict(job["run"])
    frame = read_manifest(manifest)[0]
    val = frame[frame["split"] == "val"]
    for favoured in (0, 3):
        model = build_model("fluxvit_tiny", num_classes=8, output_heads=3)
        with torch.no_grad():
            for head in model.head:
                head.weight.zero_()
                head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(favoured), 8).float())
        result = validation_accuracy(model, run, TrainSpec.from_dict(job), torch.device("cpu"))
        expected = int(((val["label_id"] == favoured) & val["decodable"]).sum()) / len(val)
        assert (result["top1"], result["videos"], result["head"], result["budget"]) == (expected, len(val), 1, 12)
        assert expected > 0  # the fixture has val videos of the class: the check is not vacuous
        # `training.validation_videos`: the seeded subset evaluation's max_videos draws (seed 0, in manifest order)
        subset = val.iloc[np.sort(np.random.default_rng(0).permutation(len(val))[:3])]
        result = validation_accuracy(model, run, TrainSpec.from_dict({**job, "validation_videos": 3}), torch.device("cpu"))
        assert (result["top1"], result["videos"]) == (int(((subset["label_id"] == favoured) & subset["decodable"]).sum()) / 3, 3)


def test_a_trained_checkpoint_is_what_evaluation_loads(k400, tmp_path):
    """The production path, end to end: the trainer's final checkpoint, read by evaluation's own loader, holds the
    trained weights and scores the validation split exactly as the trainer's in-memory model did."""
    from flux.eval.runner import load_model
    from flux.eval.runner import run as evaluate
    from flux.train.trainer import run as train

    data, manifest = k400
    job = finetune_job(data, manifest, tmp_path, steps_epochs=1.0, method="single")
    train(job)
    model, payload = load_model(Path(job["checkpoint"]))
    assert all(torch.equal(value, payload["model"][key]) for key, value in model.state_dict().items())
    assert payload["metadata"]["trained_heads"] == job["trained_heads"] and model.num_classes == 8
    validation = json.loads(Path(job["summary"]).read_text())["validation"]
    frames, resolution = job["reference_input"]
    out = tmp_path / "metrics.json"
    evaluate(
        {"eval": "toy/check", "run": "toy", "protocol": "check", "task": "classification", "views": [1, 1],
         "roles": [{"role": "k400", "dataset": "k400", "manifest": str(manifest), "splits": [validation["split"]]}],
         "settings": [{"key": "reference", "frames": frames, "resolution": resolution, "budget": validation["budget"],
                       "head": validation["head"]}],
         "token_optimization": [], "prompts": [], "checkpoint": job["checkpoint"], "text_encoder": None,
         "data_dir": str(data), "seed": 0, "workers": 0, "lineage": "test", "out": str(out)}
    )  # fmt: skip
    result = json.loads(out.read_text())["results"]["k400"]["reference"]
    assert result["top1"] == pytest.approx(100 * validation["top1"], abs=1e-3) and result["videos"] == validation["videos"]


def poison_step(monkeypatch, step: int) -> None:
    """Make the classification loss NaN at the `step`-th call (steps count from 1)."""
    from flux.train.objectives import Classification

    calls = {"n": 0}
    original = Classification.__call__

    def poisoned(self, model, batch):
        calls["n"] += 1
        loss, parts = original(self, model, batch)
        return (loss * float("nan"), parts) if calls["n"] == step else (loss, parts)

    monkeypatch.setattr(Classification, "__call__", poisoned)


def test_non_finite_loss_stops_with_the_step_and_saves_state(k400, tmp_path, monkeypatch):
    from flux.train import trainer as trainer_module

    data, manifest = k400
    job = finetune_job(data, manifest, tmp_path, method="single")
    poison_step(monkeypatch, 3)
    with pytest.raises(trainer_module.TrainingError, match="loss is nan at step 3"):
        trainer_module.run(job)
    assert (Path(job["state_dir"]) / "nonfinite-step3-rank0.pt").is_file()
    assert not Path(job["checkpoint"]).exists()


def test_a_rerun_with_other_threads_resumes_and_the_finished_run_leaves_nothing(k400, tmp_path, monkeypatch, caplog):
    """How a job executes (threads, state-saving interval) does not key its resume state: a job stopped at step 3
    (a non-finite loss, its state saved at step 2) resumes from step 2 under another `--cores` and ends with the
    uninterrupted run's weights (to float precision: threads change the summation order); the finished run
    removes its state, the non-finite one included."""
    from flux.train import trainer as trainer_module

    data, manifest = k400
    whole = finetune_job(data, manifest, tmp_path / "whole", steps_epochs=1.0, method="single")
    trainer_module.run(whole)
    job = finetune_job(data, manifest, tmp_path / "stopped", steps_epochs=1.0, method="single")
    poison_step(monkeypatch, 3)
    with pytest.raises(trainer_module.TrainingError, match="at step 3"):
        trainer_module.run(job)
    monkeypatch.undo()
    caplog.set_level("INFO", logger="flux")
    trainer_module.run({**job, "threads": 2, "checkpoint_every": 3})
    assert "resumed from step 2" in caplog.text
    expected, got = final_weights(whole), final_weights(job)  # equal up to the summation order of 2 threads
    assert all(torch.allclose(expected[key], got[key], atol=1e-5) for key in expected)
    assert not Path(job["state_dir"]).exists()


def first_drawn(job: dict) -> str:
    """The media path of the first item of the run's first batch."""
    from flux.train.distributed import topology_from_env
    from flux.train.runs import run_from_dict
    from flux.train.spec import TrainSpec
    from flux.train.stages import TRAINING_STAGES

    run = run_from_dict(job["run"])
    (source,), _ = TRAINING_STAGES[run.stage].sources(run, TrainSpec.from_dict(job), topology_from_env())
    source.sampler.set_epoch(0)
    position = next(iter(source.sampler))[0][0]
    return str(source.dataset.rows.at[position, "media_path"])


def test_a_file_that_fails_at_run_time_is_left_out_for_the_run_and_its_resumes(k400, tmp_path, monkeypatch):
    """A file the index called decodable (it decodes first and last frame only) that fails in training is
    opened once: a resumed run, and the epochs after, never draw it again; final.json and metrics.jsonl count it."""
    from flux.data import datasets as datasets_module
    from flux.train import trainer as trainer_module

    data = tmp_path / "data"
    shutil.copytree(k400[0], data)
    job = finetune_job(data, data / "manifests" / "k400.parquet", tmp_path / "run", steps_epochs=2.0, method="single")
    broken = first_drawn(job)
    path = data / broken
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut after indexing
    opened = Counter()
    original = datasets_module.read_video

    def counting(media, *args, **kwargs):
        opened[Path(media)] += 1
        return original(media, *args, **kwargs)

    poison_step(monkeypatch, 3)  # stops after the state of step 2, which knows the failure of step 1
    monkeypatch.setattr(datasets_module, "read_video", counting)
    with pytest.raises(trainer_module.TrainingError, match="at step 3"):
        trainer_module.run(job)
    monkeypatch.undo()
    monkeypatch.setattr(datasets_module, "read_video", counting)
    trainer_module.run(job)  # resumes from step 2; its second epoch draws every file again
    assert opened[path] == 1
    summary = json.loads(Path(job["summary"]).read_text())["decode_failures"]
    (kind,) = summary["by_kind"]
    assert summary == {"files": 1, "by_kind": {kind: 1}, "files_failed": {broken: kind}}
    records = [json.loads(line) for line in Path(job["metrics"]).read_text().splitlines()]
    assert [record["decode_failures"] for record in records] == [{"files": 1, "by_kind": {kind: 1}}] * len(records)


def test_a_second_trainer_of_a_run_stops_at_once_naming_the_holder(k400, tmp_path):
    """Two trainers on one run would interleave its state and metrics: the second stops before touching either,
    naming who holds the run; after the holder is gone, the run trains (and leaves no lock behind)."""
    from flux.train.trainer import TrainingError, run, run_lock

    data, manifest = k400
    job = finetune_job(data, manifest, tmp_path, steps_epochs=1.0, method="single")
    with run_lock(Path(job["state_dir"]), "toy", is_main=True):
        with pytest.raises(TrainingError, match=rf"toy: another trainer is training this run \(.*\"pid\": {os.getpid()}"):
            run(job)
        assert not (Path(job["state_dir"]) / "metrics.jsonl").exists() and not Path(job["checkpoint"]).exists()
    run(job)
    assert Path(job["checkpoint"]).is_file() and not Path(job["state_dir"]).exists()


def test_a_state_directory_that_cannot_be_written_is_named(k400, tmp_path):
    from flux.train.trainer import TrainingError, run

    data, manifest = k400
    (tmp_path / "blocked").write_text("a file where the state directory's parent should be")
    job = {
        **finetune_job(data, manifest, tmp_path, steps_epochs=1.0, method="single"),
        "state_dir": str(tmp_path / "blocked" / "toy"),
    }
    with pytest.raises(TrainingError, match=r"toy: cannot write its state directory .*blocked/toy \(Not a directory\)"):
        run(job)


def test_a_trainer_killed_holding_the_lock_does_not_block_the_rerun(k400, tmp_path):
    """flock is released by the kernel when its process dies: a `kill -9`ed trainer leaves a lock file, not a lock."""
    data, manifest = k400
    job = finetune_job(data, manifest, tmp_path, steps_epochs=1.0, method="single")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from flux.train.trainer import run_lock\n"
         f"with run_lock(Path({job['state_dir']!r}), 'toy', True):\n    print('held', flush=True); time.sleep(600)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (Path(job["state_dir"]) / "lock").is_file()
    from flux.train.trainer import run

    run(job)
    assert Path(job["checkpoint"]).is_file()


def test_an_unreadable_resume_state_is_moved_aside_and_training_starts_afresh(k400, tmp_path, caplog):
    from flux.train.trainer import run

    data, manifest = k400
    fresh = finetune_job(data, manifest, tmp_path / "fresh", steps_epochs=1.0, method="single")
    run(fresh)
    job = finetune_job(data, manifest, tmp_path / "damaged", steps_epochs=1.0, method="single")
    state = Path(job["state_dir"]) / "latest.pt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"PK\x03\x04 a zip cut short")  # a state file truncated by a full disk or a killed copy
    run(job)
    assert "is unreadable" in caplog.text and "moved aside" in caplog.text
    expected, got = final_weights(fresh), final_weights(job)
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert not Path(job["state_dir"]).exists()  # the damaged state went with the finished run


def test_a_damaged_parent_is_an_error_naming_the_file_and_how_to_rebuild_it(tmp_path):
    from flux.errors import TrainingError
    from flux.train.stages import read_run_checkpoint

    parent = tmp_path / "results" / "runs" / "umt_s" / "final.pt"
    parent.parent.mkdir(parents=True)
    torch.save({"model": {"w": torch.zeros(1000)}, "metadata": {}}, parent)
    parent.write_bytes(parent.read_bytes()[:300])  # truncated
    with pytest.raises(TrainingError, match=rf"parent run 'umt_s' checkpoint {parent} is damaged .*snakemake {parent} --force"):
        read_run_checkpoint(str(parent), "parent run 'umt_s'")


def test_deepspeed_backend_trains_on_cpu(k400, tmp_path, deepspeed_cpu):
    from flux.train.trainer import run

    data, manifest = k400
    job = {**finetune_job(data, manifest, tmp_path, steps_epochs=1.0, method="single"), "backend": "deepspeed", "zero_stage": 1}
    run(job)
    records = [json.loads(line) for line in Path(job["metrics"]).read_text().splitlines()]
    assert records and all(r["grad_norm"]["total"] > 0 for r in records)  # ZeRO's gradients are read back
    assert torch.load(job["checkpoint"], weights_only=True)["model"]["pos_embed"].dtype == torch.float32


def test_paper_scale_teacher_is_imported_not_trained(tmp_path):
    """`teacher.weights` set: the teacher run loads the released checkpoint (wrapper prefix stripped) and
    writes it in this pipeline's format, with no training step."""
    from flux.config import load_config
    from flux.models.fluxvit import build_model
    from flux.train.trainer import run

    teacher = load_config([REPO / "config" / "config.yaml"]).runs["teacher"]
    torch.manual_seed(5)
    released = build_model(teacher.model, num_classes=0)
    weights = tmp_path / "released.pt"
    torch.save({"module": {f"module.{key}": value for key, value in released.state_dict().items()}}, weights)
    out = tmp_path / "teacher"
    job = {
        "run": run_to_dict(teacher), "seed": 0, "teacher_weights": str(weights), "teacher_grid": None,
        "checkpoint": str(out / "final.pt"), "summary": str(out / "final.json"), "metrics": str(out / "metrics.jsonl"),
        "state_dir": str(out / "state"), "lineage": "test", "trained_heads": heads_record(own_heads(teacher)),
        "data_dir": str(tmp_path), "manifests": {}, "reference_input": [8, 224],
    }  # fmt: skip
    run(job)
    imported = torch.load(job["checkpoint"], weights_only=True)["model"]
    assert all(torch.equal(imported[key], value) for key, value in released.state_dict().items())
    summary = json.loads(Path(job["summary"]).read_text())
    assert summary["run"] == "teacher" and summary["imported"] == str(weights)
    assert Path(job["metrics"]).read_text() == ""  # nothing trained
