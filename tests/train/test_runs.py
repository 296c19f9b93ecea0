"""Run resolution: recipes, unit scaling, heads per budget, config errors naming the run and key."""

import pytest
import yaml

from flux.config import load_config
from flux.errors import ConfigError
from flux.train.runs import expand, run_from_dict, run_to_dict
from flux.units import UnitScale
from tests.paths import REPO


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_unit_scale_by_hand():
    scale = UnitScale(frames=0.5, resolution=0.5)
    # 8 x 224^2 = 8 x 16^2 = 2048 tokens -> 4 x 112^2 = 4 x 8^2 = 256 = 2048 / 8
    assert (scale.frame(8), scale.pixels(224), scale.tokens(2048)) == (4, 112, 256)
    assert scale.pixels(168) == 84 and scale.pixels(280) == 140 and scale.tokens(3072) == 384


def test_recipes_chain_and_runs_override():
    recipes = {"base": {"stage": "umt", "optim": {"lr": 1.0, "epochs": 10}}, "short": {"recipe": "base", "optim": {"epochs": 2}}}
    assert expand("r", {"recipe": "short", "optim": {"lr": 3.0}}, recipes) == {"stage": "umt", "optim": {"lr": 3.0, "epochs": 2}}
    with pytest.raises(ConfigError, match="runs.r.recipe: unknown recipe 'nope'"):
        expand("r", {"recipe": "nope"}, recipes)
    with pytest.raises(ConfigError, match="cycle"):
        expand("r", {"recipe": "a"}, {"a": {"recipe": "b"}, "b": {"recipe": "a"}})


def test_paper_and_tiny_resolutions_of_one_run():
    paper = load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"]).runs["k400_s"]
    tiny = load_config([REPO / "config" / "config.yaml"]).runs["k400_s"]
    # supp Table 6: K400 stage of FluxViT-S after K710, 5 epochs, batch 512, lr 2e-4, layer decay 0.75
    assert (paper.model, paper.optim.epochs, paper.batch_size, paper.base_lr, paper.optim.layer_decay) == (
        "fluxvit_s",
        5,
        512,
        2e-4,
        0.75,
    )
    assert paper.budgets == (3072, 2048, 1024) and paper.heads == (0, 1, 2) and paper.method == "multi" and paper.align
    assert (paper.input.spec.token_min, paper.input.spec.token_max) == (2048, 4096)
    assert paper.input.spec.frames == tuple(range(4, 26, 2)) and paper.input.spec.resolutions == (168, 196, 224, 252)
    assert paper.datasets == ("kinetics400",) and paper.head_map == "kinetics710" and paper.parent == "k710_s"
    # tiny: frames / 2, pixels / 4, tokens / 32; 196 and 252 px round to 56 (4 patches), so two resolutions
    assert tiny.model == "fluxvit_tiny" and tiny.budgets == (96, 64, 32) and tiny.datasets == ("synth_k400",)
    assert tiny.input.spec.resolutions == (42, 56) and (tiny.input.spec.token_min, tiny.input.spec.token_max) == (64, 128)


def test_config_replacements_by_stage_then_recipe(tmp_path):
    """training.stages: a stage's values, then (more specific) a recipe's, then (most specific) a run's, over
    config/runs.yaml."""
    stages = {
        "finetune": {"epochs": 6, "batch_size": 8, "augment": {"scale": [0.5, 1.0], "rand_augment": None, "mixup": 0.0}},
        "ablation_finetune": {"epochs": 3},
        "umt": {"epochs": 2},
        "umt_ablation": {"epochs": 1.5},
        "pt_vit_tube": {"epochs": 4, "warmup_epochs": 0.5},
    }
    replacements = tmp_path / "stages.yaml"
    replacements.write_text(yaml.safe_dump({"training": {"stages": stages}}))
    runs = load_config([REPO / "config" / "config.yaml", replacements]).runs
    main, ablation = runs["k400_s"], runs["ft_flux_single_k400"]
    assert (main.optim.epochs, main.batch_size, ablation.optim.epochs, ablation.batch_size) == (6, 8, 3, 8)
    for run in (main, ablation):  # the stage's augmentation merged over the recipe's
        assert run.augment["mixup"] == 0.0 and run.augment["rand_augment"] is None and run.augment["scale"] == [0.5, 1.0]
        assert run.augment["crop"] == "random_resized"
    assert runs["umt_s"].optim.epochs == 2 and runs["pt_vit_random"].optim.epochs == 1.5
    assert (runs["pt_vit_tube"].optim.epochs, runs["pt_vit_tube"].optim.warmup_epochs) == (4, 0.5)
    assert runs["pt_vit_tube"].batch_size == runs["pt_vit_random"].batch_size  # the rest as its recipe's
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"training": {"stages": {"finetuning": {"epochs": 1}}}}))
    with pytest.raises(ConfigError, match=r"training.stages: \['finetuning'\] are neither stages"):
        load_config([REPO / "config" / "config.yaml", bad])


