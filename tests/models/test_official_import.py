"""`flux import` of an official FluxViT checkpoint through the registry, against the official model's logits.

The fixture (benchmarks/official_checkpoint_fixture.py, run by hand on an OpenGVLab/FluxViT snapshot) is the
official FluxViT class at this registry's `fluxvit_tiny` shape with fixed random weights, saved as the official
training script saves it (`model`, `epoch`, an argparse `args`; fp16 tensors), and the official logits of each
output head on an unmasked and a masked input. Here the file goes through a registry entry of a configuration
overlay, the import job spec, the import, and evaluation's own model loader.
"""

import argparse
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from flux.config import load_config
from flux.data.index import MANIFEST_SCHEMA, ManifestInfo, write_manifest
from flux.data.transforms import EvalTransform
from flux.errors import CheckpointError, ChecksumMismatchError, ConfigError, FluxError
from flux.eval.runner import check_classes, eval_transform, load_model
from flux.jobs import import_spec
from flux.models.import_spec import ImportSpec
from flux.models.importing import import_checkpoint
from tests.paths import REPO

FIXTURES = Path(__file__).parent / "fixtures"
CHECKPOINT = FIXTURES / "official_fluxvit_tiny.pth"
OUTPUTS = torch.load(FIXTURES / "official_fluxvit_tiny_outputs.pt", weights_only=True)
REGENERATE = "regenerate with benchmarks/official_checkpoint_fixture.py --official <FluxViT/single_modality>"
CLASSES = ["a", "b", "c", "d", "e"]
TOLERANCE = 1e-4


def entry(**changes):
    base = {
        "model": "fluxvit_tiny",
        "classifier": {"role": "k400"},
        "heads": {0: 3072, 1: 2048, 2: 1024},
        "source": {"local": "the test fixture"},
    }
    return {**base, **changes}


def configure(tmp_path, name="official_tiny", file=CHECKPOINT, classes=CLASSES, **changes):
    """An embedded-default configuration with one registry entry of its own, and the label manifest of k400."""
    overrides = {
        "paths": {"data": str(tmp_path / "data"), "results": str(tmp_path / "results"), "logs": str(tmp_path / "logs")},
        "unit_scale": {"frames": 1.0, "resolution": 1.0},
        "training": {"same_runs": None},  # the default's same jobs are the same only at its own unit scale
        "checkpoints": {"entries": {name: entry(**changes)}, "evaluate": [name], "files": {name: str(file)} if file else {}},
    }
    config = load_config([REPO / "config" / "config.yaml"], overrides)
    info = ManifestInfo("synth_k400", "video", "classification", "kinetics_csv", list(classes), False, False, None)
    manifest = config.manifest_path(config.roles["k400"])
    manifest.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(MANIFEST_SCHEMA.empty_table().to_pandas(), info, manifest)
    return config, import_spec(config, name)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("import")
    config, job = configure(tmp_path)
    summary = import_checkpoint(ImportSpec.from_dict(job))
    model, payload = load_model(Path(job["checkpoint"]))
    return model, payload, summary


@pytest.mark.parametrize("case", OUTPUTS["cases"], ids=[case["name"] for case in OUTPUTS["cases"]])
def test_imported_logits_are_the_official_ones(imported, case):
    model, _, _ = imported
    assert OUTPUTS["model"] == "fluxvit_tiny", REGENERATE
    with torch.no_grad():
        tokens = model.forward_features(case["video"].float(), case["budget"]).tokens
        logits = torch.cat([model.forward_head(tokens, head) for head in range(3)])
    difference = (logits - case["logits"]).abs().max().item()
    assert difference < TOLERANCE, f"{case['name']}: max |logit difference| {difference:.2e}; {REGENERATE}"


