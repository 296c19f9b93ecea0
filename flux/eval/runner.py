"""`flux evaluate`: one checkpoint, one evaluation protocol of config/tables.yaml -> one metrics JSON.

A protocol is a list of settings (input frames x resolution, token budget, output head, optional Vid-TLDR
merging schedule) and of Token Optimization searches (the best input of a frames x resolution grid at a budget:
the paper's "+" / "w/ TO" numbers), evaluated on one or more datasets. The job spec arrives in this
configuration's units (flux.jobs.evaluate_spec scales the paper's); result keys stay in paper units
(`8x224@2048`, `to@2048`), which is how tables address them.

Every (dataset, input, variant) is evaluated once: settings that share an input are computed from one decode
of it, and a TO search reuses what the settings already measured; with `clip_cache`, other jobs reuse the decode
too (flux.eval.clip_cache). Undecodable videos stay in every
denominator and are counted in the metrics (flux.eval.classification).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from flux.data.datasets import FrameSampling, VideoClassification, VideoText
from flux.data.index import read_manifest
from flux.data.transforms import EvalTransform
from flux.errors import CheckpointError, ConfigError, FluxError
from flux.eval.aggregate import aggregate_clips
from flux.eval.chat import ChatEvaluator, chat_model_from_checkpoint
from flux.eval.classification import gather_views, multiview_accuracy
from flux.eval.clip_cache import ClipCache, test_batches
from flux.eval.grid import full_grid, token_optimization_search
from flux.eval.retrieval import retrieval_metrics
from flux.eval.spec import EvaluateSpec, RoleSpec, Scoring, Search
from flux.eval.zeroshot import prompt_embeddings, zero_shot_scores
from flux.io import atomic_write_json
from flux.models.checkpoint import read_payload
from flux.models.flops import gflops
from flux.models.fluxvit import FluxViT
from flux.models.saved import model_from_checkpoint, text_encoder_from_checkpoint
from flux.models.text import TextEncoder, build_text_encoder
from flux.models.vid_tldr import VidTLDR, forward_with_merging
from flux.provenance import provenance
from flux.stats import hit_string, hits

logger = logging.getLogger(__name__)

TASKS = ("classification", "zeroshot", "retrieval", "chat")
BATCH_SIZE = 8  # clips per forward pass


@dataclass(frozen=True)
class Variant:
    """How the model is run on an input: selector budget (None: every token), output head, merge schedule."""

    budget: int | None
    head: int
    merge: tuple[int, ...] | None = None


def load_model(checkpoint: Path) -> tuple[FluxViT, dict]:
    try:
        payload = read_payload(checkpoint, "checkpoint", f"train its run (snakemake {checkpoint} --force) or `dvc pull` it")
    except CheckpointError as error:
        raise FluxError(str(error)) from None
    try:
        model = model_from_checkpoint(payload)
    except CheckpointError as error:
        raise FluxError(f"{checkpoint}: the checkpoint does not fit its own metadata: {error}") from None
    return model.eval(), payload


def check_heads(spec: EvaluateSpec, metadata: dict) -> None:
    """Every head the protocol reads must be one the checkpoint's runs trained (its `trained_heads`)."""
    if "trained_heads" not in metadata:
        raise FluxError(f"{spec.checkpoint} records no trained_heads: it predates them; retrain run '{spec.run}'")
    trained = {entry["head"] for entry in metadata["trained_heads"]}
    wanted = {item.head for item in (*spec.settings, *spec.token_optimization)}
    untrained = sorted(wanted - trained)
    if untrained:
        raise FluxError(
            f"evaluation {spec.eval}: run '{spec.run}' never trained output head(s) {untrained} (trained: "
            f"{sorted(trained)}); the job spec is stale or the checkpoint is another run's: rebuild the spec (snakemake)"
        )


