"""Synthetic datasets for the embedded default: real h264 mp4 files (and JPEG images) written with the
annotation files of the real datasets they stand in for, so the real parsers index them.

Every item is a pure function of its identity string and the seeds: the same configuration writes the
same bytes. Classes are motions (flux.data.scenes); length, frame rate and resolution are random and
class-independent, and so is appearance, except that with `appearance_bias` p an item shows its class's
typical object and background with probability p (Kinetics-like classes come with their objects and scenes). Datasets of one
`family` share videos: the same (motion, index) is the same clip (same YouTube-like id) in every release,
which gives the Kinetics-710 builder real duplicates and train/val overlaps to resolve.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from flux.data import scenes
from flux.data.chat_prompts import (
    ANSWER_PROMPT,
    CAPTION_PROMPT,
    MVBENCH_SYSTEM,
    QUESTION_PROMPT,
    caption_turns,
    mcq_answer,
    mcq_question,
)
from flux.data.job_spec import SynthJob
from flux.data.registry import write_ready_marker
from flux.data.scenes import questions
from flux.data.spec import DatasetSpec, SyntheticSettings
from flux.errors import ConfigError
from flux.io import atomic_write_text

logger = logging.getLogger(__name__)

SSV2_TEMPLATES = {
    "moving left": "Moving [something] from right to left",
    "moving right": "Moving [something] from left to right",
    "moving up": "Moving [something] up",
    "moving down": "Moving [something] down",
    "creeping right": "Pushing [something] slightly to the right",
    "dashing right": "Throwing [something] to the right",
    "rotating clockwise": "Turning [something] clockwise",
    "rotating counterclockwise": "Turning [something] counterclockwise",
    "growing": "Approaching [something] with your camera",
    "shrinking": "Moving [something] away from the camera",
    "appearing": "Moving [something] into view",
    "disappearing": "Taking [something] out of view",
    "bouncing": "Lifting [something] up and down repeatedly",
    "orbiting": "Moving [something] in a circle",
    "blinking": "Covering and uncovering [something] repeatedly",
    "staying still": "Holding [something] still",
}
COIN_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}


def stable_hash(*parts: object) -> int:
    """A 63-bit hash that is the same in every process (unlike Python's salted `hash`)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def youtube_like_id(*parts: object) -> str:
    """11 characters of URL-safe base64, like a YouTube id (may contain '-' and '_')."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def camel(motion: str) -> str:
    return "".join(word.capitalize() for word in motion.split())


def scaled(count: int, scale: float) -> int:
    return max(1, int(round(count * scale)))


@dataclass(frozen=True)
class Item:
    """One synthetic media item before it is written."""

    identity: str  # what the content is a function of
    media: str  # path relative to the media directory
    motions: tuple[str, ...]
    split: str
    long: bool = False  # COIN-like: the upper half of the duration range


class Writer:
    """Renders items into the media directory and keeps the text of annotation files to write last."""

    def __init__(self, spec: DatasetSpec, settings: SyntheticSettings, dataset_dir: Path) -> None:
        self.spec = spec
        self.source = spec.synthetic
        self.settings = settings
        self.dataset_dir = dataset_dir
        self.media_dir = dataset_dir / spec.media_dir
        self.annotations: dict[str, str] = {}
        self.counts = {"media": 0, "texts": 0}

    def scene(self, item: Item) -> scenes.SceneSpec:
        rng = np.random.default_rng(stable_hash(self.settings.seed, self.source.seed, item.identity))
        appearance = scenes.sample_appearance(rng)
        bias = np.random.default_rng(stable_hash(self.settings.seed, self.source.seed, item.identity, "typical"))
        if bias.random() < self.source.appearance_bias:
            appearance = scenes.typical_appearance(item.motions[0], appearance)
        low, high = self.settings.duration_s
        duration = (max(low, high / 2), high) if item.long else (low, high)
        video = scenes.sample_video_format(rng, duration_s=duration, fps=self.settings.fps)
        return scenes.SceneSpec(item.motions, appearance, video, seed=int(rng.integers(2**31)))

    def caption_rng(self, item: Item) -> np.random.Generator:
        return np.random.default_rng(stable_hash(self.settings.seed, self.source.seed, item.identity, "captions"))

    def caption_count(self, item: Item) -> int:
        low, high = self.source.captions
        return int(self.caption_rng(item).integers(low, high + 1))

    def render(self, items: Sequence[Item]) -> dict[str, scenes.SceneSpec]:
        specs = {}
        for item in tqdm(items, desc=f"synth {self.spec.id}", unit="video"):
            spec = self.scene(item)
            scenes.write_mp4(scenes.render_video(spec), spec.video.fps, self.media_dir / item.media)
            specs[item.media] = spec
        self.counts["media"] += len(items)
        return specs

    def annotate(self, role: str, text: str) -> None:
        if role not in self.spec.annotation_files:
            raise ConfigError(f"datasets.{self.spec.id}.annotations.files has no '{role}' entry; the synthetic layout writes one")
        self.annotations[role] = text

    def finish(self) -> None:
        for role, text in self.annotations.items():
            atomic_write_text(self.dataset_dir / self.spec.annotation_files[role], text)

    def classes(self) -> tuple[str, ...]:
        return self.source.classes or scenes.MOTIONS

    def per_class(self, split: str) -> int:
        return scaled(self.source.splits[split], self.settings.count_scale)


def csv_text(rows: Sequence[Sequence[object]], delimiter: str = ",", newline: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerows(rows)
    return buffer.getvalue()


def step_sentences(writer: Writer, spec: scenes.SceneSpec, rng: np.random.Generator) -> list[str]:
    """One sentence per step of a multi-step video (paragraph datasets: DiDeMo, ActivityNet)."""
    return [scenes.video_captions(replace(spec, motions=(motion,)), rng, 1)[0] for motion in spec.motions]


# ---------------------------------------------------------------------------- classification layouts
def write_kinetics(writer: Writer) -> None:
    source = writer.source
    family = source.family or writer.spec.id
    rows_by_split: dict[str, list[list[object]]] = {}
    items = []
    for split in source.splits:
        # offsets scale with the counts, so that smaller configurations keep their overlaps
        offset = int(round(source.offsets.get(split, 0) * writer.settings.count_scale))
        rows = rows_by_split.setdefault(split, [["label", "youtube_id", "time_start", "time_end", "split"]])
        for motion in writer.classes():
            for index in range(offset, offset + writer.per_class(split)):
                identity = f"{family}|{motion}|{index}"
                video_id = youtube_like_id(identity)
                start = stable_hash(identity, "start") % 290
                clip = f"{video_id}_{start:06d}_{start + 10:06d}"
                items.append(Item(identity, f"{clip}.mp4", (motion,), split))
                rows.append([source.renames.get(motion, motion), video_id, start, start + 10, split])
    writer.render(items)
    for split, rows in rows_by_split.items():
        writer.annotate(split, csv_text(rows))


def write_ssv2(writer: Writer) -> None:
    classes = writer.classes()
    templates = [SSV2_TEMPLATES[motion] for motion in classes]
    labels = {template.replace("[", "").replace("]", ""): str(index) for index, template in enumerate(templates)}
    writer.annotate("labels", json.dumps(labels, indent=1) + "\n")
    items, used = [], set()
    for split in writer.source.splits:
        for motion in classes:
            for index in range(writer.per_class(split)):
                identity = f"{writer.spec.id}|{split}|{motion}|{index}"
                video_id, attempt = str(100000 + stable_hash(identity) % 900000), 0
                while video_id in used:  # six digits, as SSv2's ids: a few hundred items may collide
                    attempt += 1
                    video_id = str(100000 + stable_hash(identity, attempt) % 900000)
                used.add(video_id)
                items.append(Item(identity, f"{video_id}.mp4", (motion,), split))
    specs = writer.render(items)
    for split in writer.source.splits:
        entries = []
        for item in (item for item in items if item.split == split):
            spec = specs[item.media]
            thing = scenes.describe_object(spec.appearance)
            template = SSV2_TEMPLATES[item.motions[0]]
            entries.append(
                {
                    "id": item.media[:-4],
                    "label": template.replace("[something]", thing).lower(),
                    "template": template,
                    "placeholders": [thing],
                }
            )
        writer.annotate(split, json.dumps(entries) + "\n")


def write_coin(writer: Writer) -> None:
    steps = writer.source.steps
    vocabulary = writer.classes()
    tasks = [tuple(vocabulary[(start + offset) % len(vocabulary)] for offset in range(steps)) for start in range(len(vocabulary))]
    items = []
    for split in writer.source.splits:
        for task_id, task in enumerate(tasks):
            for index in range(writer.per_class(split)):
                identity = f"{writer.spec.id}|{split}|{task_id}|{index}"
                items.append(Item(identity, f"{youtube_like_id(identity)}.mp4", task, split, long=True))
    specs = writer.render(items)
    database = {}
    for item in items:
        spec = specs[item.media]
        duration = round(spec.video.num_frames / spec.video.fps, 2)
        bounds = np.linspace(0.0, duration, len(item.motions) + 1)
        task_id = tasks.index(item.motions)
        database[item.media[:-4]] = {
            "recipe_type": task_id,
            "class": "Then".join(camel(motion) for motion in item.motions),
            "subset": COIN_SUBSETS[item.split],
            "start": 0.0,
            "end": duration,
            "duration": duration,
            "video_url": f"https://www.youtube.com/embed/{item.media[:-4]}",
            "annotation": [
                {
                    "id": str(vocabulary.index(motion)),
                    "segment": [round(float(bounds[k]), 2), round(float(bounds[k + 1]), 2)],
                    "label": motion,
                }
                for k, motion in enumerate(item.motions)
            ],
        }
    writer.annotate("annotations", json.dumps({"database": database}, indent=1) + "\n")


def write_ucf101(writer: Writer) -> None:
    classes = [camel(motion) for motion in writer.classes()]
    writer.annotate("classes", "".join(f"{index} {name}\r\n" for index, name in enumerate(classes, start=1)))
    items, lines = [], {}
    for split in writer.source.splits:
        lines[split] = []
        for label, (motion, name) in enumerate(zip(writer.classes(), classes), start=1):
            for index in range(writer.per_class(split)):
                group, clip = (index // 4) + (1 if split == "train" else 8), index % 4 + 1
                stem = f"{name}/v_{name}_g{group:02d}_c{clip:02d}"
                items.append(Item(f"{writer.spec.id}|{stem}", f"{stem}.mp4", (motion,), split))
                lines[split].append(f"{stem}.avi {label}" if split == "train" else f"{stem}.avi")
    writer.render(items)
    for split, split_lines in lines.items():
        writer.annotate(split, "".join(f"{line}\r\n" for line in split_lines))


def write_mit(writer: Writer) -> None:
    classes = writer.classes()
    writer.annotate("classes", "".join(f"{name},{index}\n" for index, name in enumerate(classes)))
    prefixes = writer.spec.annotation_options.get("media_prefix", {})
    items, rows = [], {}
    for split in writer.source.splits:
        rows[split] = []
        for motion in classes:
            for index in range(writer.per_class(split)):
                identity = f"{writer.spec.id}|{split}|{motion}|{index}"
                relative = f"{motion}/synthetic-{youtube_like_id(identity)}.mp4"
                items.append(Item(identity, f"{prefixes.get(split, '')}{relative}", (motion,), split))
                rows[split].append([relative, motion, 3, 0])
    writer.render(items)
    for split, split_rows in rows.items():
        writer.annotate(split, csv_text(split_rows))


# ---------------------------------------------------------------------------- video-text layouts
def text_items(writer: Writer, media: Callable[[str, int], str], steps: Callable[[Item], int] | None = None) -> list[Item]:
    """Items of a caption dataset: `splits` are totals; each item's motions drawn from the vocabulary."""
    vocabulary = writer.classes()
    items = []
    for split, total in writer.source.splits.items():
        for index in range(scaled(total, writer.settings.count_scale)):
            identity = f"{writer.spec.id}|{split}|{index}"
            rng = np.random.default_rng(stable_hash(writer.settings.seed, identity, "motions"))
            item = Item(identity, media(split, index), (vocabulary[int(rng.integers(len(vocabulary)))],), split)
            count = steps(item) if steps else 1
            if count > 1:
                item = replace(item, motions=tuple(vocabulary[int(k)] for k in rng.integers(len(vocabulary), size=count)))
            items.append(item)
    return items


def write_msrvtt(writer: Writer) -> None:
    items = text_items(writer, lambda split, index: f"video{7010 + index}.mp4")
    specs = writer.render(items)
    rows = [["key", "vid_key", "video_id", "sentence"]]
    for index, item in enumerate(items):
        caption = scenes.video_captions(specs[item.media], writer.caption_rng(item), 1)[0]
        video_id = item.media[:-4]
        rows.append([f"ret{index}", f"msr{video_id[5:]}", video_id, caption])
    writer.counts["texts"] += len(items)
    writer.annotate("test", csv_text(rows))


def write_didemo(writer: Writer) -> None:
    def media(split: str, index: int) -> str:
        # Flickr-style names, as DiDeMo's: <user>@N0<k>_<photo id>_<secret>
        identity = f"{writer.spec.id}|{split}|{index}"
        user = 10000000 + stable_hash(identity) % 89999999
        photo = stable_hash(identity, "photo") % 10**10
        return f"{user}@N0{index % 9}_{photo}_{youtube_like_id(identity)[:10].lower()}.mp4"

    items = text_items(writer, media, writer.caption_count)
    specs = writer.render(items)
    moments, annotation_id = [], 0
    for position, item in enumerate(items):
        sentences = step_sentences(writer, specs[item.media], writer.caption_rng(item))
        # as released, DiDeMo names some videos with another extension than the file has
        name = item.media[:-4] + (".mov" if position % 3 == 0 else ".mp4")
        for step, sentence in enumerate(sentences):
            moments.append(
                {
                    "num_segments": 6,
                    "description": sentence,
                    "dl_link": "",
                    "times": [[step, step]],
                    "video": name,
                    "annotation_id": annotation_id,
                }
            )
            annotation_id += 1
    writer.counts["texts"] += len(moments)
    writer.annotate("test", json.dumps(moments) + "\n")


def write_anet(writer: Writer) -> None:
    items = text_items(
        writer, lambda split, index: f"v_{youtube_like_id(writer.spec.id, split, index)}.mp4", writer.caption_count
    )
    specs = writer.render(items)
    videos = {}
    for item in items:
        spec = specs[item.media]
        duration = round(spec.video.num_frames / spec.video.fps, 2)
        sentences = step_sentences(writer, spec, writer.caption_rng(item))
        bounds = np.linspace(0.0, duration, len(sentences) + 1).round(2)
        videos[item.media[:-4]] = {
            "duration": duration,
            "timestamps": [[float(bounds[k]), float(bounds[k + 1])] for k in range(len(sentences))],
            "sentences": sentences,
        }
        writer.counts["texts"] += len(sentences)
    split = next(iter(writer.source.splits))
    writer.annotate(split, json.dumps(videos) + "\n")


def lsmdc_time(seconds: float) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours):02d}.{int(minutes):02d}.{secs:06.3f}"