def test_the_import_records_what_evaluation_needs(imported):
    _, payload, summary = imported
    metadata = payload["metadata"]
    assert metadata["trained_heads"] == [{"head": 0, "tokens": 3072}, {"head": 1, "tokens": 2048}, {"head": 2, "tokens": 1024}]
    assert (metadata["num_classes"], metadata["class_names"], metadata["selector"]) == (5, CLASSES, "official")
    digest = hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest()
    assert summary["imported"] == {"url": None, "file": str(CHECKPOINT), "sha256": digest, "verified": False}
    assert all(value.dtype == torch.float32 for value in payload["model"].values() if value.is_floating_point())


def test_a_published_sha256_is_checked(tmp_path):
    digest = hashlib.sha256(CHECKPOINT.read_bytes()).hexdigest()
    _, job = configure(tmp_path, source={"local": "the test fixture", "sha256": digest})
    assert import_checkpoint(ImportSpec.from_dict(job))["imported"]["verified"] is True


def test_a_local_file_with_another_sha256_is_refused_and_left_alone(tmp_path):
    _, job = configure(tmp_path, source={"local": "the test fixture", "sha256": "0" * 64})
    with pytest.raises(ChecksumMismatchError, match="left where it is"):
        import_checkpoint(ImportSpec.from_dict(job))
    assert CHECKPOINT.is_file() and not Path(job["checkpoint"]).exists()


def test_a_downloaded_file_with_another_sha256_is_kept_aside(tmp_path):
    _, job = configure(tmp_path, file=None, source={"url": CHECKPOINT.as_uri(), "sha256": "0" * 64})
    with pytest.raises(ChecksumMismatchError, match="moved aside"):
        import_checkpoint(ImportSpec.from_dict(job))
    kept = list(Path(job["download_dir"]).glob("*.sha256-mismatch"))
    assert len(kept) == 1 and not Path(job["checkpoint"]).exists()


def test_a_file_for_another_architecture_names_the_keys_and_the_fitting_one(tmp_path):
    _, job = configure(tmp_path, model="fluxvit_tiny_b")
    with pytest.raises(CheckpointError, match=r"does not fit fluxvit_tiny_b.*fit fluxvit_tiny\b.*patch_embed"):
        import_checkpoint(ImportSpec.from_dict(job))


def test_a_missing_local_file_says_how_to_get_it(tmp_path):
    _, job = configure(tmp_path, file=tmp_path / "absent.pth")
    with pytest.raises(FluxError, match="checkpoints.files.official_tiny: .*absent.pth does not exist; the test fixture"):
        import_checkpoint(ImportSpec.from_dict(job))
    _, job = configure(tmp_path, file=None)
    with pytest.raises(FluxError, match="cannot be downloaded: the test fixture; .*checkpoints.files.official_tiny"):
        import_checkpoint(ImportSpec.from_dict(job))


