"""The chat benchmarks' formats (MVBench, DREAM-1K, VideoChat2 instruction data): parsers on hand-written files in the
published layouts, the prompts, and the synthetic stand-ins written by the generator and read back."""

import json
from pathlib import Path

import pytest

from flux.data.annotations import AnnotationFiles, parse
from flux.data.chat_prompts import mcq_answer, mcq_prompt
from flux.data.datasets import VideoChat
from flux.data.scenes import questions
from flux.data.spec import SyntheticSettings, load_registry
from flux.data.synthetic import generate
from flux.errors import AnnotationError
from tests.media import index_dataset, write_clip

ROOT = Path(__file__).resolve().parents[2]

MVBENCH_ANTONYM = [
    {
        "video": "166583.webm",
        "question": "What is the action performed by the person in the video?",
        "candidates": ["Not sure", "Scattering something down", "Piling something up"],
        "answer": "Piling something up",
    }
]
MVBENCH_SEQUENCE = [
    {
        "video": "ZS9XR.mp4",
        "question": "What happened after the person took the food?",
        "candidates": ["Ate the medicine.", "Tidied up the blanket.", "Put down the cup/glass/bottle.", "Took the box."],
        "answer": "Ate the medicine.",
        "start": 11.1,
        "end": 19.6,
    }
]
DREAM_LINE = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "video", "video": {"video_file": "<placeholder>"}},
                {"type": "text", "text": "Describe the video in detail."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": "",
                    "reference": "A character emerges from smoke and fire, then half knelt on the ground.",
                }
            ],
        },
    ],
    "dataset": "DREAM/movie_animation",
    "task": "video/caption",
    "idx": 1,
    "vid": "1",
    "extra_info": {
        "duration": 5.09,
        "events": ["A character emerges from smoke and fire.", "The character half kneels on the ground."],
        "n_events": 2,
    },
}


def write(root: Path, files: dict[str, object]) -> None:
    for relative, content in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content if isinstance(content, str) else json.dumps(content))


def mvbench_files(tmp_path: Path, sequence=MVBENCH_SEQUENCE) -> AnnotationFiles:
    write(tmp_path, {"json/action_antonym.json": MVBENCH_ANTONYM, "json/action_sequence.json": sequence})
    options = {
        "prefixes": {"action_antonym": "ssv2_video/", "action_sequence": "star/Charades_v1_480/"},
        "bound": ["action_sequence"],
    }
    files = {"action_antonym": "json/action_antonym.json", "action_sequence": "json/action_sequence.json"}
    return AnnotationFiles(tmp_path, files, options)


def test_mvbench_records_carry_the_question_the_prefix_and_the_bound(tmp_path):
    records = parse("mvbench_json", mvbench_files(tmp_path)).records
    antonym, sequence = records
    assert antonym.media == "ssv2_video/166583.webm" and antonym.split == "test" and antonym.start_sec is None
    question = {key: value for key, value in MVBENCH_ANTONYM[0].items() if key != "video"}
    assert json.loads(antonym.details) == {"task": "action_antonym", **question}
    assert sequence.media == "star/Charades_v1_480/ZS9XR.mp4" and (sequence.start_sec, sequence.end_sec) == (11.1, 19.6)
    assert sequence.sample_id == "action_sequence/0"


DROP = object()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"answer": "Ate the cake."}, "is not one of the candidates"),
        ({"start": "soon"}, "start 'soon' is not a finite number"),
        ({"start": DROP}, "is bounded .* but the item has no start/end"),
        ({"end": 5.0}, "end 5.0 is not after start 11.1"),
        ({"candidates": ["only one"], "answer": "only one"}, "at least two option strings"),
        ({"question": ""}, "'question' '' is not a non-empty string"),
    ],
)
def test_mvbench_bad_entries_name_the_file_and_item(tmp_path, change, message):
    entry = {key: value for key, value in {**MVBENCH_SEQUENCE[0], **change}.items() if value is not DROP}
    with pytest.raises(AnnotationError, match=message) as error:
        parse("mvbench_json", mvbench_files(tmp_path, [entry]))
    assert "action_sequence.json: item 0" in str(error.value) or "action_sequence.json:item 0" in str(error.value)


def test_dream1k_reads_the_reference_and_its_events(tmp_path):
    second = {**DREAM_LINE, "vid": "2", "idx": 2, "dataset": "DREAM/youtube"}
    write(tmp_path, {"a/DREAM-1k.jsonl": json.dumps(DREAM_LINE) + "\n\n" + json.dumps(second) + "\n"})
    first, other = parse("dream1k_jsonl", AnnotationFiles(tmp_path, {"test": "a/DREAM-1k.jsonl"})).records
    assert first.media == "1.mp4" and first.captions == (
        "A character emerges from smoke and fire, then half knelt on the ground.",
    )
    assert json.loads(first.details) == {"events": DREAM_LINE["extra_info"]["events"], "subset": "DREAM/movie_animation"}
    assert json.loads(other.details)["subset"] == "DREAM/youtube"