def write_lsmdc(writer: Writer) -> None:
    movies = ["3001_SYNTHETIC_SHAPES", "3002_MOVING_COLOURS", "3003_THE_ORBIT"]
    clips: list[tuple[str, float, float]] = []

    def media(split: str, index: int) -> str:
        start = 60.0 + 7.5 * index
        movie = movies[index % len(movies)]
        clip = f"{movie}_{lsmdc_time(start)}-{lsmdc_time(start + 5.0)}"
        clips.append((clip, start, start + 5.0))
        return f"{movie}/{clip}.mp4"

    items = text_items(writer, media)
    specs = writer.render(items)
    rows = []
    for item, (clip, start, end) in zip(items, clips):
        caption = scenes.video_captions(specs[item.media], writer.caption_rng(item), 1)[0]
        rows.append([clip, lsmdc_time(start), lsmdc_time(end), lsmdc_time(start), lsmdc_time(end), caption])
    writer.counts["texts"] += len(rows)
    writer.annotate("test", csv_text(rows, delimiter="\t"))


def write_msvd(writer: Writer) -> None:
    def media(split: str, index: int) -> str:
        start = stable_hash(writer.spec.id, split, index) % 200
        return f"{youtube_like_id(writer.spec.id, split, index)}_{start}_{start + 12}.mp4"

    items = text_items(writer, media)
    specs = writer.render(items)
    lines = ["# Synthetic MSVD descriptions, in the layout of Microsoft's AllVideoDescriptions.txt", "#"]
    lists: dict[str, list[str]] = {}
    for item in items:
        video_id = item.media[:-4]
        lists.setdefault(item.split, []).append(video_id)
        captions = scenes.video_captions(specs[item.media], writer.caption_rng(item), writer.caption_count(item))
        lines += [f"{video_id} {caption}" for caption in captions]
        writer.counts["texts"] += len(captions)
    for split, ids in lists.items():
        writer.annotate(split, "".join(f"{video_id}\n" for video_id in ids))
    writer.annotate("captions", "\n".join(lines) + "\n")


