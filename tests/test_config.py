"""Configuration: the three shipped configs load; every wrong value fails with the key and the fix."""

import re
from pathlib import Path

import pytest
import yaml

from flux.config import ROLE_TASKS, load_config
from flux.errors import ConfigError
from tests.paths import REPO

DEFAULT = REPO / "config" / "config.yaml"
MICRO = REPO / "config" / "micro.yaml"
PAPER = REPO / "config" / "paper.yaml"


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # config paths (registry, paper numbers) are relative to the working directory


def test_default_binds_every_role_to_a_synthetic_dataset():
    config = load_config([DEFAULT])
    assert config.scale == "tiny"
    assert len(config.roles) == 25  # the paper's 22 dataset roles and main Table 10's chat, mvbench, dream1k
    kinds = {config.datasets[d].source_kind for d in config.used_datasets()}
    assert kinds == {"synthetic", "derived"}
    # Kinetics-710 pulls in its three sources
    assert {"synth_k400", "synth_k600", "synth_k700", "synth_k710"} <= set(config.used_datasets())
    assert config.runs["umt_s"].input.spec.valid_shapes()  # the tiny flexible sampler has admissible (T, R)


def test_micro_overlays_the_default():
    config = load_config([DEFAULT, MICRO])
    assert config.scale == "micro"
    assert config.synthetic.count_scale == 0.25
    assert config.roles["k400"] == "synth_k400"  # inherited from the default
    assert config.digest != load_config([DEFAULT]).digest


def test_paper_binds_real_datasets():
    config = load_config([DEFAULT, PAPER])
    assert config.scale == "paper" and config.roles["k710"] == "kinetics710"
    assert config.datasets_of_kind("synthetic") == []
    spec = config.runs["umt_s"].input.spec
    assert spec.tokens(8, 224) == 2048 and (8, 224) in spec.valid_shapes()
    assert sorted(config.datasets_of_kind("derived")) == ["kinetics710"]
    # jobs of hours start cold; the embedded default's (seconds each) fork from the fork server
    assert not config.fork_server and load_config([DEFAULT]).fork_server


def test_later_files_update_nested_keys_and_keep_their_siblings(tmp_path):
    """As Snakemake merges `--configfile A B`: B's `training.workers` replaces A's, A's other training keys stay."""
    later = tmp_path / "later.yaml"
    later.write_text("training: {workers: 3}\n")
    config = load_config(["config/config.yaml", later])
    assert config.training.workers == 3 and config.training.checkpoint_every == 20


def bad(tmp_path: Path, override: dict) -> str:
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(override))
    with pytest.raises(ConfigError) as error:
        load_config([DEFAULT, path])
    return str(error.value)


def test_unknown_dataset_names_the_role(tmp_path):
    message = bad(tmp_path, {"roles": {"k400": "kinetics4000"}})
    assert "roles.k400: unknown dataset 'kinetics4000'" in message and "config/datasets.yaml" in message


@pytest.mark.parametrize(
    ("role", "dataset", "message"),
    [
        ("ucf101", "synth_msrvtt", "roles.ucf101: synth_msrvtt is a video_text dataset; the role ucf101 needs a classification"),
        ("msrvtt", "synth_k400", "roles.msrvtt: synth_k400 is a classification dataset; the role msrvtt needs a video_text"),
        ("coco", "synth_ssv2", "the role coco needs a video_text or image_text dataset"),
    ],
)
def test_a_role_bound_to_a_dataset_of_another_task_names_the_role(tmp_path, role, dataset, message):
    assert message in bad(tmp_path, {"roles": {role: dataset}})


def test_every_role_of_the_schema_has_a_task():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert set(schema["properties"]["roles"]["properties"]) == set(ROLE_TASKS)


def test_files_jobs_need_later_are_named_with_their_key_when_missing(tmp_path):
    """A fresh checkout plans the paper's jobs (the files come from `dvc pull`), but says which are missing."""
    config = load_config([PAPER], {"paths": {"data": str(tmp_path)}})
    missing = "\n".join(config.missing_files())
    for key in ("teacher.weights", "teacher.text_encoder", "chat.llm", "checkpoints.files.fluxvit_s14_k400"):
        assert f"{key}: " in missing and "does not exist yet" in missing
    config = load_config(
        [PAPER],
        {
            "teacher": {"weights": str(PAPER), "text_encoder": str(tmp_path)},
            "chat": {"llm": str(tmp_path)},
            "checkpoints": {"files": {"fluxvit_s14_k400": str(PAPER), "fluxvit_b14_k400": str(PAPER)}},
        },
    )
    assert config.missing_files() == []