def check_classes(spec: EvaluateSpec, role: RoleSpec, metadata: dict) -> None:
    """A classifier scores a dataset only if its rows are that dataset's classes, in its order (a label file of
    another order inflates or wrecks top-1 silently: protocols.md, UniFormerV2#42)."""
    names = metadata.get("class_names") or []
    if spec.task != "classification" or not names:
        return
    info = read_manifest(Path(role.manifest))[1]
    expected = list(info.class_names or [])
    if names != expected:
        differing = next((i for i, (a, b) in enumerate(zip(names, expected)) if a != b), min(len(names), len(expected)))
        raise FluxError(
            f"evaluation {spec.eval}: the classifier of {spec.checkpoint} has {len(names)} classes of "
            f"{metadata.get('label_dataset', 'its training set')}, {role.dataset} ({role.manifest}) has "
            f"{len(expected)}, first difference at class {differing}; a classifier scores only its own label set, "
            f"in its order"
        )


def eval_transform(metadata: dict) -> EvalTransform:
    """The test-time normalisation the checkpoint's weights expect (an imported one may name its own)."""
    preprocessing = metadata.get("preprocessing") or {}
    return EvalTransform(**{key: tuple(value) for key, value in preprocessing.items()})


def load_text(payload: dict, spec: EvaluateSpec) -> tuple[TextEncoder, float]:
    """The checkpoint's own text tower (tiny scale) or the configured pretrained encoder, and the learned
    logit scale (zero-shot classification sharpens its per-view class scores with it before averaging)."""
    encoder: TextEncoder | None = text_encoder_from_checkpoint(payload)
    if encoder is None and spec.text_encoder:
        encoder = build_text_encoder("huggingface", path=spec.text_encoder)
    if encoder is None:
        raise FluxError(
            f"{spec.checkpoint} carries no text tower and teacher.text_encoder is not set; a video-text run is needed"
        )
    return encoder.eval(), float(payload.get("logit_scale", 100.0))