def write_vindlu_video(writer: Writer) -> None:
    items = text_items(writer, lambda split, index: f"{youtube_like_id(writer.spec.id, split, index)}.mp4")
    specs = writer.render(items)
    entries: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        captions = scenes.video_captions(specs[item.media], writer.caption_rng(item), writer.caption_count(item))
        entries.setdefault(item.split, []).append(
            {"video": item.media, "caption": captions[0] if len(captions) == 1 else captions}
        )
        writer.counts["texts"] += len(captions)
    for split, split_entries in entries.items():
        writer.annotate(split, json.dumps(split_entries) + "\n")


def write_vindlu_image(writer: Writer) -> None:
    entries: dict[str, list[dict[str, Any]]] = {}
    for split, total in writer.source.splits.items():
        for index in tqdm(range(scaled(total, writer.settings.count_scale)), desc=f"synth {writer.spec.id}", unit="image"):
            identity = f"{writer.spec.id}|{split}|{index}"
            rng = np.random.default_rng(stable_hash(writer.settings.seed, writer.source.seed, identity))
            appearance = scenes.sample_appearance(rng)
            width, height = scenes.DEFAULT_SIZES[int(rng.integers(len(scenes.DEFAULT_SIZES)))]
            name = f"{stable_hash(identity) % 10**12:012d}.jpg"
            scenes.write_jpeg(scenes.render_image(appearance, width, height, int(rng.integers(2**31))), writer.media_dir / name)
            item = Item(identity, name, (), split)
            captions = scenes.image_captions(appearance, writer.caption_rng(item), writer.caption_count(item), (width, height))
            entries.setdefault(split, []).append({"image": name, "caption": captions[0] if len(captions) == 1 else captions})
            writer.counts["media"] += 1
            writer.counts["texts"] += len(captions)
    for split, split_entries in entries.items():
        writer.annotate(split, json.dumps(split_entries) + "\n")