def test_heads_follow_the_budgets():
    runs = load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"]).runs
    assert runs["ft_flux_single_k400"].heads == (1,)  # Flux-Single at 2048 uses the 2048-token head
    assert runs["t1_direct8"].budgets == () and runs["t1_direct8"].heads == (0,)  # one-head plain ViT
    assert runs["ft_flux_vanilla_k400"].heads == (1,)  # a fixed 8x224^2 input is 2048 tokens
    assert runs["umt_s"].heads == (0, 1, 2) and runs["umt_s"].teacher_budget == 2048
    assert runs["pt_vit_gpe"].model_options["global_pe"] and not runs["pt_vit_gpe"].model_options["local_pe"]


def test_every_run_round_trips_through_a_job_spec():
    for run in load_config([REPO / "config" / "config.yaml"]).runs.values():
        assert run_from_dict(run_to_dict(run)) == run


def bad_runs(tmp_path, change) -> str:
    document = yaml.safe_load((REPO / "config" / "runs.yaml").read_text())
    change(document)
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(document))
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"runs_file": str(path)}))
    with pytest.raises(ConfigError) as error:
        load_config([REPO / "config" / "config.yaml", override])
    return str(error.value)


def test_run_errors_name_the_run_and_key(tmp_path):
    def empty_frames(document):
        document["runs"]["pt_flux_fmax32"]["input"]["frames"] = [8, 8, 2]

    assert "runs.pt_flux_fmax32.input.frames: [8, 8, 2] is an empty range" in bad_runs(tmp_path, empty_frames)

    def zero_threshold(document):
        document["runs"]["pt_flux_thres6144"]["input"]["token_threshold"] = [0, 100]

    assert "runs.pt_flux_thres6144.input.token_threshold" in bad_runs(tmp_path, zero_threshold)

    def unknown_parent(document):
        document["runs"]["k400_s"]["parent"] = "k710_xl"

    assert "runs.k400_s.parent: unknown run 'k710_xl'" in bad_runs(tmp_path, unknown_parent)

    def two_budget_multi(document):
        document["runs"]["k400_s"]["budgets"] = [2048, 1024]

    assert "runs.k400_s.budgets: Flux-Multi takes three budgets" in bad_runs(tmp_path, two_budget_multi)

    def unknown_selector(document):
        document["runs"]["pt_vit_tube"]["selector"] = "tubular"

    assert "runs.pt_vit_tube.selector: unknown selector 'tubular'" in bad_runs(tmp_path, unknown_selector)

    def unbound_role(document):
        document["runs"]["coin_s"]["data"] = {"role": "hacs"}

    assert "runs.coin_s.data: role(s) ['hacs'] are not bound" in bad_runs(tmp_path, unbound_role)


def test_training_runs_selection_adds_what_they_need():
    config = load_config([REPO / "config" / "config.yaml", REPO / "config" / "micro.yaml"])
    assert set(config.selected_runs) == {"clip2_s", "k400_s", "clip1_s", "k710_s", "umt_s", "teacher"}


