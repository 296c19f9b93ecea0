"""The chat stage end to end on synthetic data in the published formats: the tiny LM is trained and frozen, the chat
run trains the projector only (encoder and LLM come out bit-identical), and the chat protocol scores the checkpoint on
MVBench- and DREAM-1K-format sets."""

import json
from pathlib import Path

import pytest
import torch

from flux.data.index import run as index
from flux.data.sampling import FlexibleSpec
from flux.data.spec import SyntheticSettings, load_registry
from flux.data.synthetic import generate
from flux.jobs import semantic_entry
from flux.models.fluxvit import build_model
from flux.models.saved import write_run_checkpoint
from flux.train.inheritance import heads_record
from flux.train.runs import OptimSettings, ResolvedRun, RunInput, run_to_dict
from tests.paths import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    registry = load_registry(REPO / "config" / "datasets.yaml")
    settings = SyntheticSettings(count_scale=0.1, duration_s=(1.0, 2.0), fps=(8, 8))
    manifests = {}
    for name in ("synth_chat_it", "synth_mvbench", "synth_dream1k"):
        spec = registry[name]
        root = data / "raw" / name
        generate(spec, settings, root)
        manifests[name] = data / "manifests" / f"{name}.parquet"
        index(
            {"dataset": name, "entry": semantic_entry(dict(spec.raw)), "dataset_dir": str(root), "data_dir": str(data),
             "media_roots": {name: str(root / "media")}, "probe_cache": str(data / f"{name}.probes.jsonl"),
             "reuse_probes": [], "manifest": str(manifests[name]), "report": str(data / f"{name}.json"), "threads": 1}
        )  # fmt: skip
    return data, manifests


@pytest.fixture(scope="module")
def chat_run(chat_data, tmp_path_factory):
    """The tiny LM (`flux llm`), an encoder checkpoint as the parent, and a chat run trained on them."""
    from flux.train.language import run as train_llm
    from flux.train.trainer import run as train

    data, manifests = chat_data
    out = tmp_path_factory.mktemp("runs")
    llm = {
        "manifests": {"synth_chat_it": str(manifests["synth_chat_it"])},
        "model": {"embed_dim": 32, "depth": 1, "num_heads": 2, "max_length": 192},
        "epochs": 2, "batch_size": 8, "lr": 3e-3, "seed": 0, "out": str(out / "llm.pt"), "summary": str(out / "llm.json"),
    }  # fmt: skip
    train_llm(llm)
    torch.manual_seed(0)
    encoder = build_model("fluxvit_tiny", num_classes=0)
    heads = heads_record({0: 24, 1: 16, 2: 8})
    metadata = {"run": "encoder", "stage": "umt", "model": "fluxvit_tiny", "model_switches": {}, "num_classes": 0,
                "class_names": [], "selector": "group_dynamic_l2", "trained_heads": heads}  # fmt: skip
    write_run_checkpoint(out / "encoder.pt", encoder, metadata)
    run = ResolvedRun(
        id="chat",
        stage="chat",
        model="fluxvit_tiny",
        model_options={"drop_path_rate": 0.1},
        parent="encoder",
        datasets=("synth_chat_it",),
        input=RunInput("flexible", FlexibleSpec((2, 3), (28, 42), 8, 24, 14)),
        optim=OptimSettings(lr=1e-3, weight_decay=0.0, epochs=2, warmup_epochs=0.2),
        batch_size=4,
        budgets=(16, 8),
        heads=(0, 1),
        num_heads=3,
        augment={"crop": "random_resized", "scale": [0.8, 1.0]},
    )
    job = {
        "run": run_to_dict(run), "seed": 0, "data_dir": str(data),
        "manifests": {"synth_chat_it": str(manifests["synth_chat_it"])}, "parent_checkpoint": str(out / "encoder.pt"),
        "parent_plan": {"parent": "encoder", "parent_heads": 3, "classifier": "load", "head_sources": {}, "fresh": [],
                        "dropped": []},
        "trained_heads": heads, "checkpoint": str(out / "final.pt"), "summary": str(out / "final.json"),
        "metrics": str(out / "metrics.jsonl"), "state_dir": str(out / "state"), "workers": 0, "checkpoint_every": 50,
        "log_every": 1, "lineage": "test", "reference_input": [2, 28], "threads": 1, "llm": str(out / "llm.pt"),
        "projector": "mlp",
    }  # fmt: skip
    train(job)
    return job, out


