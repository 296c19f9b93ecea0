"""Training runs: config/runs.yaml (paper units) resolved into typed runs of one configuration.

A run merges its recipe chain and its own keys, binds dataset roles and model aliases through the config,
rescales frames, pixels and tokens by the config's `unit_scale` (tokens = frames x (pixels / patch)^2), and
takes the config's replacements of epochs, batch size, lr and augmentation (`training.stages`, keyed by
stage, more specific by recipe, most specific by run). Every problem is
a ConfigError naming `runs.<id>.<key>`, raised when the config is loaded, so `snakemake -n` reports it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flux.data.sampling import FlexibleSpec
from flux.errors import ConfigError
from flux.models.sizes import HEAD_BUDGETS, MODEL_SWITCHES, PLAIN_VIT, SELECTOR_NAMES, SIZES, nearest_head
from flux.train.optim import OptimSettings
from flux.units import UnitScale

STAGES = ("teacher", "umt", "clip", "finetune", "chat")
STAGE_OPTIM_OVERRIDES = ("epochs", "batch_size", "lr", "lr_reference_batch", "warmup_epochs")


@dataclass(frozen=True)
class RunInput:
    method: str  # fixed | flexible
    spec: FlexibleSpec  # a fixed input is a spec with one frame count and one resolution
    image_resolution: int | None = None


@dataclass(frozen=True)
class ResolvedRun:
    id: str
    stage: str
    model: str
    model_options: Mapping[str, Any]
    parent: str | None
    datasets: tuple[str, ...]
    input: RunInput
    optim: OptimSettings  # effective values: optim.lr is base_lr x clips per step / lr_reference_batch
    batch_size: int  # videos (or images) per optimiser step, over all processes
    base_lr: float = 0.0  # the recipe's lr (the paper's number)
    lr_reference_batch: int | None = None  # None: base_lr is the lr
    selector: str = "group_dynamic_l2"
    method: str | None = None
    align: bool = False
    budgets: tuple[int, ...] = ()
    teacher_budget: int | None = None
    distill_layers: int = 0
    teacher_layer_interval: float = 1.0
    distill_decoder: str = "mlp"
    temperature: float = 0.07  # video-text stages: the contrastive temperature the run starts from
    recipes: tuple[str, ...] = ()  # the recipe chain of config/runs.yaml, the most general first
    freeze: str = "none"
    head_map: str | None = None  # dataset id whose K710 head rows are reused
    mix: str = "alternate"
    augment: Mapping[str, Any] = field(default_factory=dict)
    heads: tuple[int, ...] = (0,)  # the pooling head / classifier trained with each budget (direct: one)
    num_heads: int = 1

    @property
    def repeats(self) -> int:
        """Augmented clips per decoded video (the official `--num_sample`)."""
        return int(self.augment.get("repeats", 1))

    @property
    def clips_per_step(self) -> int:
        return self.batch_size * self.repeats

    @property
    def trained_tokens(self) -> tuple[int, ...]:
        """The token count each of `heads` trains at: its budget, or a fixed input's whole token count."""
        if self.budgets:
            return self.budgets
        spec = self.input.spec
        return (spec.tokens(spec.frames[0], spec.resolutions[0]),)


def teacher_layers(depth: int, count: int, interval: float) -> list[int]:
    """Flux-UMT's targets, InternVideo2's: teacher blocks depth - int(i x interval) - 1 for i < count (40 blocks,
    6 targets, interval 3.34: 39, 36, 33, 29, 26, 23), paired with the student's last `count` blocks, deepest
    with deepest."""
    layers = [depth - int(index * interval) - 1 for index in range(count)]
    if count and (layers[-1] < 0 or len(set(layers)) < count):
        raise ValueError(f"{count} teacher layers at interval {interval} do not fit a {depth}-block teacher: {layers}")
    return layers


def merge(base: Mapping, update: Mapping) -> dict:
    """`update` over `base`, recursively (Snakemake's config merge), leaving both as they were."""
    from snakemake.utils import update_config

    result = copy.deepcopy(dict(base))
    update_config(result, copy.deepcopy(dict(update)))
    return result


def expand(run_id: str, entry: Mapping, recipes: Mapping[str, Mapping], seen: tuple[str, ...] = ()) -> dict:
    """The run's keys over its recipe chain's."""
    if "recipe" not in entry:
        return dict(entry)
    name = entry["recipe"]
    if name not in recipes:
        raise ConfigError(f"runs.{run_id}.recipe: unknown recipe '{name}'; known: {', '.join(recipes)}")
    if name in seen:
        raise ConfigError(f"runs.{run_id}.recipe: recipes form a cycle through {' -> '.join((*seen, name))}")
    base = expand(run_id, recipes[name], recipes, (*seen, name))
    return merge(base, {key: value for key, value in entry.items() if key != "recipe"})