# ---------------------------------------------------------------------------- chat layouts
def chat_items(writer: Writer, split: str, count: int, media: Callable[[int], str], group: str = "") -> list[Item]:
    """Videos of one to `steps` distinct movements (the questions ask what happens last and how many)."""
    vocabulary = writer.classes()
    if not 1 <= writer.source.steps <= min(questions.MAX_STEPS, len(vocabulary)):
        raise ConfigError(
            f"datasets.{writer.spec.id}.source.synthetic.steps: {writer.source.steps}; the chat layouts take 1 to "
            f"{questions.MAX_STEPS} movements per video"
        )
    items = []
    for index in range(count):
        identity = f"{writer.spec.id}|{split}|{group}|{index}"
        rng = np.random.default_rng(stable_hash(writer.settings.seed, identity, "motions"))
        steps = int(rng.integers(1, writer.source.steps + 1))
        motions = tuple(vocabulary[int(k)] for k in rng.choice(len(vocabulary), size=steps, replace=False))
        items.append(Item(identity, media(index), motions, split, long=steps > 1))
    return items


def write_mvbench(writer: Writer) -> None:
    """MVBench's layout: `json/<task>.json` lists of {video, question, candidates, answer}, the videos of each task
    under its own folder (`annotations.options.prefixes`)."""
    prefixes = writer.spec.annotation_options.get("prefixes", {})
    tasks = [task for task in questions.TASKS if task in writer.spec.annotation_files]
    by_task = {}
    for task in tasks:
        name = lambda index, task=task: f"{prefixes.get(task, '')}{youtube_like_id(writer.spec.id, task, index)}.mp4"  # noqa: E731
        by_task[task] = chat_items(writer, "test", writer.per_class("test"), name, task)
    specs = writer.render([item for items in by_task.values() for item in items])
    for task, items in by_task.items():
        entries = [
            {
                "video": item.media.removeprefix(prefixes.get(task, "")),
                **questions.question(task, specs[item.media], writer.caption_rng(item)),
            }
            for item in items
        ]
        writer.annotate(task, json.dumps(entries, indent=1) + "\n")


