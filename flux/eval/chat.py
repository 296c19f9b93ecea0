"""Main Table 10's evaluations of a chat model (flux.models.chat). A protocol of task `chat` scores each of its
datasets by the dataset's kind:

* multiple choice (`video_qa`, MVBench): the question with lettered options after the video, "Best option:(",
  and the option whose answer text ("B) red") the LLM gives the highest log-likelihood is the choice. VideoChat2
  decodes greedily and reads the first letter; with a letter the LLM is sure of, the two agree, and scoring every
  option never reads a malformed reply. Accuracy is pooled over every question (VideoChat2's `Avg`; the mean
  over tasks when tasks are equal in size), with each task's beside.
* captions (`video_caption`, DREAM-1K): "Describe the video in detail.", greedy decoding up to
  `chat.max_new_tokens`, scored against the reference description and events offline (flux.eval.caption_f1).

An input is measured once per (frames, resolution, budget) and cached, so that Token Optimization searches over
these evaluators as over classification (flux.eval.runner). Undecodable videos stay in every denominator: their
questions count as wrong and their captions as empty.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from flux.data.chat_prompts import CAPTION_PROMPT, mcq_answer, mcq_prompt, turn_prompt
from flux.data.datasets import FrameSampling, VideoChat
from flux.data.index import read_manifest
from flux.data.transforms import EvalTransform
from flux.errors import FluxError
from flux.eval import caption_f1
from flux.eval.clip_cache import ClipCache, test_batches
from flux.eval.spec import RoleSpec, Scoring
from flux.models.chat import ChatModel, Projector, load_llm
from flux.models.flops import gflops
from flux.models.saved import model_from_checkpoint
from flux.stats import hit_string

BATCH_SIZE = 8
KINDS = {"video_qa": "mcq", "video_caption": "caption"}  # dataset task -> how its answers are scored


def chat_model_from_checkpoint(payload: dict, path: Path) -> ChatModel:
    """A chat run's checkpoint: its encoder, its projector, and the LLM it names (or carries, when tiny)."""
    if "chat" not in payload:
        raise FluxError(f"{path} is not a chat run's checkpoint (no projector); chat protocols score chat runs (stage chat)")
    encoder = model_from_checkpoint(payload).eval()
    projector = Projector.from_dict(payload["chat"]["projector"]).eval()
    return ChatModel(encoder, projector, load_llm(payload["chat"]["llm"])).eval()