def recipe_chain(entry: Mapping, recipes: Mapping[str, Mapping]) -> list[str]:
    """The recipes a run builds on, the most general first (`expand` has checked the chain)."""
    chain = []
    while "recipe" in entry:
        chain.append(entry["recipe"])
        entry = recipes[entry["recipe"]]
    return chain[::-1]


def _values(run_id: str, key: str, value: int | list[int], convert) -> tuple[int, ...]:
    if isinstance(value, int):
        items = [value]
    else:
        start, stop, step = value
        if step <= 0 or len(range(start, stop, step)) == 0:
            raise ConfigError(f"runs.{run_id}.input.{key}: {value} is an empty range ([start, stop, step], stop excluded)")
        items = list(range(start, stop, step))
    try:
        return tuple(dict.fromkeys(convert(item) for item in items))
    except ConfigError as error:
        raise ConfigError(f"runs.{run_id}.input.{key}: {error}") from None


def resolve_input(run_id: str, raw: Mapping, scale: UnitScale) -> RunInput:
    method = raw.get("method", "flexible")
    for key in ("frames", "resolution"):
        if key not in raw:
            raise ConfigError(f"runs.{run_id}.input.{key} is missing; give a value or a [start, stop, step] range")
    frames = _values(run_id, "frames", raw["frames"], scale.frame)
    resolutions = _values(run_id, "resolution", raw["resolution"], scale.pixels)
    if method == "fixed":
        if len(frames) != 1 or len(resolutions) != 1:
            raise ConfigError(f"runs.{run_id}.input: a fixed input takes one frame count and one resolution")
        tokens = frames[0] * (resolutions[0] // scale.patch_size) ** 2
        threshold = (tokens, tokens)
    else:
        if "token_threshold" not in raw:
            raise ConfigError(f"runs.{run_id}.input.token_threshold is missing for flexible sampling (paper: [2048, 4096])")
        low, high = raw["token_threshold"]
        if low <= 0 or high < low:
            raise ConfigError(f"runs.{run_id}.input.token_threshold: {[low, high]} must be [min, max] with 0 < min <= max")
        threshold = (scale.tokens(low), scale.tokens(high))
    try:
        spec = FlexibleSpec(frames, resolutions, threshold[0], threshold[1], scale.patch_size)
    except ConfigError as error:
        raise ConfigError(f"runs.{run_id}.input: {error}") from None
    image = raw.get("image_resolution")
    try:
        image_resolution = scale.pixels(image) if image else None
    except ConfigError as error:
        raise ConfigError(f"runs.{run_id}.input.image_resolution: {error}") from None
    return RunInput(method, spec, image_resolution)


def resolve_run(
    run_id: str,
    entry: Mapping,
    recipes: Mapping[str, Mapping],
    roles: Mapping[str, str],
    corpora: Mapping[str, tuple[str, ...]],
    models: Mapping[str, str],
    scale: UnitScale,
    stage_overrides: Mapping[str, Mapping[str, Any]],
) -> ResolvedRun:
    raw = expand(run_id, entry, recipes)
    stage = raw.get("stage")
    if stage not in STAGES:
        raise ConfigError(f"runs.{run_id}.stage: '{stage}' is not one of {STAGES} (set it in the run or its recipe)")
    alias = raw.get("model")
    if alias not in models:
        raise ConfigError(f"runs.{run_id}.model: size alias '{alias}' is not in the config's `models` ({', '.join(models)})")
    overrides: dict[str, Any] = {}
    for key in (stage, *recipe_chain(entry, recipes), run_id):  # the stage's, each recipe's, then the run's own
        overrides = merge(overrides, stage_overrides.get(key, {}))
    optim_raw = merge(raw.get("optim", {}), {key: overrides[key] for key in STAGE_OPTIM_OVERRIDES if key in overrides})
    missing = [key for key in ("lr", "weight_decay", "epochs", "batch_size") if key not in optim_raw]
    if missing:
        raise ConfigError(f"runs.{run_id}.optim: missing {missing}")
    augment = merge(raw.get("augment", {}), overrides.get("augment", {}))
    repeats = int(augment.get("repeats", 1))
    if repeats > 1 and stage not in ("finetune", "umt"):
        raise ConfigError(f"runs.{run_id}.augment.repeats: repeated augmentation is for video-only stages (finetune, umt)")
    batch_size = int(optim_raw["batch_size"])
    reference = optim_raw.get("lr_reference_batch")
    factor = batch_size * repeats / reference if reference else 1.0  # the official linear scaling rule
    optim = OptimSettings(
        lr=float(optim_raw["lr"]) * factor,
        weight_decay=float(optim_raw["weight_decay"]),
        betas=tuple(optim_raw.get("betas", (0.9, 0.999))),
        eps=float(optim_raw.get("eps", OptimSettings.eps)),
        layer_decay=optim_raw.get("layer_decay"),
        epochs=float(optim_raw["epochs"]),
        warmup_epochs=float(optim_raw.get("warmup_epochs", 0.0)),
        min_lr=float(optim_raw.get("min_lr", OptimSettings.min_lr)) * factor,
        warmup_lr=float(optim_raw.get("warmup_lr", OptimSettings.warmup_lr)) * factor,
        clip_grad=optim_raw.get("clip_grad"),
    )
    datasets = _datasets(run_id, stage, raw.get("data", {}), roles, corpora)
    options = dict(raw.get("model_options", {}))
    switches = {}
    if options.pop("plain_vit", False):
        switches = dict(PLAIN_VIT)
    switches.update({key: options.pop(key) for key in MODEL_SWITCHES if key in options})
    method = raw.get("method")
    budgets = tuple(scale.tokens(b) for b in raw.get("budgets", ()))
    heads = switches.get("output_heads", SIZES[models[alias]].output_heads)
    selector = raw.get("selector", "group_dynamic_l2")
    if selector not in SELECTOR_NAMES:
        raise ConfigError(f"runs.{run_id}.selector: unknown selector '{selector}'; known: {', '.join(SELECTOR_NAMES)}")
    if stage == "finetune":
        if method not in ("direct", "single", "multi"):
            raise ConfigError(f"runs.{run_id}.method must be direct, single or multi for fine-tuning")
        if method == "multi" and len(budgets) != 3:
            raise ConfigError(f"runs.{run_id}.budgets: Flux-Multi takes three budgets (paper: [3072, 2048, 1024])")
        if method == "multi" and heads < 3:
            raise ConfigError(f"runs.{run_id}: Flux-Multi needs three output heads (model_options.output_heads: 3)")
        if method == "single" and len(budgets) != 1:
            raise ConfigError(f"runs.{run_id}.budgets: Flux-Single takes one budget")
    run_input = resolve_input(run_id, raw.get("input", {}), scale)
    if method == "direct":
        budgets = ()
    run_heads = _heads(run_id, budgets, run_input, heads, scale)
    head_map_role = raw.get("head_map")
    if head_map_role is not None and head_map_role not in roles:
        raise ConfigError(f"runs.{run_id}.head_map: role '{head_map_role}' is not bound under `roles`")
    return ResolvedRun(
        id=run_id,
        stage=stage,
        model=models[alias],
        model_options={**switches, **options},
        parent=raw.get("parent"),
        datasets=datasets,
        input=run_input,
        optim=optim,
        batch_size=batch_size,
        base_lr=float(optim_raw["lr"]),
        lr_reference_batch=reference,
        selector=selector,
        method=method,
        align=bool(raw.get("align", False)),
        budgets=budgets,
        teacher_budget=scale.tokens(raw["teacher_budget"]) if "teacher_budget" in raw else None,
        distill_layers=int(overrides.get("distill_layers", raw.get("distill_layers", 0))),
        teacher_layer_interval=float(overrides.get("teacher_layer_interval", raw.get("teacher_layer_interval", 1.0))),
        distill_decoder=raw.get("distill_decoder", "mlp"),
        temperature=float(raw.get("temperature", 0.07)),
        recipes=tuple(recipe_chain(entry, recipes)),
        freeze=raw.get("freeze", "none"),
        head_map=roles[head_map_role] if head_map_role else None,
        mix=raw.get("data", {}).get("mix", "alternate"),
        augment=augment,
        heads=run_heads,
        num_heads=heads,
    )


def _heads(run_id: str, budgets: tuple[int, ...], run_input: RunInput, heads: int, scale: UnitScale) -> tuple[int, ...]:
    """The head each budget trains. Several budgets take one head each, the largest budget first (the official
    engine: 3072 / 2048 / 1024 -> heads 0 / 1 / 2; Flux-UMT's 2048 / 1536 / 1024 the same way); one budget, or a
    fixed input's token count, takes the head serving the nearest of 3072 / 2048 / 1024 (Flux-Single at 2048:
    head 1, as the official scripts' `--output_head 1`), so that single-budget pre-training and the fine-tuning
    after it train the same pooling head."""
    if len(budgets) > 1:
        if len(budgets) > heads:
            raise ConfigError(
                f"runs.{run_id}.budgets: {len(budgets)} budgets need as many output heads (model_options.output_heads)"
            )
        if list(budgets) != sorted(budgets, reverse=True):
            raise ConfigError(f"runs.{run_id}.budgets: list several budgets largest first (head 0 takes the largest)")
        return tuple(range(len(budgets)))
    if budgets:
        tokens = budgets[0]
    elif len(run_input.spec.frames) == 1 and len(run_input.spec.resolutions) == 1:
        tokens = run_input.spec.tokens(run_input.spec.frames[0], run_input.spec.resolutions[0])
    else:
        raise ConfigError(f"runs.{run_id}: a flexible input needs `budgets` (the tokens each step keeps)")
    if heads == 1:
        return (0,)
    head_tokens = {head: scale.tokens(budget) for head, budget in enumerate(HEAD_BUDGETS[:heads])}
    return (nearest_head(tokens, head_tokens),)


def _datasets(
    run_id: str, stage: str, data: Mapping, roles: Mapping[str, str], corpora: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    if "corpus" in data:
        corpus = data["corpus"]
        if corpus not in corpora:
            raise ConfigError(f"runs.{run_id}.data.corpus: '{corpus}' is not in the config's `corpora` ({', '.join(corpora)})")
        wanted = list(corpora[corpus])
    elif "role" in data:
        wanted = [data["role"]]
    else:
        wanted = list(data.get("roles", ()))
    if not wanted:
        raise ConfigError(f"runs.{run_id}.data: name a role, roles or a corpus")
    unbound = [role for role in wanted if role not in roles]
    if unbound:
        raise ConfigError(f"runs.{run_id}.data: role(s) {unbound} are not bound under `roles` in this configuration")
    if stage == "finetune" and len(wanted) != 1:
        raise ConfigError(f"runs.{run_id}.data: fine-tuning takes one dataset role")
    return tuple(dict.fromkeys(roles[role] for role in wanted))


def resolve_runs(document: Mapping, **context: Any) -> dict[str, ResolvedRun]:
    recipes, runs = document["recipes"], document["runs"]
    unknown = [key for key in context.get("stage_overrides", {}) if key not in STAGES and key not in recipes and key not in runs]
    if unknown:
        raise ConfigError(
            f"training.stages: {unknown} are neither stages ({', '.join(STAGES)}) "
            f"nor recipes ({', '.join(recipes)}) nor runs of the runs file"
        )
    resolved = {run_id: resolve_run(run_id, entry, recipes, **context) for run_id, entry in runs.items()}
    for run in resolved.values():
        if run.parent is not None and run.parent not in resolved:
            raise ConfigError(f"runs.{run.id}.parent: unknown run '{run.parent}'")
    state: dict[str, str] = {}

    def visit(run_id: str, path: tuple[str, ...]) -> None:
        if state.get(run_id) == "done":
            return
        if state.get(run_id) == "active":
            raise ConfigError(f"runs: parents form a cycle: {' -> '.join((*path, run_id))}")
        state[run_id] = "active"
        if resolved[run_id].parent:
            visit(resolved[run_id].parent, (*path, run_id))
        state[run_id] = "done"

    for run_id in resolved:
        visit(run_id, ())
    return resolved


def run_to_dict(run: ResolvedRun) -> dict[str, Any]:
    """JSON-able form of a resolved run, as job specs carry it."""
    from dataclasses import asdict

    data = asdict(run)
    data["input"]["spec"] = {
        "frames": list(run.input.spec.frames),
        "resolutions": list(run.input.spec.resolutions),
        "token_min": run.input.spec.token_min,
        "token_max": run.input.spec.token_max,
        "patch_size": run.input.spec.patch_size,
    }
    data["optim"]["betas"] = list(run.optim.betas)
    return data


def run_from_dict(data: Mapping[str, Any]) -> ResolvedRun:
    spec = data["input"]["spec"]
    run_input = RunInput(
        data["input"]["method"],
        FlexibleSpec(tuple(spec["frames"]), tuple(spec["resolutions"]), spec["token_min"], spec["token_max"], spec["patch_size"]),
        data["input"]["image_resolution"],
    )
    optim = OptimSettings(**{**data["optim"], "betas": tuple(data["optim"]["betas"])})
    fields = {key: value for key, value in data.items() if key not in ("input", "optim")}
    for key in ("datasets", "budgets", "heads", "recipes"):
        fields[key] = tuple(fields[key])
    return ResolvedRun(**fields, input=run_input, optim=optim)
