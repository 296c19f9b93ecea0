"""Training stages as a registry: each stage (the tiny UMT teacher, Flux-UMT, Flux-CLIP, fine-tuning) supplies its
data sources, the towers its model needs (the teacher's vision model, a text tower) and its objective; the trainer
(flux.train.trainer) keeps the loop, the resume state and the backends, and never asks which stage it runs.

`TRAINING_STAGES` has one entry per stage name of flux.train.runs.STAGES (the torch-free list the configuration
checks runs against).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from flux.data.datasets import FrameSampling, ImageText, KeyedConcat, VideoChat, VideoClassification, VideoClips, VideoText
from flux.data.index import read_manifest
from flux.data.sampling import FlexibleBatchSampler, FlexibleSpec
from flux.data.transforms import TrainTransform
from flux.errors import CheckpointError, TrainingError
from flux.models.chat import llm_from_path
from flux.models.checkpoint import copy_pooling_heads, load_checkpoint, read_payload
from flux.models.fluxvit import DistillHeads, FluxViT, build_model
from flux.models.saved import model_from_checkpoint, text_encoder_from_checkpoint
from flux.models.sizes import PATCH_SIZE
from flux.models.text import TextEncoder, build_text_encoder
from flux.train.distributed import Topology
from flux.train.inheritance import KEY_GROUPS, ParentPlan
from flux.train.objectives import ChatProjection, Classification, Distillation, Objective, VideoTextContrastive
from flux.train.runs import ResolvedRun
from flux.train.spec import TrainSpec

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------- data
@dataclass
class Source:
    """One stream of batches: a dataset and its (flexible or fixed-shape) batch sampler."""

    name: str
    dataset: Any
    sampler: FlexibleBatchSampler


def _transform(run: ResolvedRun, allow_flip: bool) -> TrainTransform:
    augment = run.augment
    crop = augment.get("crop", "random_resized")
    options: dict[str, Any] = {
        "crop": crop,
        "flip": allow_flip,
        "rand_augment": augment.get("rand_augment"),
        "erase_probability": augment.get("random_erasing", 0.0),
    }
    if crop == "random_resized" and "scale" in augment:
        options["scale"] = tuple(augment["scale"])
    if crop == "multi_scale" and "scales" in augment:
        options["scales"] = tuple(augment["scales"])
    return TrainTransform(**options)


@dataclass(frozen=True)
class _Inputs:
    """What every stage's sources read from the job spec."""

    manifests: dict[str, Path]
    infos: dict[str, Any]
    common: dict[str, Any]
    video_only: dict[str, Any]
    sampling: dict[str, FrameSampling]
    sampler: Callable[[int, FlexibleSpec], FlexibleBatchSampler]