def fixture_variant(path: Path, change) -> Path:
    """The official fixture file with `change(payload)` applied, saved at `path`."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        payload = torch.load(CHECKPOINT, weights_only=True)
    change(payload)
    torch.save(payload, path)
    return path


def test_a_kinetics710_classifier_without_a_head_map_names_the_fix(tmp_path):
    def k710(payload):
        for head in range(3):
            payload["model"][f"head.{head}.weight"] = torch.zeros(710, 128)
            payload["model"][f"head.{head}.bias"] = torch.zeros(710)

    _, job = configure(tmp_path, file=fixture_variant(tmp_path / "k710.pth", k710))
    with pytest.raises(CheckpointError, match="710 classes, synth_k400 .* has 5; a Kinetics-710 classifier needs a head map"):
        import_checkpoint(ImportSpec.from_dict(job))


def test_a_file_holding_other_pickled_objects_is_refused_with_the_reason(tmp_path):
    pickled = fixture_variant(tmp_path / "pickled.pth", lambda payload: payload.update(args=Path("/somewhere")))
    _, job = configure(tmp_path, file=pickled)  # a Path: a class weights-only loading does not allow
    refused = r"not a weights-only checkpoint: it holds a pickled pathlib.PosixPath, .*weights_only=False"
    with pytest.raises(CheckpointError, match=refused):
        import_checkpoint(ImportSpec.from_dict(job))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "fluxvit_huge"}, "model: 'fluxvit_huge' is not in the model registry"),
        ({"heads": {0: 2048}, "model": "internvideo2_tiny", "model_options": {"rope": True, "bogus": 1}}, "model_options"),
        ({"model": "internvideo2_tiny", "heads": {1: 2048}}, r"head\(s\) \[1\] do not exist on internvideo2_tiny"),
        ({"classifier": {"role": "msrvtt"}}, "bound to synth_msrvtt, a video_text dataset"),
        ({"classifier": {"role": "k400", "head_map": "k600"}}, "not built by the kinetics710 builder"),
        (
            {"published": [{"protocol": "model_zoo", "setting": "16x224@2048", "metric": "top1", "value": 1, "source": "x"}]},
            "has no setting '16x224@2048'",
        ),
    ],
)
def test_bad_registry_entries_fail_when_the_configuration_loads(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        configure(tmp_path, **changes)


def test_a_configuration_may_not_redefine_a_registry_entry(tmp_path):
    with pytest.raises(ConfigError, match=r"\['fluxvit_s14_k400'\] are already defined in config/checkpoints.yaml"):
        configure(tmp_path, name="fluxvit_s14_k400")


def test_only_what_shapes_the_weights_reimports(tmp_path):
    """Editing a title, a hint or a published number must not re-import and re-evaluate a model (Snakemake reruns
    a job whose params change); another head layout or source must."""
    lineage = configure(tmp_path)[1]["lineage"]
    published = [{"protocol": "model_zoo", "setting": "8x224@2048", "metric": "top1", "value": 1.0, "source": "x"}]
    described = {"title": "renamed", "published": published, "source": {"local": "another hint"}}
    assert configure(tmp_path, **described)[1]["lineage"] == lineage
    assert configure(tmp_path, heads={1: 2048})[1]["lineage"] != lineage
    assert configure(tmp_path, preprocessing={"mean": [0.5, 0.5, 0.5]})[1]["lineage"] != lineage


def test_evaluation_refuses_a_classifier_of_other_classes_or_order(imported, tmp_path):
    _, payload, _ = imported
    job = SimpleNamespace(eval="official_tiny/model_zoo", task="classification", checkpoint="final.pt")  # what it reads
    for classes, accepted in ((CLASSES, True), (CLASSES[::-1], False), (CLASSES[:4], False)):
        info = ManifestInfo("other", "video", "classification", "kinetics_csv", classes, False, False, None)
        manifest = tmp_path / "other.parquet"
        write_manifest(MANIFEST_SCHEMA.empty_table().to_pandas(), info, manifest)
        role = SimpleNamespace(dataset="other", manifest=str(manifest))
        if accepted:
            check_classes(job, role, payload["metadata"])
        else:
            with pytest.raises(FluxError, match="a classifier scores only its own label set, in its order"):
                check_classes(job, role, payload["metadata"])


def test_the_normalisation_the_weights_expect_is_the_one_evaluation_applies():
    assert eval_transform({}) == EvalTransform()
    transform = eval_transform({"preprocessing": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}})
    assert (transform.mean, transform.std) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_a_kinetics710_classifier_is_cut_to_the_role_classes_through_the_head_map(tmp_path):
    """With `head_map`, the classifier rows are those the Kinetics-710 build's head map names for the role's dataset,
    in the role's class order (here a reversal of the fixture's 5 rows)."""
    config, job = configure(tmp_path, classifier={"role": "k400", "head_map": "k710"})
    head_map = config.head_map_path(config.roles["k710"])
    head_map.parent.mkdir(parents=True, exist_ok=True)
    head_map.write_text('{"synth_k400": [4, 3, 2, 1, 0]}')
    summary = import_checkpoint(ImportSpec.from_dict(job))
    assert "sliced" in summary["load_report"]
    model, _ = load_model(Path(job["checkpoint"]))
    case = OUTPUTS["cases"][0]
    with torch.no_grad():
        logits = model.forward_head(model.forward_features(case["video"].float(), case["budget"]).tokens, 0)
    assert torch.allclose(logits, case["logits"][: len(logits)].flip(1), atol=TOLERANCE)