def encode_texts(encoder: TextEncoder, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([encoder.encode(texts[start : start + batch_size]) for start in range(0, len(texts), batch_size)])


class Evaluator:
    """One dataset of one job: measures (input, variant) pairs, caching every result."""

    def __init__(
        self,
        scoring: Scoring,
        role: RoleSpec,
        model: FluxViT,
        device: torch.device,
        text: tuple[TextEncoder, float] | None,
        transform: EvalTransform | None = None,
    ):
        self.scoring, self.role, self.model, self.device = scoring, role, model, device
        self.transform = transform or EvalTransform()
        self.task = scoring.task
        self.clips, self.crops = scoring.views
        self.cache: dict[tuple[int, int, Variant], dict[str, Any]] = {}
        self.clip_cache = ClipCache(Path(scoring.clip_cache)) if scoring.clip_cache else None
        self.text = text
        self.failures: dict[str, int] = {}
        self.prompts = None
        self.captions: tuple[torch.Tensor, list[int]] | None = None
        self.split = role.split_among(set(read_manifest(Path(role.manifest))[0]["split"]))

    # -- data ---------------------------------------------------------------------------------------------
    def dataset(self, frames: int, resolution: int):
        common = {
            "manifest": Path(self.role.manifest),
            "data_dir": Path(self.scoring.data_dir),
            "split": self.split,
            "train": False,
            "frames": frames,
            "resolution": resolution,
            "frame_sampling": FrameSampling(self.role.frame_sampling),
            "eval_transform": self.transform,
            "seed": self.scoring.seed,
            "max_items": self.scoring.max_videos,
        }
        if self.task == "retrieval":
            return VideoText(**common)
        return VideoClassification(**common, num_clips=self.clips, num_crops=self.crops)

    def _text_side(self, dataset) -> None:
        encoder, _ = self.text
        if self.task == "zeroshot" and self.prompts is None:
            names = [name.replace("_", " ") for name in dataset.info.class_names or []]
            if not names:
                raise FluxError(f"{self.role.manifest}: no class names, zero-shot classification needs them")
            self.prompts = prompt_embeddings(lambda texts: encode_texts(encoder, texts), names, list(self.scoring.prompts))
        if self.task == "retrieval" and self.captions is None:
            texts, owners = [], []
            for position in range(len(dataset)):
                for text in dataset.texts(position):
                    texts.append(text)
                    owners.append(position)
            self.captions = (encode_texts(encoder, texts), owners)

    def _outputs(self, video: torch.Tensor, variant: Variant, generator: torch.Generator) -> torch.Tensor:
        """Logits (classification) or the video embedding (zero-shot, retrieval) of a batch; `generator` draws
        a random selector's tokens."""
        model = self.model
        if variant.merge is not None:
            if self.task != "classification":
                raise ConfigError("Vid-TLDR merging is evaluated for classification only (supplementary Table 2)")
            return forward_with_merging(
                model, video, VidTLDR(variant.merge), variant.head, budget=variant.budget, generator=generator
            )
        tokens = model.forward_features(video, variant.budget, generator=generator).tokens
        if self.task == "classification":
            return model.forward_head(tokens, variant.head)
        return model.vision_proj(model.pool(tokens, variant.head))

    # -- measuring ----------------------------------------------------------------------------------------
    def measure(self, frames: int, resolution: int, variants: list[Variant]) -> dict[Variant, dict[str, Any]]:
        missing = [variant for variant in dict.fromkeys(variants) if (frames, resolution, variant) not in self.cache]
        if missing:
            self._compute(frames, resolution, missing)
        return {variant: self.cache[(frames, resolution, variant)] for variant in variants}

    def _compute(self, frames: int, resolution: int, variants: list[Variant]) -> None:
        started = time.perf_counter()
        dataset = self.dataset(frames, resolution)
        if self.task != "classification":
            self._text_side(dataset)
        batches = test_batches(dataset, self.clip_cache, self.scoring.workers, BATCH_SIZE, self.transform)
        outputs: dict[Variant, list[torch.Tensor]] = {variant: [] for variant in variants}
        # a random selector's draws: one stream per (input, variant) from the job's seed, so that a measurement
        # depends on nothing measured or decoded before it (the loader's workers draw from the global stream)
        generators = {variant: torch.Generator().manual_seed(self.scoring.seed) for variant in variants}
        positions, views, labels, valid = [], [], [], []
        failed: dict[int, str] = {}  # video -> failure kind (counted here: a loader worker's dataset is a copy)
        with torch.no_grad():
            for batch in batches:
                video = batch["video"].to(self.device)
                for variant in variants:
                    outputs[variant].append(self._outputs(video, variant, generators[variant]).float().cpu())
                positions.append(batch["index"])
                views.append(batch["clip"] * self.crops + batch["crop"] if "clip" in batch else torch.zeros_like(batch["index"]))
                labels.append(batch.get("label", torch.full_like(batch["index"], -1)))
                valid.append(batch["valid"])
                for position, ok, kind in zip(batch["index"].tolist(), batch["valid"].tolist(), batch["error_kind"]):
                    if not ok:
                        failed[position] = kind
        for kind, count in Counter(failed.values()).items():
            self.failures[kind] = max(self.failures.get(kind, 0), count)
        positions, views, labels, valid = (torch.cat(part) for part in (positions, views, labels, valid))
        seconds = (time.perf_counter() - started) / len(variants)
        for variant in variants:
            result = self._metrics(torch.cat(outputs[variant]), positions, views, labels, valid)
            result.update(
                {"input": [frames, resolution], "budget": variant.budget, "head": variant.head, "seconds": round(seconds, 3)}
            )
            if variant.merge is not None:
                result["merge"] = list(variant.merge)
            else:
                patches = frames * (resolution // self.model.size.patch_size) ** 2
                tokens = min(patches, variant.budget or patches)
                result["gflops"] = round(gflops(self.model.size, tokens, patches, self.model.num_classes), 3)
            self.cache[(frames, resolution, variant)] = result

    def _metrics(self, outputs, positions, views, labels, valid) -> dict[str, Any]:
        count = self.clips * self.crops if self.task != "retrieval" else 1
        ids, per_view = gather_views(((int(p), int(v), out) for p, v, out in zip(positions, views, outputs)), count)
        order = torch.tensor(ids)
        first = {int(p): i for i, p in reversed(list(enumerate(positions.tolist())))}
        video_labels = labels[[first[i] for i in ids]]
        decodable = torch.stack([valid[positions == i].all() for i in ids])
        if self.task == "classification":
            method = self.scoring.aggregate
            if method != "softmax_mean":  # ClipBERT: combine the clips' logits, then one prediction per video
                return {
                    **multiview_accuracy(aggregate_clips(per_view, method)[:, None], video_labels, decodable),
                    "aggregate": method,
                }
            return multiview_accuracy(per_view, video_labels, decodable)
        if self.task == "zeroshot":
            _, logit_scale = self.text
            scores = torch.stack([zero_shot_scores(view, self.prompts) for view in per_view.unbind(1)], dim=1)
            return multiview_accuracy(logit_scale * scores, video_labels, decodable)
        text_features, owners = self.captions
        video_features = F.normalize(per_view[:, 0].double(), dim=-1)
        rank_of = {position: rank for rank, position in enumerate(order.tolist())}
        result = retrieval_metrics(text_features, video_features, [rank_of[o] for o in owners])
        result["undecodable"] = int((~decodable).sum())
        return result


def objective_value(task: str, metrics: dict[str, Any]) -> float:
    """What TO maximises: top-1, text-to-video R@1 with dual softmax (how the paper reports retrieval), MVBench
    accuracy or DREAM-1K F1."""
    if task == "retrieval":
        return float(metrics["dual_softmax"]["t2v"]["R@1"])
    return float(metrics[{"mcq": "accuracy", "caption": "f1"}.get(task, "top1")])


def held_out_halves(videos: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (choice, score) masks over the videos: a seeded permutation's first half chooses the input,
    the rest scores it (the odd one out goes to the scoring half)."""
    order = np.random.default_rng(seed).permutation(videos)
    choice = np.zeros(videos, dtype=bool)
    choice[order[: videos // 2]] = True
    return choice, ~choice


def _on(result: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """A classification result's top-1 and per-video outcomes on the videos of `mask`."""
    outcomes = hits(result["top1_hits"])
    return {
        "input": result["input"],
        "top1": round(100.0 * float(outcomes[mask].mean()), 4),
        "top1_hits": hit_string(outcomes[mask]),
    }


def _search(search: Search, evaluate) -> tuple[tuple[int, int], list[list]]:
    """The best input of `search` under `evaluate(frames, resolution)`, and every evaluation it made."""
    frames, resolutions = search.frames, search.resolutions
    if search.search == "grid":
        surface = full_grid(frames, resolutions, evaluate)
        best = max(surface, key=lambda shape: (surface[shape], -shape[0] * shape[1] ** 2))
        return best, [[t, r, value] for (t, r), value in surface.items()]
    found = token_optimization_search(frames, resolutions, evaluate, tuple(search.start))
    return found.best, [[t, r, value] for (t, r), value in found.evaluations]


def run_held_out_search(evaluator: Evaluator, search: Search, seed: int) -> dict[str, Any]:
    """TO without choosing on the scored videos: the search runs on one half, the chosen input and the search's
    start (the plain input at the budget) are scored on the other, so the two compare on the same videos."""
    if evaluator.task != "classification":
        raise ConfigError(f"{search.key}: a held-out TO choice is implemented for classification (per-video top-1) only")
    variant = Variant(search.budget, search.head)
    measure = lambda frames, resolution: evaluator.measure(frames, resolution, [variant])[variant]  # noqa: E731
    start = measure(*search.start)
    choice, score = held_out_halves(len(start["top1_hits"]), seed)
    best, evaluations = _search(search, lambda frames, resolution: _on(measure(frames, resolution), choice)["top1"])
    return {
        **_on(measure(*best), score),
        "plain": _on(start, score),
        "videos": int(score.sum()),
        "chosen_on": f"{int(choice.sum())} other videos (seeded half)",
        "search": search.search,
        "evaluations": evaluations,
    }


def run_search(evaluator: Evaluator, search: Search) -> dict[str, Any]:
    variant = Variant(search.budget, search.head)

    def evaluate(frames: int, resolution: int) -> float:
        return objective_value(evaluator.task, evaluator.measure(frames, resolution, [variant])[variant])

    best, evaluations = _search(search, evaluate)
    result = dict(evaluator.measure(*best, [variant])[variant])
    result.update({"search": search.search, "evaluations": evaluations})
    return result


def evaluate_role(evaluator: Evaluator, spec: EvaluateSpec) -> dict[str, Any]:
    results: dict[str, Any] = {}
    by_input: dict[tuple[int, int], list[dict]] = {}
    for setting in spec.settings:
        by_input.setdefault((setting.frames, setting.resolution), []).append(setting)
    for (frames, resolution), settings in by_input.items():
        variants = [Variant(s.budget, s.head, tuple(s.merge) if s.merge else None) for s in settings]
        measured = evaluator.measure(frames, resolution, variants)
        for setting, variant in zip(settings, variants):
            results[setting.key] = measured[variant]
    for search in spec.token_optimization:
        results[search.key] = (
            run_held_out_search(evaluator, search, spec.seed) if search.held_out else run_search(evaluator, search)
        )
    return results


def run_chat(spec: EvaluateSpec, device: torch.device, started: float) -> None:
    """A chat protocol: the chat run's model on each benchmark, at each setting and TO search."""
    try:
        payload = read_payload(Path(spec.checkpoint), "checkpoint", f"train its run (snakemake {spec.checkpoint} --force)")
    except CheckpointError as error:
        raise FluxError(str(error)) from None
    chat = chat_model_from_checkpoint(payload, Path(spec.checkpoint)).to(device)
    results, undecodable, splits = {}, {}, {}
    for role in spec.roles:
        evaluator = ChatEvaluator(
            spec.scoring(), role, chat, device, eval_transform(payload["metadata"]), spec.max_new_tokens or 512
        )
        results[role.role] = evaluate_role(evaluator, spec)
        undecodable[role.role] = evaluator.failures
        splits[role.role] = {"dataset": role.dataset, "split": evaluator.split}
    write_record(spec, chat, results, undecodable, splits, started)


def write_record(
    spec: EvaluateSpec, model: torch.nn.Module, results: dict, undecodable: dict, splits: dict, started: float
) -> None:
    seconds = round(time.perf_counter() - started, 2)
    record = {
        "eval": spec.eval,
        "run": spec.run,
        "protocol": spec.protocol,
        "task": spec.task,
        "views": spec.views,
        "datasets": splits,
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "results": results,
        "decode_failures": undecodable,
        "seconds": seconds,
        "provenance": provenance(spec.lineage, spec.seed),
    }
    atomic_write_json(Path(spec.out), record)
    logger.info("wrote %s in %.1f s", spec.out, seconds)


def run(job: dict) -> None:
    """`flux evaluate`: every setting and TO search of a protocol on each of its datasets."""
    spec = EvaluateSpec.from_dict(job)
    if spec.task not in TASKS:
        raise ConfigError(f"evaluation {spec.eval}: unknown task '{spec.task}'; known: {', '.join(TASKS)}")
    torch.manual_seed(spec.seed)
    torch.set_num_threads(max(1, spec.threads or 1))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    if spec.task == "chat":
        run_chat(spec, device, started)
        return
    model, payload = load_model(Path(spec.checkpoint))
    check_heads(spec, payload["metadata"])
    model.to(device)
    text = None
    if spec.task != "classification":
        encoder, scale = load_text(payload, spec)
        text = (encoder.to(device), scale)
    results, undecodable, splits = {}, {}, {}
    for role in spec.roles:
        check_classes(spec, role, payload["metadata"])
        evaluator = Evaluator(spec.scoring(), role, model, device, text, eval_transform(payload["metadata"]))
        results[role.role] = evaluate_role(evaluator, spec)
        undecodable[role.role] = evaluator.failures
        splits[role.role] = {"dataset": role.dataset, "split": evaluator.split}
        logger.info("%s on %s: %d inputs evaluated", spec.eval, role.role, len(evaluator.cache))
    write_record(spec, model, results, undecodable, splits, started)
