"""Which heads a run trains and inherits, which heads evaluation reads, and how a parent checkpoint loads.

The paper-scale checks resolve config/paper.yaml only (no data, no training): every table cell must read a head
its run trained, and no run may start a trained head from random pooling weights."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from flux.config import load_config
from flux.errors import TrainingError
from flux.jobs import evaluate_spec, figure_spec, train_spec
from flux.models.fluxvit import build_model
from flux.models.sizes import nearest_head
from flux.tables.cells import cell_variables
from flux.tables.layout import cell_key, columns_of, fill, row_runs, rows_of
from flux.train.inheritance import ParentPlan, parent_plan, pooling_heads, trained_heads
from flux.train.runs import run_from_dict
from flux.train.stages import load_parent
from tests.paths import REPO


@pytest.fixture(scope="module")
def paper():
    return load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"])


def test_nearest_head_by_hand():
    flux_multi = {0: 3072, 1: 2048, 2: 1024}
    assert [nearest_head(t, flux_multi) for t in (4096, 3072, 2560, 2048, 1536, 1024, 512)] == [0, 0, 0, 1, 1, 2, 2]
    assert nearest_head(512, {1: 2048}) == 1  # one trained head serves every budget


def test_trained_heads_of_the_papers_runs(paper):
    runs = paper.runs
    assert trained_heads(runs, "k400_s") == {0: 3072, 1: 2048, 2: 1024}  # Flux-Multi, K710 heads re-used
    # Flux-CLIP trains the 2048-token head with its text projection; the UMT heads 0/2 never met it
    assert trained_heads(runs, "clip1_s") == trained_heads(runs, "clip2_s") == {1: 2048}
    # single-budget Flux-UMT and the Flux-Single tuning after it train the same (2048-token) head
    assert trained_heads(runs, "pt_flux_single") == trained_heads(runs, "ft_flux_single_k400") == {1: 2048}
    assert trained_heads(runs, "ft_flux_vanilla_k400") == {1: 2048}  # direct at 8x224^2 = 2048 tokens
    assert trained_heads(runs, "t1_direct12") == {0: 3072}  # one-head ViT: head 0, at its 3072 tokens
    # a fine-tuned model's heads are only those trained with its classifier, never the pre-training's
    assert trained_heads(runs, "t5_multi_single") == {1: 2048}
    assert pooling_heads(runs, "pt_flux_multi") == {0: 2048, 1: 1536, 2: 1024}


def test_parent_plans_by_hand(paper):
    runs = paper.runs
    assert parent_plan(runs, "umt_s") is None
    multi = parent_plan(runs, "t1_multi")  # the one-head distilled ViT into a three-head model
    assert multi.parent_heads == 1 and multi.head_sources == {0: 0, 1: 0, 2: 0}
    assert multi.classifier == "fresh" and set(multi.fresh) == {"classifier", "alignment_projectors"}
    assert multi.dropped == ("distillation_decoders",)
    align = parent_plan(runs, "t5_single_multialign")  # Flux-Single pre-training (head 1) -> Flux-Multi tuning
    assert align.head_sources == {0: 1, 2: 1}
    k400 = parent_plan(runs, "k400_s")
    assert (k400.classifier, k400.fresh, k400.dropped, k400.head_sources) == ("remap", (), (), {})
    clip = parent_plan(runs, "clip1_s")
    assert (clip.classifier, clip.fresh, clip.dropped) == ("load", ("text_projection",), ("distillation_decoders",))
    assert ParentPlan.from_dict(json.loads(json.dumps(align.to_dict()))) == align  # survives the job spec


def test_no_trained_head_starts_from_random_pooling(paper):
    """Every head a run trains was trained by its parent chain or is initialised from a head that was."""
    for run_id, run in paper.runs.items():
        plan = parent_plan(paper.runs, run_id)
        if plan is None:
            continue
        inherited = pooling_heads(paper.runs, run.parent) if plan.parent_heads == run.num_heads else {}
        for head in run.heads:
            assert head in inherited or head in plan.head_sources, f"{run_id}: head {head} starts from random weights"


def _cells(config):
    """(where, run, protocol, result key) of every value cell of every grid table."""
    document = config.table_document
    for table, layout in document["tables"].items():
        columns = columns_of(table, layout)
        for row in rows_of(table, layout):
            for column in columns:
                for run in row_runs(row, column):
                    key = fill(cell_key(row, column), cell_variables(row, column), table)
                    yield f"{table} {row.id} {column.id}", run, layout["protocol"], key


def test_every_paper_cell_reads_a_head_its_run_trained(paper):
    """The evaluation specs as Snakemake hands them to `flux evaluate`: each cell's setting or TO search reads a
    trained head, the one trained for the budget nearest the cell's."""
    specs, checked = {}, 0
    for where, run, protocol, key in _cells(paper):
        if (run, protocol) not in specs:
            job = evaluate_spec(paper, f"{run}/{protocol}")
            specs[run, protocol] = {item["key"]: item for item in (*job["settings"], *job["token_optimization"])}
        item = specs[run, protocol].get(key)
        if item is None:  # the paper's empty cell: not evaluated
            continue
        trained = trained_heads(paper.runs, run)
        assert item["head"] in trained, f"{where}: {run} reads head {item['head']}, trained: {sorted(trained)}"
        budget = item["budget"] if item.get("budget") is not None else item["merge"][-1]
        assert trained[item["head"]] == trained[nearest_head(budget, trained)], where
        checked += 1
    assert checked > 700  # main Tables 1-9 and supplementary Tables 1-4 at paper scale
    checked = 0
    for name in paper.figures:  # the evaluations only a figure reads (main Figure 5, the teaser's baselines)
        for panel in figure_spec(paper, name).get("panels", []):
            paths = [*panel["metrics"].values(), *panel.get("baseline_metrics", {}).values()]
            for run in {Path(path).parent.name for path in paths} - {
                run for run, protocol in specs if protocol == panel["protocol"]
            }:
                job = evaluate_spec(paper, f"{run}/{panel['protocol']}")
                trained = trained_heads(paper.runs, run)
                for item in (*job["settings"], *job["token_optimization"]):
                    assert trained.get(item["head"]) == trained[nearest_head(item["budget"], trained)], f"{name}: {run}"
                    checked += 1
    assert checked > 20


