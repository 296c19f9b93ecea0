"""Main Table 10 as config/paper.yaml resolves it, checked without data or GPUs: which runs the chat rows read, what
they train and freeze, which LLM they load, which split and settings the chat protocol scores."""

import pytest

from flux.config import load_config
from flux.jobs import evaluate_spec, llm_spec, table_evaluations, train_spec
from flux.models.sizes import MODEL_SWITCHES
from flux.train.inheritance import parent_plan
from tests.paths import REPO


@pytest.fixture(scope="module")
def paper():
    return load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"])


@pytest.fixture(scope="module")
def tiny():
    return load_config([REPO / "config" / "config.yaml"])


def test_the_chat_rows_read_the_chat_runs_of_fluxvit_l(paper):
    assert sorted(table_evaluations(paper, "main_table10")) == [("chat_iv2_l", "chat"), ("chat_l", "chat")]
    chat = paper.runs["chat_l"]
    assert (chat.stage, chat.model, chat.parent, paper.runs[chat.parent].model) == ("chat", "fluxvit_l", "umt_l", "fluxvit_l")
    switches = [{key: paper.runs[run].model_options.get(key) for key in MODEL_SWITCHES} for run in ("chat_iv2_l", "iv2_l")]
    assert switches[0] == switches[1] and switches[0]["global_pe"] is False  # the parent's plain ViT
    # supp §2's stage 1: lr 1e-3 (not scaled by batch), batch 512, one epoch, warm-up ratio 0.03
    assert (chat.optim.lr, chat.batch_size, chat.optim.epochs, chat.optim.warmup_epochs) == (1e-3, 512, 1.0, 0.03)
    assert chat.budgets == (2048, 1024, 512)


def test_a_chat_run_loads_the_configured_llm_and_its_parents_encoder_whole(paper):
    job = train_spec(paper, "chat_l")
    assert job["llm"] == "data/checkpoints/llm/mistral-7b-instruct-v0.2" and job["projector"] == "mlp"
    plan = parent_plan(paper.runs, "chat_l")
    assert (plan.classifier, plan.fresh, plan.dropped) == ("load", (), ("distillation_decoders",))
    assert any("chat.llm" in missing for missing in paper.missing_files())


def test_the_chat_protocol_scores_the_benchmarks_test_sets_at_the_tables_settings(paper):
    spec = evaluate_spec(paper, "chat_l/chat")
    assert [(role["role"], role["dataset"], role["splits"][0]) for role in spec["roles"]] == [
        ("mvbench", "mvbench", "test"),
        ("dream1k", "dream1k", "test"),
    ]
    assert [s["key"] for s in spec["settings"]] == ["8x224@2048", "4x224@1024", "2x224@512"]
    assert [s["key"] for s in spec["token_optimization"]] == ["to@2048", "to@1024", "to@512"]
    assert spec["max_new_tokens"] == 512 and "max_videos" not in spec and "clip_cache" not in spec


def test_the_embedded_default_trains_its_llm_on_the_chat_data(tiny):
    job = llm_spec(tiny)
    assert job["manifests"] == {"synth_chat_it": "data/manifests/synth_chat_it.parquet"}
    assert train_spec(tiny, "chat_l")["llm"] == "results/llm/tiny.pt"
    assert job["lineage"] and job["lineage"] != llm_spec(load_config([REPO / "config" / "config.yaml"], {"seed": 1}))["lineage"]


def test_a_run_that_is_the_same_job_at_this_scale_is_trained_once(tiny, paper, tmp_path):
    from flux.errors import ConfigError

    assert "umt_l" not in tiny.selected_runs and tiny.runs["chat_l"].parent == "umt_b"
    assert "umt_l" in paper.selected_runs and paper.runs["chat_l"].parent == "umt_l"
    with pytest.raises(ConfigError, match=r"training.same_runs.umt_l: umt_l and umt_s differ at this scale \(model"):
        load_config([REPO / "config" / "config.yaml"], {"training": {"same_runs": {"umt_l": "umt_s"}}})
    with pytest.raises(ConfigError, match=r"training.same_runs.umt_l: umt_l and umt_b differ at this scale \(model"):
        load_config([REPO / "config" / "config.yaml"], {"models": {"L": "fluxvit_tiny"}})
