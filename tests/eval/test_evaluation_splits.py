"""The split each paper evaluation scores, resolved from config/paper.yaml as the evaluation specs resolve it,
parsed from the real published annotation files (../shared/fixtures/real) and counted against the published
size of that split. MSVD is the case this guards: its 100-video val split must not stand in for the 670-video
test set of the paper's protocol."""

import shutil

import pytest

from flux.config import load_config
from flux.data.annotations import AnnotationFiles, parse
from flux.jobs import evaluation_roles, evaluation_splits
from tests.paths import REPO

# dataset -> (registry annotation role -> fixture file, published size of the evaluated split, where it is published)
CHECKED = {
    "kinetics400": ({"val": "kinetics400/kinetics-400_val.csv"}, 19_906, "the K400 release's validation list"),
    "kinetics600": ({"val": "kinetics600/kinetics-600_val.csv"}, 30_000, "the K600 release's validation list"),
    "ssv2": (
        {"labels": "ssv2/something-something-v2-labels.json", "val": "ssv2/something-something-v2-validation.json"},
        24_777,
        "SSv2 validation",
    ),
    "ucf101": (
        {"classes": "ucf101/classInd.txt", "test": "ucf101/testlist01.txt"},
        3_783,
        "UCF101 testlist01 (split 1)",
    ),
    "msrvtt": ({"test": "msrvtt/MSRVTT_JSFUSION_test.csv"}, 1_000, "MSR-VTT 1k-A"),
    "didemo": ({"test": "didemo/test_data.json", "test_list": "didemo/test_list.txt"}, 1_004, "DiDeMo test"),
    # val_1.json annotates 4,917 videos; the retrieval loaders' list (InternVideo's val_1_list.txt) holds 4,916 of them
    "anet": (
        {"val": "activitynet_captions/val_1.json", "val_ids": "activitynet_captions/val_1_list.txt"},
        4_916,
        "ActivityNet Captions val_1 (retrieval list)",
    ),
    "lsmdc": ({"test": "lsmdc/LSMDC16_challenge_1000_publictect.csv"}, 1_000, "LSMDC 1000-clip test"),
    "msvd": ({"test": "msvd/test_list.txt", "val": "msvd/val_list.txt"}, 670, "MSVD test (JMET-JMDV split)"),
}
# evaluation datasets whose evaluated split has no published annotation file among the fixtures
MISSING = {
    "mit": "Moments in Time validationSet.csv (33,900 videos) is not among the fixtures (only its class lists are)",
    "coin": "COIN.json (test: 2,797 videos) is not among the fixtures (only taxonomy.xlsx is)",
    "mvbench": "MVBench's json/<task>.json (200 questions a task) are not among the fixtures",
    "dream1k": "DREAM-1K's DREAM-1k.jsonl (1,000 videos) is not among the fixtures",
}


@pytest.fixture(scope="module")
def paper():
    return load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"])


def evaluated_splits(config) -> dict[str, list[str]]:
    """dataset -> split preference, for every (run, protocol) a table of the paper configuration evaluates."""
    from flux.jobs import table_evaluations

    found = {}
    for table in config.table_document["tables"]:
        for run, name in table_evaluations(config, table):
            protocol = config.table_document["protocols"][name]
            for role in evaluation_roles(config, run, protocol):
                splits = evaluation_splits(config, role, protocol)
                assert found.setdefault(config.roles[role], splits) == splits, f"{role}: protocols disagree on the split"
    return found


def test_every_evaluation_dataset_is_checked_or_named_missing(paper):
    assert set(evaluated_splits(paper)) == set(CHECKED) | set(MISSING)


@pytest.mark.parametrize("dataset", sorted(CHECKED))
def test_the_evaluated_split_has_its_published_size(paper, dataset, real_fixtures, tmp_path):
    roles, published, where = CHECKED[dataset]
    spec = paper.datasets[dataset]
    for role, fixture in roles.items():
        target = tmp_path / spec.annotation_files[role]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(real_fixtures / fixture, target)
    files = {role: spec.annotation_files[role] for role in roles}
    if dataset == "msvd":  # its captions (AllVideoDescriptions.txt) are not public here: one per listed video
        ids = [line.strip() for name in ("test", "val") for line in (tmp_path / files[name]).read_text().splitlines()]
        captions = tmp_path / spec.annotation_files["captions"]
        captions.write_text("".join(f"{video} a caption\n" for video in ids if video))
        files["captions"] = spec.annotation_files["captions"]
    records = parse(spec.annotation_format, AnnotationFiles(tmp_path, files, spec.annotation_options)).records
    present = {record.split for record in records}
    split = next(split for split in evaluated_splits(paper)[dataset] if split in present)
    assert split == spec.evaluation_split
    assert sum(record.split == split for record in records) == published, f"{dataset}: {where}"