def write_dream1k(writer: Writer) -> None:
    """DREAM-1K's `DREAM-1k.jsonl`: one line per video, the user's request and the reference description in
    `messages`, the reference events in `extra_info.events`."""
    split = next(iter(writer.source.splits))
    items = chat_items(writer, split, writer.per_class(split), lambda index: f"{index + 1}.mp4")
    specs = writer.render(items)
    lines = []
    for index, item in enumerate(items, start=1):
        spec = specs[item.media]
        events = questions.reference_events(spec)
        video = {"type": "video", "video": {"video_file": item.media}}
        lines.append(
            {
                "messages": [
                    {"role": "user", "content": [video, {"type": "text", "text": CAPTION_PROMPT}]},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "text", "text": "", "reference": scenes.video_captions(spec, writer.caption_rng(item), 1)[0]}
                        ],
                    },
                ],
                "dataset": "DREAM/synthetic",
                "task": "video/caption",
                "idx": index,
                "vid": str(index),
                "extra_info": {
                    "duration": round(spec.video.num_frames / spec.video.fps, 2),
                    "events": events,
                    "n_events": len(events),
                    "n_shots": 1,
                    "n_subjects": 1,
                },
            }
        )
        writer.counts["texts"] += 1
    writer.annotate(split, "".join(json.dumps(line) + "\n" for line in lines))