def bad_run_input(tmp_path: Path, run: str, change: dict) -> str:
    """The error for `runs.<run>.input` changed in a copy of config/runs.yaml (sampling is per run)."""
    document = yaml.safe_load((REPO / "config" / "runs.yaml").read_text())
    document["runs"][run]["input"] = {**document["runs"][run].get("input", {}), **change}
    runs = tmp_path / "runs.yaml"
    runs.write_text(yaml.safe_dump(document))
    return bad(tmp_path, {"runs_file": str(runs)})


def test_empty_frame_range(tmp_path):
    message = bad_run_input(tmp_path, "pt_flux_fmax32", {"frames": [8, 8, 2]})
    assert message.startswith("runs.pt_flux_fmax32.input.frames: [8, 8, 2] is an empty range")


def test_token_budget_must_be_positive(tmp_path):
    message = bad_run_input(tmp_path, "pt_flux_thres6144", {"token_threshold": [0, 512]})
    assert message.startswith("runs.pt_flux_thres6144.input.token_threshold: [0, 512]") and "0 < min" in message


def test_no_shape_inside_the_threshold(tmp_path):
    message = bad_run_input(tmp_path, "pt_flux_thres6144", {"token_threshold": [100000, 200000]})
    assert message.startswith("runs.pt_flux_thres6144.input:")


def test_missing_registry_file(tmp_path):
    message = bad(tmp_path, {"registry": "config/nope.yaml"})
    assert "config/nope.yaml does not exist" in message


def test_missing_local_directory(tmp_path):
    message = bad(tmp_path, {"local_paths": {"kinetics400": str(tmp_path / "absent")}})
    assert "local_paths.kinetics400" in message and "does not exist" in message and "youtube_id" in message


def test_local_path_for_a_dataset_without_local_source(tmp_path):
    assert "has no `local` source" in bad(tmp_path, {"local_paths": {"synth_k400": str(tmp_path)}})


def test_unknown_rule_in_resources(tmp_path):
    assert "resources: unknown rule(s) ['trian']" in bad(tmp_path, {"resources": {"trian": {"threads": 2}}})


def test_corpus_with_unbound_role(tmp_path):
    document = yaml.safe_load(DEFAULT.read_text())
    del document["roles"]["coco"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"corpora.corpus_25m: role\(s\) \['coco'\] are not bound"):
        load_config([path])


def test_reversed_duration_range(tmp_path):
    assert "synthetic.duration_s" in bad(tmp_path, {"synthetic": {"duration_s": [5.0, 1.0]}})


def test_schema_errors_name_the_key(tmp_path):
    message = bad(tmp_path, {"scale": "huge"})
    assert "huge" in message and "scale" in message
    assert "count_scale" in bad(tmp_path, {"synthetic": {"count_scale": 0}})


def test_unknown_motion_in_a_synthetic_registry_entry(tmp_path):
    registry = yaml.safe_load((REPO / "config" / "datasets.yaml").read_text())
    registry["datasets"]["synth_k400"]["source"]["synthetic"]["classes"].append("juggling")
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(registry))
    message = bad(tmp_path, {"registry": str(path)})
    assert "datasets.synth_k400.source.synthetic: unknown motion(s) ['juggling']" in message


def test_registry_source_must_be_one_kind(tmp_path):
    registry = yaml.safe_load((REPO / "config" / "datasets.yaml").read_text())
    registry["datasets"]["synth_k400"]["source"]["local"] = {"links": ".", "hint": "x"}
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(registry))
    assert "synth_k400" in bad(tmp_path, {"registry": str(path)})


def test_resource_keys_are_the_workflow_rules():
    """`resources:` keys (flux.verbs.RESOURCE_KEYS) are exactly the rules that read them, each under its own name: every
    `rule_resources("<name>", ...)` of the workflow sits in rule <name> (indented rules, and the training rules
    defined in a loop over the stages, included)."""
    import re

    from flux.train.runs import STAGES
    from flux.verbs import RESOURCE_KEYS
    from tests.workflow_rules import rule_lines

    readers = {}
    for rule, line in rule_lines():
        for name in re.findall(r"rule_resources\(f?\"([\w{}]+)\"", line):
            for stage in STAGES if "{stage}" in name else [None]:
                readers[name.format(stage=stage)] = rule.format(stage=stage)
    assert {name: rule for name, rule in readers.items() if name != rule} == {}
    assert set(RESOURCE_KEYS) == set(readers) | {"default"}


