"""Synthetic datasets: every layout parses with the real parser, counts are as configured, bytes are
deterministic, and the Kinetics-like family gives the Kinetics-710 builder hand-countable overlaps."""

import hashlib
from pathlib import Path

import pytest

from flux.data.annotations import AnnotationFiles, parse
from flux.data.kinetics710 import KineticsRelease, build_kinetics710
from flux.data.spec import SyntheticSettings, load_registry
from flux.data.synthetic import generate, youtube_like_id
from tests.paths import REPO

REGISTRY = load_registry(REPO / "config" / "datasets.yaml")
FAST = SyntheticSettings(seed=0, count_scale=1.0, duration_s=(1.0, 1.0), fps=(8, 8))  # 8-frame videos


def build(dataset: str, root: Path, settings: SyntheticSettings = FAST):
    spec = REGISTRY[dataset]
    counts = generate(spec, settings, root)
    parsed = parse(spec.annotation_format, AnnotationFiles(root, spec.annotation_files, spec.annotation_options))
    return spec, counts, parsed


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


# expected (records per split, classes, texts) from config/datasets.yaml at count_scale 1
EXPECTED = {
    "synth_ssv2": ({"train": 8 * 10, "val": 8 * 38}, 8),
    "synth_coin": ({"train": 6 * 8, "test": 6 * 3}, 6),
    "synth_ucf101": ({"train": 8 * 8, "test": 8 * 3}, 8),
    "synth_mit": ({"train": 8 * 6, "val": 8 * 3}, 8),
    "synth_msrvtt": ({"test": 32}, None),
    "synth_didemo": ({"test": 24}, None),
    "synth_anet": ({"val": 24}, None),
    "synth_lsmdc": ({"test": 32}, None),
    "synth_msvd": ({"test": 24}, None),
    "synth_smit": ({"train": 40}, None),
    "synth_coco": ({"train": 64}, None),
}


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_layout_parses_with_the_real_parser(dataset, tmp_path):
    spec, counts, parsed = build(dataset, tmp_path)
    splits, classes = EXPECTED[dataset]
    observed = {split: sum(r.split == split for r in parsed.records) for split in splits}
    assert observed == splits and len(parsed.records) == sum(splits.values())
    assert counts["media"] == len(parsed.records)
    if classes is None:
        assert parsed.class_names is None and all(r.captions for r in parsed.records)
        low, high = spec.synthetic.captions
        assert all(low <= len(r.captions) <= high for r in parsed.records)
    else:
        assert len(parsed.class_names) == classes
        assert {r.label_name for r in parsed.records} == set(parsed.class_names)
    media_root = tmp_path / spec.media_dir
    media_files = [p for p in media_root.rglob("*") if p.is_file()]
    assert len(media_files) == len(parsed.records)  # one file per item, and nothing half-written left over
    assert not list(tmp_path.rglob(".*.tmp"))


def test_generation_is_deterministic(tmp_path):
    quarter = SyntheticSettings(seed=0, count_scale=0.25, duration_s=(1.0, 1.0), fps=(8, 8))  # 96 of the 384 videos
    build("synth_ssv2", tmp_path / "a", quarter)
    build("synth_ssv2", tmp_path / "b", quarter)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    build("synth_ssv2", tmp_path / "c", SyntheticSettings(seed=1, count_scale=0.25, duration_s=(1.0, 1.0), fps=(8, 8)))
    assert tree_digest(tmp_path / "a") != tree_digest(tmp_path / "c")


def test_paragraph_datasets_have_one_sentence_per_step(tmp_path):
    _, _, parsed = build("synth_didemo", tmp_path)
    assert all(2 <= len(r.captions) <= 4 for r in parsed.records)
    # a third of the DiDeMo names carry another extension than the file (.mov for an .mp4), as released
    assert sum(r.media.endswith(".mov") for r in parsed.records) == 8


def test_count_scale_keeps_one_item_per_class_and_split(tmp_path):
    _, _, parsed = build("synth_ucf101", tmp_path, SyntheticSettings(count_scale=0.01, duration_s=(1.0, 1.0), fps=(8, 8)))
    assert len(parsed.records) == 8 * 2