def _inputs(run: ResolvedRun, spec: TrainSpec, topology: Topology) -> _Inputs:
    seed = spec.seed
    manifests = {dataset: Path(path) for dataset, path in spec.manifests.items()}
    common = {"data_dir": Path(spec.data_dir), "split": "train", "train": True, "seed": seed}
    per_rank = max(1, run.batch_size // topology.world_size)  # the settings tables give global batch sizes
    return _Inputs(
        manifests=manifests,
        infos={dataset: read_manifest(path)[1] for dataset, path in manifests.items()},
        common=common,
        video_only={**common, "repeats": run.repeats},  # repeated augmentation: classification and distillation
        sampling={dataset: FrameSampling(scheme) for dataset, scheme in spec.frame_sampling.items()},
        sampler=lambda size, spec: FlexibleBatchSampler(size, per_rank, spec, seed, topology.rank, topology.world_size),
    )


def _video_stream(run: ResolvedRun, inputs: _Inputs, kind: type, datasets: list[str], options: dict[str, Any]) -> Source:
    """The videos of `datasets`, as `kind` items, in one stream of the run's input spec."""
    parts = [
        kind(
            inputs.manifests[d],
            train_transform=_transform(run, inputs.infos[d].allow_flip),
            frame_sampling=inputs.sampling.get(d),
            **options,
        )
        for d in datasets
    ]
    dataset = KeyedConcat(parts)
    return Source("videos", dataset, inputs.sampler(len(dataset), run.input.spec))


def classification_sources(run: ResolvedRun, spec: TrainSpec, topology: Topology) -> tuple[list[Source], dict]:
    """Fine-tuning: one labelled video dataset; the facts name its classes for the classifier."""
    inputs = _inputs(run, spec, topology)
    (dataset_id,) = run.datasets
    info = inputs.infos[dataset_id]
    dataset = VideoClassification(
        inputs.manifests[dataset_id],
        train_transform=_transform(run, info.allow_flip),
        frame_sampling=inputs.sampling.get(dataset_id),
        **inputs.video_only,
    )
    facts = {"num_classes": dataset.num_classes, "class_names": list(info.class_names or []), "dataset": dataset_id}
    return [Source(dataset_id, dataset, inputs.sampler(len(dataset), run.input.spec))], facts


def distillation_sources(run: ResolvedRun, spec: TrainSpec, topology: Topology) -> tuple[list[Source], dict]:
    """Flux-UMT: the videos of every dataset of the run, labels unused, as one stream."""
    inputs = _inputs(run, spec, topology)
    return [_video_stream(run, inputs, VideoClips, list(run.datasets), inputs.video_only)], {"num_classes": 0}


def caption_sources(run: ResolvedRun, spec: TrainSpec, topology: Topology) -> tuple[list[Source], dict]:
    """Video-text stages: the captioned videos and the captioned images, in separate streams; the facts carry every
    caption (the tiny teacher's text tower builds its vocabulary from them)."""
    inputs = _inputs(run, spec, topology)
    videos = [d for d in run.datasets if inputs.infos[d].modality == "video"]
    images = [d for d in run.datasets if inputs.infos[d].modality == "image"]
    sources = []
    if videos:
        sources.append(_video_stream(run, inputs, VideoText, videos, inputs.common))
    if images:
        resolution = run.input.image_resolution or max(run.input.spec.resolutions)
        parts = [
            ImageText(inputs.manifests[d], train_transform=_transform(run, inputs.infos[d].allow_flip), **inputs.common)
            for d in images
        ]
        dataset = KeyedConcat(parts)
        image_spec = FlexibleSpec((1,), (resolution,), 1, (resolution // PATCH_SIZE) ** 2, PATCH_SIZE)
        sources.append(Source("images", dataset, inputs.sampler(len(dataset), image_spec)))
    captions = [caption for d in run.datasets for caption in read_manifest(inputs.manifests[d])[0]["captions"].explode().dropna()]
    return sources, {"num_classes": 0, "captions": captions}


def chat_sources(run: ResolvedRun, spec: TrainSpec, topology: Topology) -> tuple[list[Source], dict]:
    """The chat stage: captioned videos and instruction data, one instruction turn per clip, as one stream."""
    inputs = _inputs(run, spec, topology)
    return [_video_stream(run, inputs, VideoChat, list(run.datasets), inputs.common)], {"num_classes": 0}


# ------------------------------------------------------------------------------------------- models
def read_run_checkpoint(path: str | None, what: str) -> dict:
    """A checkpoint this pipeline wrote (a parent's, the teacher's), read with the checked reader."""
    if not path:
        raise TrainingError(f"{what} checkpoint is not set")
    try:
        return read_payload(Path(path), f"{what} checkpoint", f"(re)build it: snakemake {path} --force")
    except CheckpointError as error:
        raise TrainingError(str(error)) from None


def tiny_text_tower(run: ResolvedRun, spec: TrainSpec, captions: list[str]) -> TextEncoder:
    """The tiny teacher's text tower, trained from scratch on a vocabulary of the run's captions."""
    return build_text_encoder("tiny", corpus=captions, seed=spec.seed)


def inherited_text_tower(run: ResolvedRun, spec: TrainSpec, captions: list[str]) -> TextEncoder:
    """Flux-CLIP's text tower: the configured pretrained encoder, else the parent's (stage 2 after stage 1), else
    the teacher's."""
    if spec.text_encoder:
        return build_text_encoder("huggingface", path=spec.text_encoder)
    for which, checkpoint in (("parent", spec.parent_checkpoint), ("teacher", spec.teacher_checkpoint)):
        encoder = text_encoder_from_checkpoint(read_run_checkpoint(checkpoint, which))
        if encoder is not None:
            return encoder
    raise TrainingError("neither parent nor teacher checkpoint carries a text tower; set teacher.text_encoder to a local encoder")


def load_teacher(spec: TrainSpec) -> FluxViT:
    payload = read_run_checkpoint(spec.teacher_checkpoint, "teacher")
    # strict, but for the text projection of a video-text teacher: distillation reads its vision features only
    return model_from_checkpoint(payload, leave_out=[KEY_GROUPS["text_projection"]])


def build_student(run: ResolvedRun, spec: TrainSpec, facts: dict, text_dim: int | None, teacher: FluxViT | None) -> FluxViT:
    options = dict(run.model_options)
    distill = None
    if teacher is not None:
        distill = DistillHeads(max(run.distill_layers, 1), teacher.size.embed_dim, teacher.size.clip_dim, run.distill_decoder)
    model = build_model(
        run.model, num_classes=facts["num_classes"], distill=distill, text_dim=text_dim, selector=run.selector, **options
    )
    if run.parent:
        load_parent(model, run, spec)
    return model


def load_parent(model: FluxViT, run: ResolvedRun, spec: TrainSpec) -> None:
    """The parent's weights, strictly: only the key groups its plan lists (flux.train.inheritance) may be
    missing or left over; pooling heads the parent never trained start from its trained ones."""
    plan = ParentPlan.from_dict(spec.parent_plan)
    payload = read_run_checkpoint(spec.parent_checkpoint, f"parent run '{run.parent}'")
    state = dict(payload["model"])
    if plan.classifier == "fresh":  # a new label set: the classifier starts from its initialisation
        state = {key: value for key, value in state.items() if not re.match(KEY_GROUPS["classifier"], key)}
    index_map = json.loads(Path(spec.head_map).read_text())[spec.head_map_key] if plan.classifier == "remap" else None
    state = copy_pooling_heads(state, plan.head_sources, plan.parent_heads, model.size.output_heads)
    try:
        report = load_checkpoint(
            model,
            {"model": state},
            strict=True,
            class_index_map=index_map,
            allow_missing=[KEY_GROUPS[group] for group in plan.fresh],
            allow_unexpected=[KEY_GROUPS[group] for group in plan.dropped],
        )
    except CheckpointError as error:
        raise TrainingError(f"{run.id}: parent '{run.parent}' ({spec.parent_checkpoint}) does not load: {error}") from None
    copied = ", ".join(f"{child} <- {source}" for child, source in sorted(plan.head_sources.items()))
    logger.info("%s: initialised from %s (pooling heads copied: %s)\n%s", run.id, run.parent, copied or "none", report)


# ------------------------------------------------------------------------------------------- objectives
def classification_objective(
    run: ResolvedRun, spec: TrainSpec, facts: dict, text: TextEncoder | None, teacher: FluxViT | None
) -> Objective:
    return Classification(run, facts["num_classes"])


def distillation_objective(
    run: ResolvedRun, spec: TrainSpec, facts: dict, text: TextEncoder | None, teacher: FluxViT | None
) -> Objective:
    return Distillation(run, teacher)


def _contrastive(run: ResolvedRun, spec: TrainSpec, text: TextEncoder, train_text: bool) -> Objective:
    # a Flux-CLIP stage after another continues from its learned temperature
    parent_scale = read_run_checkpoint(spec.parent_checkpoint, "parent").get("logit_scale") if run.parent else None
    return VideoTextContrastive(run, text, train_text=train_text, logit_scale=parent_scale)


def teacher_objective(
    run: ResolvedRun, spec: TrainSpec, facts: dict, text: TextEncoder | None, teacher: FluxViT | None
) -> Objective:
    """The tiny teacher trains both towers from scratch."""
    return _contrastive(run, spec, text, train_text=True)


def clip_objective(
    run: ResolvedRun, spec: TrainSpec, facts: dict, text: TextEncoder | None, teacher: FluxViT | None
) -> Objective:
    """Flux-CLIP stage 1 trains the vision side only; stage 2 (`freeze: none`) the text tower too."""
    return _contrastive(run, spec, text, train_text=run.freeze == "none")


def chat_objective(
    run: ResolvedRun, spec: TrainSpec, facts: dict, text: TextEncoder | None, teacher: FluxViT | None
) -> Objective:
    if not spec.llm:
        raise TrainingError(f"{run.id}: the chat stage needs its LLM (chat.llm, or the tiny LM the embedded default trains)")
    return ChatProjection(run, llm_from_path(spec.llm), spec.projector or "mlp")


# ------------------------------------------------------------------------------------------- validation
VALIDATION_SPLITS = ("val", "test")  # the end-of-run check scores the first of these the manifest has


def validation_accuracy(model: FluxViT, run: ResolvedRun, spec: TrainSpec, device: torch.device) -> dict | None:
    """Top-1 on the validation split, one centre clip and crop, at the run's reference input (the paper's
    8 x 224^2 in this configuration's units, cut to its budget): a check that training learned, not the
    paper's protocol (that is the evaluation rules' job). Scored by flux.eval's Evaluator, as every evaluation
    is (undecodable videos count as wrong), on a seeded subset where `training.validation_videos` says so. Runs whose
    spec names a validation manifest only."""
    from flux.eval.runner import Evaluator, Variant
    from flux.eval.spec import RoleSpec, Scoring

    if not spec.val_manifest:
        return None
    splits = set(read_manifest(Path(spec.val_manifest))[0]["split"])
    if not splits & set(VALIDATION_SPLITS):
        return None
    frames, resolution = spec.reference_input
    dataset = run.datasets[0]
    role = RoleSpec("validation", dataset, spec.val_manifest, list(VALIDATION_SPLITS), spec.frame_sampling.get(dataset, "tsn"))
    reference = 1 if run.method == "multi" else 0  # Flux-Multi: the 2048-token head
    variant = Variant(run.budgets[reference] if run.budgets else None, run.heads[reference])
    scoring = Scoring("classification", (1, 1), spec.data_dir, clip_cache=spec.clip_cache, max_videos=spec.validation_videos)
    evaluator = Evaluator(scoring, role, model.eval(), device, text=None)
    measured = evaluator.measure(frames, resolution, [variant])[variant]
    return {
        "split": evaluator.split,
        "top1": measured["top1"] / 100,
        "videos": measured["videos"],
        "undecodable": measured["undecodable"],
        "chance": 1 / max(1, model.num_classes),
        "input": [frames, resolution],
        "budget": variant.budget,
        "head": variant.head,
    }


# ------------------------------------------------------------------------------------------- the registry
TextTower = Callable[[ResolvedRun, dict, list[str]], TextEncoder]
ObjectiveBuilder = Callable[[ResolvedRun, dict, dict, TextEncoder | None, FluxViT | None], Objective]


@dataclass(frozen=True)
class SetUp:
    """What a stage hands the trainer."""

    sources: list[Source]
    facts: dict
    model: FluxViT
    objective: Objective


@dataclass(frozen=True)
class Stage:
    name: str
    sources: Callable[[ResolvedRun, dict, Topology], tuple[list[Source], dict]]
    objective: ObjectiveBuilder
    text_tower: TextTower | None = None  # video-text stages: the text tower their objective trains or reads
    distils: bool = False  # reads the teacher's vision model (Flux-UMT)

    def set_up(self, run: ResolvedRun, spec: TrainSpec, topology: Topology) -> SetUp:
        """Data, towers, model and objective, always in this order (the model's initialisation draws from the
        global generator after the data is read)."""
        sources, facts = self.sources(run, spec, topology)
        teacher = load_teacher(spec) if self.distils else None
        text = self.text_tower(run, spec, facts.get("captions", [])) if self.text_tower else None
        model = build_student(run, spec, facts, text.embed_dim if text else None, teacher)
        return SetUp(sources, facts, model, self.objective(run, spec, facts, text, teacher))


TRAINING_STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("teacher", caption_sources, teacher_objective, text_tower=tiny_text_tower),
        Stage("umt", distillation_sources, distillation_objective, distils=True),
        Stage("clip", caption_sources, clip_objective, text_tower=inherited_text_tower),
        Stage("finetune", classification_sources, classification_objective),
        Stage("chat", chat_sources, chat_objective),
    )
}