def test_the_tiny_lm_is_trained_on_the_instruction_turns(chat_run):
    _, out = chat_run
    summary = json.loads((out / "llm.json").read_text())
    assert summary["videos"] == 11 and summary["documents"] >= 11 * 6  # 112 x 0.1 videos: a caption and five questions
    assert summary["final_loss"] < summary["first_loss"]


def test_chat_training_changes_the_projector_only(chat_run):
    job, out = chat_run
    saved = torch.load(job["checkpoint"], weights_only=False)
    parent = torch.load(out / "encoder.pt", weights_only=False)["model"]
    assert saved["model"].keys() == parent.keys()
    assert all(torch.equal(saved["model"][key], parent[key]) for key in parent)  # the encoder, bit for bit
    llm = torch.load(out / "llm.pt", weights_only=False)["llm"]["tiny"]["state"]
    kept = saved["chat"]["llm"]["tiny"]["state"]
    assert all(torch.equal(kept[key], llm[key]) for key in llm)  # the LLM, bit for bit
    records = [json.loads(line) for line in Path(job["metrics"]).read_text().splitlines()]
    assert len(records) == 2 * 2  # 11 videos: two full batches of 4 a step, 2 epochs
    assert all(norm == 0 for record in records for norm in record["grad_norm"].values())  # the encoder's groups: no gradient
    projector = saved["chat"]["projector"]
    assert projector["kind"] == "mlp" and projector["vision_dim"] == 128 and projector["llm_dim"] == 32


def test_the_chat_protocol_scores_both_benchmarks(chat_data, chat_run):
    from flux.eval.runner import run as evaluate

    data, manifests = chat_data
    job, out = chat_run
    roles = [
        {"role": "mvbench", "dataset": "synth_mvbench", "manifest": str(manifests["synth_mvbench"]), "splits": ["test"]},
        {"role": "dream1k", "dataset": "synth_dream1k", "manifest": str(manifests["synth_dream1k"]), "splits": ["test"]},
    ]
    evaluate(
        {"eval": "chat/chat", "run": "chat", "protocol": "chat", "task": "chat", "views": [1, 1], "roles": roles,
         "settings": [{"key": "2x28@8", "frames": 2, "resolution": 28, "budget": 8, "head": 0}],
         "token_optimization": [{"key": "to@8", "budget": 8, "head": 0, "frames": [2, 3], "resolutions": [28, 42],
                                 "search": "grid", "start": [2, 28]}],
         "prompts": [], "checkpoint": job["checkpoint"], "data_dir": str(data), "seed": 0, "workers": 0,
         "lineage": "test", "out": str(out / "chat.json"), "max_new_tokens": 6}
    )  # fmt: skip
    results = json.loads((out / "chat.json").read_text())["results"]
    mvbench, dream = results["mvbench"]["2x28@8"], results["dream1k"]["2x28@8"]
    assert mvbench["videos"] == 5 * 2 and len(mvbench["accuracy_hits"]) == 10 and mvbench["chance"] == 25.0
    tasks = {"object_existence", "moving_attribute", "fine_grained_action", "action_sequence", "action_count"}
    assert set(mvbench["per_task"]) == tasks
    assert mvbench["accuracy"] == pytest.approx(100 * mvbench["accuracy_hits"].count("1") / 10)
    assert dream["videos"] == 3 and len(dream["captions"]) == 3 and 0 <= dream["f1"] <= 100
    assert all(len(caption.split()) <= 6 for caption in dream["captions"].values())
    searched = results["mvbench"]["to@8"]
    assert len(searched["evaluations"]) == 4 and searched["accuracy"] == max(value for *_, value in searched["evaluations"])