def test_a_run_spec_changes_exactly_when_it_or_an_ancestor_or_its_data_changes():
    from flux.jobs import train_spec

    base = load_config([REPO / "config" / "config.yaml"])
    specs = {run: train_spec(base, run) for run in ("teacher", "umt_s", "k710_s", "k400_s", "ssv2_s", "pt_vit_vanilla")}

    def changed(overrides: dict) -> set[str]:
        config = load_config([REPO / "config" / "config.yaml"], overrides)
        return {run for run, spec in specs.items() if train_spec(config, run) != spec}

    # the teacher reaches every Flux-UMT student and its descendants, through `ancient` checkpoints
    assert changed({"training": {"stages": {"teacher": {"epochs": 7}}}}) == set(specs)
    # K400 fine-tuning after K710 sits under k710_s only
    assert changed({"training": {"stages": {"finetune_k400_after_k710": {"epochs": 9}}}}) == {"k400_s"}
    # synthetic data settings reach every run through its manifests
    assert changed({"synthetic": {"fps": [8, 16]}}) == set(specs)
    # an edit no run depends on retrains nothing
    assert changed({"tables": []}) == set()


def test_learning_rates_follow_the_official_scaling_rule():
    """Base lr x videos per step x clips per video / 256 (FluxViT and InternVideo2 single-modality code); the
    CLIP stages' lr is absolute (InternVideo2's CLIP code); min_lr and warmup_lr scale with the lr."""
    runs = load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"]).runs
    k400, k710, umt, clip = runs["k400_s"], runs["k710_s"], runs["umt_s"], runs["clip1_s"]
    assert (k400.batch_size, k400.repeats, k400.clips_per_step) == (512, 2, 1024)
    assert k400.optim.lr == pytest.approx(8e-4) and k400.optim.min_lr == pytest.approx(4e-6)  # 2e-4 x 512 x 2 / 256
    assert k710.optim.lr == pytest.approx(1.6e-3)  # 2e-4 x 1024 x 2 / 256
    assert runs["coin_s"].optim.lr == pytest.approx(2e-3)  # 5e-4 x 512 x 2 / 256
    assert (umt.repeats, umt.optim.lr, umt.optim.min_lr, umt.optim.warmup_lr) == (1, pytest.approx(8e-3), pytest.approx(8e-5), 0)
    assert (umt.optim.eps, umt.teacher_layer_interval, umt.distill_decoder) == (1e-6, 3.34, "mlp")
    assert (clip.optim.lr, clip.optim.min_lr, clip.lr_reference_batch) == (4e-4, 4e-6, None)
    assert runs["clip2_s"].optim.lr == 2e-5
    k400_augment = k400.augment
    assert (k400_augment["random_erasing"], k400_augment["label_smoothing"], k400_augment["rand_augment"]) == (
        0.25,
        0.1,
        "rand-m7-n4-mstd0.5-inc1",
    )
    tiny = load_config([REPO / "config" / "config.yaml"]).runs["k400_s"]  # tiny lrs are absolute, one clip per video
    assert (tiny.optim.lr, tiny.repeats, tiny.augment["random_erasing"]) == (1e-3, 1, 0.0)


def test_repeated_augmentation_is_refused_where_captions_are_drawn(tmp_path):
    runs = yaml.safe_load((REPO / "config" / "runs.yaml").read_text())
    runs["recipes"]["clip_stage1"]["augment"]["repeats"] = 2
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(runs))
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"runs_file": str(path)}))
    with pytest.raises(ConfigError, match=r"runs\.clip1_[sb]\.augment\.repeats: repeated augmentation is for video-only stages"):
        load_config([REPO / "config" / "config.yaml", override])


def test_a_resolution_off_the_patch_grid_is_an_error_with_the_nearest_valid_ones(tmp_path):
    """230 px would silently become 224 (16 patches): the configuration must name what runs."""
    runs = yaml.safe_load((REPO / "config" / "runs.yaml").read_text())
    runs["runs"]["k400_s"]["input"] = {"method": "fixed", "frames": 8, "resolution": 230}
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(runs))
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({"runs_file": str(path)}))
    with pytest.raises(
        ConfigError,
        match=r"runs\.k400_s\.input\.resolution: 230 px is not a multiple of the patch size 14; the nearest are 224 and 238",
    ):
        load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml", override])