def test_a_seed_replica_differs_only_in_its_seed(tmp_path):
    """runs.<id>.seed offsets the configuration's seed: the replica trains its own trajectory (own lineage)."""
    from flux.jobs import train_spec

    runs = tmp_path / "runs.yaml"
    runs.write_text(
        (REPO / "config" / "runs.yaml").read_text()
        + "  k400_s_seed1: {recipe: finetune_k400_after_k710, parent: k710_s, model: S, seed: 1}\n"
    )
    config = load_config([REPO / "config" / "config.yaml"], {"runs_file": str(runs)})
    original, replica = train_spec(config, "k400_s"), train_spec(config, "k400_s_seed1")
    assert (original["seed"], replica["seed"]) == (0, 1) and original["lineage"] != replica["lineage"]
    assert {key: value for key, value in original["run"].items() if key != "id"} == {
        key: value for key, value in replica["run"].items() if key != "id"
    }


def test_a_key_written_twice_is_an_error_naming_file_and_line(tmp_path):
    """YAML resolves `lr` written twice as last-wins, silently; a `<<` merge may still be overridden."""
    from flux.yamlfiles import read_yaml_file

    path = tmp_path / "runs.yaml"
    path.write_text("recipes:\n  umt:\n    optim:\n      lr: 1.0e-3\n      lr: 1.0e-4\n")
    with pytest.raises(ConfigError, match=r"(?s)runs\.yaml: not valid YAML.*key 'lr' appears twice.*line 5"):
        read_yaml_file(path)
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &base {a: 1, b: 2}\nchild: {<<: *base, b: 3}\n")
    assert read_yaml_file(merged)["child"] == {"a": 1, "b": 3}


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ({"resolution": 0.05}, "maps the paper's 224 px to 14 px, one patch a frame"),
        ({"resolution": 0.125, "frames": 0.001}, r"budgets \[3072, 2048, 1024\] become \[1, 1, 1\] tokens"),
    ],
)
def test_a_unit_scale_that_collapses_the_inputs_is_refused(tmp_path, scale, message):
    assert re.search(message, bad(tmp_path, {"unit_scale": scale}))


def test_results_of_a_run_that_is_another_job_here_are_read_from_that_run():
    """Main Figure 5's AnyRes tuning is FixRes tuning at tiny scale (196-252 px all round to 56 px): the default trains
    f5_anyres_anyres_k400 once and every reader takes f5_anyres_fixres_k400's results from it; paper scale trains both."""
    from flux.jobs import figure_fields

    tiny = load_config([REPO / "config" / "config.yaml"])
    assert "f5_anyres_fixres_k400" not in tiny.selected_runs
    assert tiny.measured_as("f5_anyres_fixres_k400") == "f5_anyres_anyres_k400" == tiny.measured_as("f5_anyres_anyres_k400")
    (panel,) = figure_fields(tiny, "main_figure5")["panels"]
    fixres_tuned, anyres_tuned = (
        panel["metrics"]["AnyRes distilled, FixRes tuned"],
        panel["metrics"]["AnyRes distilled, AnyRes tuned"],
    )
    assert fixres_tuned == anyres_tuned == "results/metrics/f5_anyres_anyres_k400/frames_at_2048.json"
    # a run whose stand-in this configuration does not train is not measured
    narrowed = load_config([REPO / "config" / "config.yaml"], {"training": {"runs": ["k400_s"]}})
    assert narrowed.measured_as("f5_anyres_fixres_k400") is None and narrowed.measured_as("k400_s") == "k400_s"
    paper = load_config([REPO / "config" / "paper.yaml"])
    assert paper.measured_as("f5_anyres_fixres_k400") == "f5_anyres_fixres_k400"


def test_the_end_of_run_check_scores_a_subset_only_in_the_embedded_default():
    from flux.jobs import train_spec

    tiny, paper = load_config([REPO / "config" / "config.yaml"]), load_config([REPO / "config" / "paper.yaml"])
    assert train_spec(tiny, "k400_s")["validation_videos"] == 64 and "validation_videos" not in train_spec(tiny, "umt_s")
    assert "validation_videos" not in train_spec(paper, "k400_s")  # paper scale: the whole validation split
