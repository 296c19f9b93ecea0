"""The recipe table from config/paper.yaml alone: every difference from the paper's or the official value has a
reason written for exactly our value; a changed recipe or a stale reason fails the build naming run and key."""

import csv
import io
import json

import pytest
import yaml

from flux.config import load_config
from flux.errors import ConfigError
from flux.jobs import recipe_table_spec
from flux.tables.job_spec import RecipeJob
from flux.tables.recipe import rows, same
from tests.paths import REPO

PAPER = [REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"]


def recipe_rows(spec: dict):
    return rows(RecipeJob.from_dict(spec))


@pytest.fixture(scope="module")
def paper_rows():
    return recipe_rows(recipe_table_spec(load_config(PAPER)))


def by_key(table):
    return {(row["run"], row["parameter"]): row for row in table}


def test_same_compares_values_not_spellings():
    assert same(1e-3, 0.001) and same([0.9, 0.98], (0.9, 0.98)) and not same([2048], [2048, 1536])
    assert same(None, None) and not same(0.0, None) and same("cosine", "cosine")


def test_every_paper_run_and_parameter_with_its_three_values(paper_rows):
    table = by_key(paper_rows)
    assert {row["run"] for row in paper_rows} >= {"umt_s", "clip2_b", "k400_s", "t1_multi", "ft_flux_res336_ssv2"}
    assert "teacher" not in {row["run"] for row in paper_rows}  # imported at paper scale, not trained
    umt = table["umt_s", "lr_effective"]  # 1e-3 x 2048 / 256
    assert (umt["paper"], umt["official"], umt["ours"], umt["differs_from"]) == ("--", "0.008", "0.008", "")
    teacher_layers = table["umt_s", "teacher_layers"]
    assert teacher_layers["ours"] == teacher_layers["official"] == "[39, 36, 33, 29, 26, 23]"
    assert table["k400_s", "lr_effective"]["ours"] == "0.0008" and table["k400_s", "lr_effective"]["differs_from"] == ""
    epochs = table["k400_b", "epochs"]  # the paper's 3, the released script's 5
    assert (epochs["ours"], epochs["paper"], epochs["official"], epochs["differs_from"]) == ("3", "3", "5", "official")
    assert epochs["reason"] and epochs["official_source"].startswith("k400_single.sh")
    smoothing = table["ssv2_s", "label_smoothing"]
    assert (smoothing["ours"], smoothing["differs_from"]) == ("0.1", "paper")
    assert all(row["reason"] for row in paper_rows if row["differs_from"])


def write_reference(tmp_path, edit) -> str:
    document = yaml.safe_load((REPO / "config" / "recipe_reference.yaml").read_text())
    edit(document)
    path = tmp_path / "reference.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_a_changed_recipe_needs_a_new_reason(tmp_path):
    runs = yaml.safe_load((REPO / "config" / "runs.yaml").read_text())
    runs["recipes"]["finetune"]["augment"]["label_smoothing"] = 0.0  # the paper's value, not the code's 0.1
    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump(runs))
    config = load_config(PAPER, {"runs_file": str(path)})
    with pytest.raises(ConfigError, match=r"run k710_s \(finetune\), label_smoothing: ours 0 is not the value its reason covers"):
        recipe_rows(recipe_table_spec(config))


def test_a_difference_without_reason_or_a_stale_reason_is_an_error(tmp_path):
    spec = recipe_table_spec(load_config(PAPER))

    def drop_reason(document):
        del document["recipes"]["umt"]["epochs"]["reason"]

    with pytest.raises(ConfigError, match=r"run umt_s \(umt\), epochs: ours 100 differs from the official value; give"):
        recipe_rows({**spec, "reference": write_reference(tmp_path, drop_reason)})

    def stale(document):
        document["recipes"]["umt"]["warmup_epochs"]["reason"] = "nothing differs here"

    with pytest.raises(ConfigError, match=r"warmup_epochs: a reason is given but ours equals every reference value"):
        recipe_rows({**spec, "reference": write_reference(tmp_path, stale)})


def test_only_the_runs_a_configuration_trains_have_rows_and_the_others_are_named(tmp_path):
    paper = recipe_table_spec(load_config(PAPER))
    trained = {row["run"] for row in recipe_rows(paper)}
    assert {"pt_flux_single", "ft_flux_single_k400", "umt_l"} <= trained
    assert not trained & {"gradnorm_flux_single", "ft_flux_single_k400_seed1", "teacher"}
    assert paper["excluded"][1:3] == [
        "gradnorm_flux_single (pt_flux_single's job: training.same_runs)",
        "gradnorm_vit_group4 (pt_vit_group4's job: training.same_runs)",
    ]
    assert paper["excluded"][3].startswith("ft_flux_single_k400_seed1, ft_flux_single_k400_seed2, ")
    default = recipe_table_spec(load_config([REPO / "config" / "config.yaml"]))
    assert "umt_l" not in default["runs"] and "umt_l (umt_b's job: training.same_runs)" in default["excluded"]

    def misspelt(document):  # a reference entry may name a run this configuration does not train, not an unknown one
        document["runs"]["ft_flux_single_k400_seeed1"] = {"epochs": {"ours": 1, "reason": "r"}}

    with pytest.raises(ConfigError, match=r"runs \['ft_flux_single_k400_seeed1'\] are not runs of the runs file"):
        recipe_rows({**paper, "reference": write_reference(tmp_path, misspelt)})


def test_below_paper_scale_ours_are_shown_not_compared():
    table = recipe_rows(recipe_table_spec(load_config([REPO / "config" / "config.yaml"])))
    assert not any(row["differs_from"] or row["reason"] for row in table)
    assert by_key(table)["k400_s", "batch_size"]["ours"] == "8"


def test_latex_csv_and_json_through_flux_table(tmp_path):
    from flux.tables.render import run

    spec = {**recipe_table_spec(load_config(PAPER)), "out": str(tmp_path / "recipe.tex")}
    run(spec)
    tex = (tmp_path / "recipe.tex").read_text()
    parsed = list(csv.DictReader(io.StringIO((tmp_path / "recipe.csv").read_text())))
    data = json.loads((tmp_path / "recipe.json").read_text())
    assert len(parsed) == len(data["rows"]) and data["differences"] == sum(1 for row in parsed if row["differs_from"])
    assert "files" not in data and data["differences"] > 0
    assert "\\begin{longtable}" in tex and "$\\neq$official" in tex and "k400\\_single.sh:60" in tex