def write_videochat2_it(writer: Writer) -> None:
    """VideoChat2's instruction data: `[{"video", "QA": [{"i", "q", "a"}]}]`, per video its captions as "Describe the
    video in detail." turns and one MVBench-style question per task (the chat stage's training data)."""
    for split, total in writer.source.splits.items():
        count = scaled(total, writer.settings.count_scale)
        items = chat_items(
            writer, split, count, lambda index, split=split: f"{youtube_like_id(writer.spec.id, split, index)}.mp4"
        )
        specs = writer.render(items)
        entries = []
        for item in items:
            spec, rng = specs[item.media], writer.caption_rng(item)
            turns = caption_turns(scenes.video_captions(spec, rng, writer.caption_count(item)))
            for task in questions.TASKS:
                asked = questions.question(task, spec, rng)
                turns.append(
                    {
                        "i": MVBENCH_SYSTEM,
                        "q": mcq_question(asked["question"], asked["candidates"]) + QUESTION_PROMPT,
                        "a": ANSWER_PROMPT + mcq_answer(asked["candidates"], asked["answer"]),
                    }
                )
            entries.append({"video": item.media, "QA": turns})
            writer.counts["texts"] += len(turns)
        writer.annotate(split, json.dumps(entries) + "\n")


LAYOUTS: dict[str, Callable[[Writer], None]] = {
    "kinetics": write_kinetics,
    "ssv2": write_ssv2,
    "coin": write_coin,
    "ucf101": write_ucf101,
    "mit": write_mit,
    "msrvtt": write_msrvtt,
    "didemo": write_didemo,
    "anet": write_anet,
    "lsmdc": write_lsmdc,
    "msvd": write_msvd,
    "vindlu_video": write_vindlu_video,
    "vindlu_image": write_vindlu_image,
    "mvbench": write_mvbench,
    "dream1k": write_dream1k,
    "videochat2_it": write_videochat2_it,
}


def generate(spec: DatasetSpec, settings: SyntheticSettings, dataset_dir: Path) -> dict[str, int]:
    """Write the dataset's media, then its annotation files (last, atomically); returns counts."""
    if spec.synthetic is None:
        raise ConfigError(f"datasets.{spec.id} has no synthetic source")
    writer = Writer(spec, settings, dataset_dir)
    LAYOUTS[spec.synthetic.layout](writer)
    writer.finish()
    return writer.counts


def run(job: dict[str, Any]) -> None:
    """`flux synth`: generate a synthetic dataset and mark it ready."""
    task = SynthJob.from_dict(job)
    spec = task.dataset_spec()
    raw = task.settings
    settings = SyntheticSettings(
        seed=raw["seed"], count_scale=raw["count_scale"], duration_s=tuple(raw["duration_s"]), fps=tuple(raw["fps"])
    )
    started = time.perf_counter()
    counts = generate(spec, settings, Path(task.dataset_dir))
    seconds = time.perf_counter() - started
    logger.info("%s: %d media, %d texts in %.1f s", spec.id, counts["media"], counts["texts"], seconds)
    write_ready_marker(
        Path(task.ready),
        spec,
        Path(task.dataset_dir),
        "synthetic",
        {"counts": counts, "settings": raw, "seconds": round(seconds, 2)},
    )
