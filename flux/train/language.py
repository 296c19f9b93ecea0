"""The embedded default's language model (main Table 10): a tiny causal LM trained by the pipeline on the chat data's
text, then frozen by the chat stage. At paper scale a released LLM is read instead (`chat.llm`).

Its documents mirror the chat sequence with a caption in the video's place: [caption] [prompt] [answer], so that
the LM learns to answer from what precedes the prompt, and the chat stage's projector only has to make the video
read like a caption (the linear probe trains nothing else).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from flux.data.chat_prompts import CAPTION_PROMPT, caption_turns, turn_prompt
from flux.data.index import read_manifest
from flux.errors import TrainingError
from flux.io import atomic_write_json
from flux.models.chat import IGNORE
from flux.models.checkpoint import write_payload
from flux.models.llm import TinyCausalLM, TinyLMConfig
from flux.models.text import WordTokenizer
from flux.provenance import provenance
from flux.train.spec import LanguageModelSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Document:
    context: str  # a caption of the video, in the video's place
    prompt: str
    answer: str


def documents(turn_sets: Sequence[Sequence[dict[str, str]]]) -> list[Document]:
    """Every turn of every video, each after the video's first caption (videos without a caption turn give none:
    nothing would stand in for the video)."""
    found = []
    for turns in turn_sets:
        captions = [turn["a"] for turn in turns if turn["q"] == CAPTION_PROMPT]
        if captions:
            found += [Document(captions[0], turn_prompt(turn["i"], turn["q"]), turn["a"]) for turn in turns]
    return found


def manifest_turns(manifest: Path) -> list[list[dict[str, str]]]:
    """Every training video's instruction turns: an instruction dataset's as written, a captioned one's captions."""
    frame, info = read_manifest(manifest)
    rows = frame[frame["split"] == "train"]
    if info.task == "video_instruction":
        return [json.loads(raw)["turns"] for raw in rows["details"]]
    return [caption_turns(list(captions)) for captions in rows["captions"]]


def token_rows(model: TinyCausalLM, found: Sequence[Document]) -> list[list[int]]:
    rows = []
    for document in found:
        ids = [model.bos_id, *model.text_ids(document.context), *model.text_ids(document.prompt)]
        rows.append(ids + model.continuation_ids(document.prompt, document.answer) + [model.eos_id])
    return rows


def train_tiny_lm(
    found: Sequence[Document], config: dict, seed: int, epochs: float, batch_size: int, lr: float
) -> tuple[TinyCausalLM, list[float]]:
    """AdamW with a cosine schedule over every token's next-token loss; returns the model and the loss per step."""
    if not found:
        raise TrainingError("the tiny LM has no documents: the chat data has no captioned video")
    texts = [text for document in found for text in (document.context, document.prompt, document.answer)]
    tokenizer = WordTokenizer.build(texts)
    generator = torch.Generator().manual_seed(seed)
    model = TinyCausalLM(TinyLMConfig(vocab_size=tokenizer.vocab_size, **config), tokenizer, generator)
    rows = token_rows(model, found)
    longest = max(map(len, rows))
    if longest > model.config.max_length:
        raise TrainingError(f"a tiny-LM document has {longest} tokens, over chat.tiny_llm.max_length={model.config.max_length}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    steps = max(1, math.ceil(len(rows) / batch_size) * int(math.ceil(epochs)))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
    order_rng = np.random.default_rng(seed)
    losses = []
    step = 0
    while step < steps:
        order = order_rng.permutation(len(rows))
        for start in range(0, len(rows), batch_size):
            if step >= steps:
                break
            batch = [rows[k] for k in order[start : start + batch_size]]
            width = max(map(len, batch))
            ids = torch.full((len(batch), width), model.pad_id, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            for row, tokens in enumerate(batch):
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
            labels = ids.masked_fill(mask == 0, IGNORE)
            logits = model.logits(model.embed(ids), mask)[:, :-1]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=IGNORE
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            step += 1
    model.eval().requires_grad_(False)
    return model, losses


def run(job: dict) -> None:
    """`flux llm`: train the tiny causal LM on the chat data's documents, freeze it, write it."""
    spec = LanguageModelSpec.from_dict(job)
    torch.set_num_threads(max(1, spec.threads or 1))
    started = time.perf_counter()
    turn_sets = [turns for manifest in spec.manifests.values() for turns in manifest_turns(Path(manifest))]
    found = documents(turn_sets)
    model, losses = train_tiny_lm(found, spec.model, spec.seed, spec.epochs, spec.batch_size, spec.lr)
    seconds = round(time.perf_counter() - started, 2)
    summary = {
        "documents": len(found),
        "videos": len(turn_sets),
        "vocabulary": model.tokenizer.vocab_size,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "steps": len(losses),
        "first_loss": round(losses[0], 4),
        "final_loss": round(losses[-1], 4),
        "seconds": seconds,
        "provenance": provenance(spec.lineage, spec.seed),
    }
    write_payload({"llm": {"tiny": model.to_dict()}, "metadata": {"losses": losses, **summary}}, Path(spec.out))
    atomic_write_json(Path(spec.summary), summary)
    logger.info("tiny LM: %s", {key: value for key, value in summary.items() if key != "provenance"})