class ChatEvaluator:
    """One chat benchmark of one job: measures (input, variant) pairs, caching every result."""

    def __init__(
        self,
        scoring: Scoring,
        role: RoleSpec,
        chat: ChatModel,
        device: torch.device,
        transform: EvalTransform | None,
        max_new_tokens: int,
    ):
        self.scoring, self.role, self.chat, self.device = scoring, role, chat, device
        frame, info = read_manifest(Path(role.manifest))
        if info.task not in KINDS:
            raise FluxError(
                f"{role.manifest}: a chat protocol scores {' or '.join(KINDS)} datasets, {info.dataset} is {info.task}"
            )
        self.task = KINDS[info.task]  # what TO maximises: accuracy or F1 (flux.eval.runner.objective_value)
        self.transform = transform or EvalTransform()
        self.max_new_tokens = max_new_tokens
        self.cache: dict[tuple, dict[str, Any]] = {}
        self.failures: dict[str, int] = {}
        self.clip_cache = ClipCache(Path(scoring.clip_cache)) if scoring.clip_cache else None
        self.split = role.split_among(set(frame["split"]))

    def dataset(self, frames: int, resolution: int) -> VideoChat:
        return VideoChat(
            Path(self.role.manifest),
            Path(self.scoring.data_dir),
            self.split,
            train=False,
            frames=frames,
            resolution=resolution,
            frame_sampling=FrameSampling(self.role.frame_sampling),
            eval_transform=self.transform,
            seed=self.scoring.seed,
            max_items=self.scoring.max_videos,
        )

    def measure(self, frames: int, resolution: int, variants: list) -> dict:
        missing = [variant for variant in dict.fromkeys(variants) if (frames, resolution, variant) not in self.cache]
        if missing:
            self._compute(frames, resolution, missing)
        return {variant: self.cache[(frames, resolution, variant)] for variant in variants}

    def _answers(self, visual: torch.Tensor, questions: list[dict]) -> list[int]:
        """The chosen option of each question (one per row of `visual`), every option of the batch in one pass."""
        rows, prompts, answers = [], [], []
        for row, details in enumerate(questions):
            candidates = details["candidates"]
            prompt = mcq_prompt(details["question"], candidates)
            for candidate in candidates:
                rows.append(row)
                prompts.append(prompt)
                answers.append(mcq_answer(candidates, candidate))
        scores = self.chat.answer_log_likelihoods(visual[rows], prompts, answers).tolist()
        chosen, start = [], 0
        for details in questions:
            count = len(details["candidates"])
            options = scores[start : start + count]
            chosen.append(options.index(max(options)))
            start += count
        return chosen

    def _compute(self, frames: int, resolution: int, variants: list) -> None:
        started = time.perf_counter()
        dataset = self.dataset(frames, resolution)
        batches = test_batches(dataset, self.clip_cache, self.scoring.workers, BATCH_SIZE, self.transform)
        outcomes: dict[Any, dict[int, Any]] = {variant: {} for variant in variants}
        generators = {variant: torch.Generator().manual_seed(self.scoring.seed) for variant in variants}
        failed: dict[int, str] = {}
        prompt = turn_prompt("", CAPTION_PROMPT)
        with torch.no_grad():
            for batch in batches:
                video = batch["video"].to(self.device)
                positions = batch["index"].tolist()
                for position, ok, kind in zip(positions, batch["valid"].tolist(), batch["error_kind"]):
                    if not ok:
                        failed[position] = kind
                for variant in variants:
                    visual = self.chat.visual(video, variant.budget, generator=generators[variant])
                    if self.task == "caption":
                        texts = self.chat.generate(visual, [prompt] * len(positions), self.max_new_tokens)
                        outcomes[variant].update(zip(positions, texts))
                    else:
                        chosen = self._answers(visual, [dataset.details(position) for position in positions])
                        outcomes[variant].update(zip(positions, chosen))
        for kind, count in Counter(failed.values()).items():
            self.failures[kind] = max(self.failures.get(kind, 0), count)
        seconds = (time.perf_counter() - started) / len(variants)
        size = self.chat.encoder.size
        patches = frames * (resolution // size.patch_size) ** 2
        for variant in variants:
            result = self._metrics(dataset, outcomes[variant], failed)
            tokens = min(patches, variant.budget or patches)
            result.update(
                {
                    "input": [frames, resolution],
                    "budget": variant.budget,
                    "visual_tokens": tokens,
                    "gflops": round(gflops(size, tokens, patches, 0), 3),
                    "seconds": round(seconds, 3),
                }
            )
            self.cache[(frames, resolution, variant)] = result

    def _metrics(self, dataset: VideoChat, outcomes: dict[int, Any], failed: dict[int, str]) -> dict[str, Any]:
        positions = range(len(dataset))
        common = {"videos": len(dataset), "undecodable": len(failed)}
        if self.task == "caption":
            scores, subsets, captions = [], [], {}
            for position in positions:
                details = dataset.details(position)
                prediction = "" if position in failed else outcomes[position]
                reference = " ".join(dataset.texts(position))
                scores.append(caption_f1.video_scores(prediction, reference, details["events"]))
                subsets.append(details.get("subset", ""))
                captions[str(dataset.rows.at[position, "sample_id"])] = prediction
            return {**caption_f1.aggregate(scores, subsets), **common, "captions": captions}
        hits, by_task = [], {}
        for position in positions:
            details = dataset.details(position)
            hit = position not in failed and details["candidates"][outcomes[position]] == details["answer"]
            hits.append(hit)
            by_task.setdefault(details["task"], []).append(hit)
        accuracy = {task: round(100.0 * sum(found) / len(found), 4) for task, found in sorted(by_task.items())}
        return {
            "accuracy": round(100.0 * sum(hits) / len(hits), 4),
            "per_task": accuracy,
            "chance": round(100.0 * sum(1 / len(dataset.details(p)["candidates"]) for p in positions) / len(hits), 4),
            "accuracy_hits": hit_string(hits),
            **common,
        }
