"""FluxViT-S with the 'official' selector against the released code's outputs, without the released code.

The fixture holds the official FluxViT's logits and kept tokens on seeded random weights and videos
(written by `benchmarks/official_parity.py --official ... --write-fixture`, which also holds the recipe).
A sample's logits depend on its own tokens only, so the logits are checked on the first sample (the FluxViT-S
forwards take most of the run time); the kept tokens of both samples are checked exactly.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from tests.paths import REPO

FIXTURE = Path(__file__).parent / "fixtures" / "official_parity.json"
TOLERANCE = 1e-4
REGENERATE = "regenerate with benchmarks/official_parity.py --official <FluxViT/single_modality> --write-fixture"


def _load_parity():
    """The benchmark script as a module (benchmarks/ is not a package): it holds the weight and video recipe."""
    spec = importlib.util.spec_from_file_location("official_parity", REPO / "benchmarks" / "official_parity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


parity = _load_parity()
RECORD = json.loads(FIXTURE.read_text())
RECIPE = RECORD["recipe"]
CASES = {case["name"]: case for case in RECORD["cases"]}


def case_of(record: dict):
    return parity.Case(**{key: record[key] for key in ("name", "frames", "size", "budget", "head")})


def video_of(case) -> torch.Tensor:
    return parity.seeded_video(case, RECIPE["seed"], RECIPE["batch"])


@pytest.fixture(scope="module")
def model():
    assert (RECIPE["model"], RECIPE["num_classes"]) == (parity.MODEL, parity.NUM_CLASSES), REGENERATE
    return parity.build_ours(RECIPE["seed"])


def official_kept(record: dict) -> torch.Tensor | None:
    return None if record["kept"] is None else parity.unpack_kept(record["kept"], case_of(record).patches)


@pytest.mark.parametrize("name", CASES)
def test_kept_tokens_are_the_official_ones(model, name):
    record = CASES[name]
    case, expected = case_of(record), official_kept(record)
    assert case.masking_ratio == record["masking_ratio"]
    if expected is None:
        assert case.patches <= case.budget, "the official code selected nothing here"
        return
    with torch.no_grad():
        kept = model.selector(model.embed(video_of(case)), case.budget)
    assert kept.shape == expected.shape, f"keep count {kept.shape[1]}, official {expected.shape[1]}"
    assert torch.equal(kept, expected), (
        f"{int((kept != expected).any(dim=1).sum())} samples keep other tokens than the official code; the fixture is "
        f"from torch {RECORD['torch']}, whose argsort may order ties otherwise than yours: {REGENERATE}"
    )


@pytest.mark.parametrize("name", CASES)
def test_logits_match_the_official_model(model, name):
    record = CASES[name]
    case, expected = case_of(record), official_kept(record)
    with torch.no_grad():
        features = model.forward_features(video_of(case)[:1], case.budget)
        logits = model.forward_head(features.tokens, case.head)
    if expected is None:
        assert features.kept is None
    else:
        assert torch.equal(features.kept, expected[:1])
    difference = (logits[0] - torch.tensor(record["logits"][0])).abs().max().item()
    assert difference < TOLERANCE, f"max |logit difference| {difference:.2e} with the official model"