def test_dream1k_without_events_or_with_a_repeated_video_is_refused(tmp_path):
    no_events = {**DREAM_LINE, "extra_info": {"duration": 5.0}}
    write(tmp_path, {"a/d.jsonl": json.dumps(no_events) + "\n"})
    with pytest.raises(AnnotationError, match=r"d.jsonl:1: 'extra_info.events' is not a list"):
        parse("dream1k_jsonl", AnnotationFiles(tmp_path, {"test": "a/d.jsonl"}))
    write(tmp_path, {"a/d.jsonl": (json.dumps(DREAM_LINE) + "\n") * 2})
    with pytest.raises(AnnotationError, match=r"d.jsonl:2: video '1' appears twice"):
        parse("dream1k_jsonl", AnnotationFiles(tmp_path, {"test": "a/d.jsonl"}))


def test_videochat2_instructions_keep_every_turn(tmp_path):
    turns = [
        {"i": "", "q": "Describe the video in detail.", "a": "a red circle moves left"},
        {"i": "sys\n", "q": "Q?", "a": "A."},
    ]
    write(tmp_path, {"a/it.json": [{"video": "x/abc.mp4", "QA": turns}]})
    (record,) = parse("videochat2_it", AnnotationFiles(tmp_path, {"train": "a/it.json"})).records
    assert record.media == "x/abc.mp4" and json.loads(record.details) == {"turns": turns}
    write(tmp_path, {"a/it.json": [{"video": "x/abc.mp4", "QA": [{"i": "", "q": "Q?", "a": ""}]}]})
    with pytest.raises(AnnotationError, match="item 0 turn 0: has an empty question or answer"):
        parse("videochat2_it", AnnotationFiles(tmp_path, {"train": "a/it.json"}))


def test_the_mvbench_prompt_is_videochat2s():
    prompt = mcq_prompt("What color?", ["red", "blue"])
    assert prompt.endswith(
        "addresses the question.\nQuestion: What color?\nOptions:\n(A) red\n(B) blue\nOnly give the best option.\nBest option:("
    )
    assert prompt.startswith("Carefully watch the video")
    assert mcq_answer(["red", "blue"], "blue") == "B) blue"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    registry = load_registry(ROOT / "config" / "datasets.yaml")
    settings = SyntheticSettings(seed=0, count_scale=0.25, duration_s=(1.0, 3.0), fps=(8, 8))
    root = tmp_path_factory.mktemp("synth")
    return {
        name: (registry[name], generate(registry[name], settings, root / name), root / name)
        for name in ("synth_mvbench", "synth_dream1k", "synth_chat_it")
    }


def test_synthetic_mvbench_asks_five_tasks_of_four_option_questions(synthetic):
    spec, counts, root = synthetic["synth_mvbench"]
    records = parse(spec.annotation_format, AnnotationFiles(root, spec.annotation_files, spec.annotation_options)).records
    assert counts["media"] == len(records) == 5 * 4  # five tasks, 16 x 0.25 questions each
    for record in records:
        details = json.loads(record.details)
        assert len(details["candidates"]) == questions.OPTIONS and details["answer"] in details["candidates"]
        assert (root / spec.media_dir / record.media).is_file()
        if details["task"] == "action_count":
            assert details["answer"] in {"1", "2", "3"}  # steps: 3
        if details["task"] == "object_existence":  # distinct objects, each a colour (and texture) and a shape
            assert len(set(details["candidates"])) == 4 and all(len(c.split()) in (2, 3) for c in details["candidates"])


def test_synthetic_dream1k_and_instructions_read_back(synthetic):
    spec, _, root = synthetic["synth_dream1k"]
    records = parse(spec.annotation_format, AnnotationFiles(root, spec.annotation_files)).records
    assert len(records) == 8 and all(json.loads(r.details)["events"] for r in records)
    event = json.loads(records[0].details)["events"][0]
    assert event.startswith("The ") and event.endswith(".")
    spec, _, root = synthetic["synth_chat_it"]
    records = parse(spec.annotation_format, AnnotationFiles(root, spec.annotation_files)).records
    turns = json.loads(records[0].details)["turns"]
    assert turns[0]["q"] == "Describe the video in detail." and len([t for t in turns if t["a"].startswith("Best option:(")]) == 5


def test_videochat_draws_a_turn_per_training_item(tmp_path):
    write_clip(tmp_path / "raw" / "it" / "media" / "v.mp4", num_frames=16)
    turns = [{"i": "", "q": "Describe the video in detail.", "a": "a red circle moves left"}]
    entry = {
        "title": "it",
        "modality": "video",
        "task": "video_instruction",
        "annotations": {"format": "videochat2_it", "files": {"train": "a/it.json"}},
        "source": {"local": {"links": "media", "hint": "-"}},
    }
    manifest = index_dataset(tmp_path, "it", entry, {"a/it.json": json.dumps([{"video": "v.mp4", "QA": turns}])})
    item = VideoChat(manifest, tmp_path, "train", train=True, frames=2, resolution=32)[0]
    assert item["prompt"] == "Describe the video in detail.\n" and item["target"] == "a red circle moves left"
    assert tuple(item["video"].shape) == (3, 2, 32, 32)