def test_train_specs_carry_the_heads_and_the_parent_plan(paper):
    spec = train_spec(paper, "t5_single_multialign")
    assert spec["trained_heads"] == [{"head": 0, "tokens": 3072}, {"head": 1, "tokens": 2048}, {"head": 2, "tokens": 1024}]
    assert spec["parent_plan"]["head_sources"] == {"0": 1, "2": 1}
    assert run_from_dict(spec["run"]).heads == (0, 1, 2)


# -- loading a parent (tiny models) ----------------------------------------------------------------------------
PLAIN = {"dual_patch_norm": False, "global_pe": False, "local_pe": False}


def _save(model, path):
    torch.save({"model": model.state_dict(), "metadata": {}}, path)
    return str(path)


def _job(checkpoint, plan: ParentPlan) -> SimpleNamespace:
    """The fields of a TrainSpec load_parent reads."""
    return SimpleNamespace(parent_checkpoint=checkpoint, parent_plan=plan.to_dict(), head_map=None, head_map_key=None)


class _Run:
    id, parent = "child", "parent"


def test_a_one_head_parent_initialises_all_three_pooling_heads(tmp_path):
    torch.manual_seed(0)
    parent = build_model("fluxvit_tiny", num_classes=0, output_heads=1, **PLAIN)
    child = build_model("fluxvit_tiny", num_classes=5, output_heads=3, **PLAIN)
    plan = ParentPlan("parent", 1, "fresh", {0: 0, 1: 0, 2: 0}, ("classifier", "alignment_projectors"), ())
    load_parent(child, _Run(), _job(_save(parent, tmp_path / "p.pt"), plan))
    source = parent.clip_projector.state_dict()
    for head in range(3):
        copied = child.clip_projector[head].state_dict()
        assert all(torch.equal(copied[key], source[key]) for key in source)
    assert torch.equal(child.blocks[0].attn.qkv.weight, parent.blocks[0].attn.qkv.weight)
    assert child.head[0].weight.shape == (5, child.size.clip_dim)  # the new label set's classifier


def test_keys_outside_the_plan_fail_the_load_with_their_names(tmp_path):
    torch.manual_seed(0)
    parent = build_model("fluxvit_tiny", num_classes=0)
    state = {**parent.state_dict(), "clip_decoder.0.head.weight": torch.zeros(2, 2)}
    path = tmp_path / "p.pt"
    torch.save({"model": state, "metadata": {}}, path)
    child = build_model("fluxvit_tiny", num_classes=0)
    keep_all = ParentPlan("parent", 3, "load", {}, (), ())
    with pytest.raises(TrainingError, match=r"(?s)parent .parent.*unexpected \(1\): clip_decoder\.0\.head\.weight"):
        load_parent(child, _Run(), _job(str(path), keep_all))
    drop_decoders = ParentPlan("parent", 3, "load", {}, (), ("distillation_decoders",))
    load_parent(child, _Run(), _job(str(path), drop_decoders))
    # a classifier the plan says to keep must be there
    torch.save({"model": {k: v for k, v in parent.state_dict().items() if not k.startswith("head.")}, "metadata": {}}, path)
    with pytest.raises(TrainingError, match=r"missing \(6\): head\.0\.weight"):
        load_parent(child, _Run(), _job(str(path), keep_all))


def test_a_head_the_parent_never_trained_starts_from_its_trained_one(tmp_path):
    torch.manual_seed(0)
    parent = build_model("fluxvit_tiny", num_classes=0)
    child = build_model("fluxvit_tiny", num_classes=4)
    plan = ParentPlan("parent", 3, "fresh", {0: 1, 2: 1}, ("classifier",), ())
    load_parent(child, _Run(), _job(_save(parent, tmp_path / "p.pt"), plan))
    trained = parent.clip_projector[1].cross_attn.q.weight
    assert all(torch.equal(child.clip_projector[head].cross_attn.q.weight, trained) for head in range(3))
    assert not torch.equal(parent.clip_projector[0].cross_attn.q.weight, trained)