def test_kinetics_family_overlaps_by_hand(tmp_path):
    """Tiny-scale index ranges (config/datasets.yaml), per class:
    K400 (8 classes)  train 0..9,  val 10..47
    K600 (10 classes) train 2..11, val 14..17   (renames growing -> expanding)
    K700 (12 classes) train 6..15, val 18..21   (renames rotating counterclockwise -> rotating anticlockwise)
    Union of train ids: 8 shared classes x 16 (0..15) + 2 K600 classes x 14 (2..15) + 2 K700-only x 10 = 176.
    Dropped (in some val split): shared 10..15 -> 6 x 8 = 48; appearing/disappearing 14..15 -> 2 x 2 = 4; total 52.
    Train rows 80 + 100 + 120 = 300, so 300 - 176 = 124 duplicate rows. Val: K400's 8 x 38 = 304, of which the
    shared classes' K600 and K700 val clips (14..21) are part; new are appearing/disappearing 14..17 (K600) and
    18..21 (K700) and the K700-only classes' 18..21: 304 + 8 + 8 + 8 = 328 distinct clips."""
    releases = []
    for name in ("synth_k400", "synth_k600", "synth_k700"):
        spec, _, parsed = build(name, tmp_path / name)
        releases.append(KineticsRelease(name, parsed.class_names, parsed.records))
    assert "expanding" in releases[1].class_names and "rotating anticlockwise" in releases[2].class_names
    derived = REGISTRY["synth_k710"].derived
    result = build_kinetics710(releases, derived.renames)
    report = result.report
    assert report["train_union_unique_ids"] == 176
    assert report["train_ids_dropped_for_overlap"] == 52
    assert report["train_duplicate_rows_removed"] == 124
    assert len(result.train) == 124 and len(result.val) == 328
    assert len(result.class_names) == 12 and result.class_names[:8] == releases[0].class_names
    # the same (motion, index) is the same clip: identical id and identical bytes in two releases
    video = youtube_like_id("kinetics|moving left|5")
    k400 = next((tmp_path / "synth_k400" / "media").glob(f"{video}_*.mp4"))
    k600 = tmp_path / "synth_k600" / "media" / k400.name
    assert k400.read_bytes() == k600.read_bytes()


def test_appearance_bias_ties_a_typical_scene_to_each_class():
    """Bias 1: every item shows its motion's typical object and background; bias 0: the same items draw their own
    appearance (other random streams untouched: only the object's looks change)."""
    from dataclasses import replace

    from flux.data.scenes import BACKGROUNDS, COLOURS, MOTIONS, SHAPES
    from flux.data.synthetic import Item, Writer

    spec = REGISTRY["synth_k400"]
    items = [
        Item(f"kinetics|{motion}|{index}", "x.mp4", (motion,), "train") for motion in spec.synthetic.classes for index in range(6)
    ]

    def scenes(bias: float):
        biased = replace(spec, synthetic=replace(spec.synthetic, appearance_bias=bias))
        writer = Writer(biased, FAST, Path("unused"))
        return [writer.scene(item) for item in items]

    typical, free = scenes(1.0), scenes(0.0)
    for item, scene, other in zip(items, typical, free):
        index = MOTIONS.index(item.motions[0])
        assert (scene.appearance.colour, scene.appearance.shape) == (list(COLOURS)[index % 13], SHAPES[index % 7])
        assert scene.appearance.background == BACKGROUNDS[index % 4]
        assert (scene.appearance.texture, scene.appearance.size, scene.video, scene.seed) == (
            other.appearance.texture,
            other.appearance.size,
            other.video,
            other.seed,
        )
    assert len({(s.appearance.colour, s.appearance.shape) for s in free}) > 20  # class-independent without bias
    assert len({(s.appearance.colour, s.appearance.shape) for s in typical}) == len(spec.synthetic.classes)
    scenes_of_class = {(s.appearance.background, s.appearance.background_colours) for s in typical}
    assert len(scenes_of_class) == len(spec.synthetic.classes)  # one fixed scene per class, distinct ones


def test_appearance_bias_is_refused_for_multi_step_layouts():
    from flux.data.spec import dataset_spec_from_entry
    from flux.errors import ConfigError

    entry = dict(REGISTRY["synth_coin"].raw)
    entry["source"] = {"synthetic": {**entry["source"]["synthetic"], "appearance_bias": 0.5}}
    with pytest.raises(ConfigError, match="appearance_bias"):
        dataset_spec_from_entry("synth_coin", entry)
