"""A run's saved checkpoint (results/runs/<run>/final.pt): the one payload layout that training, the teacher import
and `flux import` write, and that training (parents, teachers), evaluation and tables read.

    {"model": state dict (fp32), "metadata": {run, stage, model, model_switches, num_classes, class_names,
     selector, trained_heads, ...}, "text": tiny text tower (config, tokenizer, weights) or absent,
     "logit_scale": the learned contrastive scale or absent,
     "chat": {"projector": flux.models.chat.Projector.to_dict(), "llm": flux.models.chat.llm_record()} or absent}

Readers rebuild the model from the metadata alone, so a checkpoint is self-describing: no configuration is needed
to evaluate it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from flux.models.checkpoint import load_checkpoint, write_payload
from flux.models.fluxvit import FluxViT, build_model
from flux.models.text import TextEncoder, TinyTextConfig, TinyTextEncoder, WordTokenizer


def write_run_checkpoint(
    path: Path,
    model: nn.Module,
    metadata: Mapping[str, Any],
    text: TextEncoder | None = None,
    logit_scale: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Weights in fp32 whatever the training precision (DeepSpeed bf16 keeps its master weights in the optimiser),
    the metadata readers rebuild the model from, the tiny text tower (a pretrained one is configured, not saved),
    and what the objective keeps besides (`extra`: a chat run's projector and LLM)."""
    payload: dict[str, Any] = {
        "model": {key: value.float() if value.is_floating_point() else value for key, value in model.state_dict().items()},
        "metadata": dict(metadata),
    }
    if text is not None:  # a pretrained (Hugging Face) tower is configured, not saved: recorded as None
        tiny = isinstance(text, TinyTextEncoder)
        payload["text"] = (
            {"config": asdict(text.config), "tokenizer": text.tokenizer.to_dict(), "state": text.state_dict()} if tiny else None
        )
        payload["logit_scale"] = float(logit_scale)
    payload.update(extra or {})
    write_payload(payload, path)


def model_from_checkpoint(payload: Mapping[str, Any], leave_out: Sequence[str] = ()) -> FluxViT:
    """The model the metadata describes, with the saved weights loaded strictly; `leave_out`: key patterns of the
    file the caller does not use (a teacher's text projection, for distillation), which are then not built."""
    metadata = payload["metadata"]
    state = payload["model"]
    keeps_text = "vision_proj.weight" in state and not any(pattern.startswith("^vision_proj") for pattern in leave_out)
    model = build_model(
        metadata["model"],
        num_classes=metadata.get("num_classes", 0),
        text_dim=state["vision_proj.weight"].shape[0] if keeps_text else None,
        selector=metadata.get("selector", "group_dynamic_l2"),
        **metadata.get("model_switches", {}),
    )
    load_checkpoint(model, payload, strict=True, allow_unexpected=leave_out)
    return model


def text_encoder_from_checkpoint(payload: Mapping[str, Any]) -> TinyTextEncoder | None:
    """The tiny text tower saved with a video-text run, or None when it has none."""
    text = payload.get("text")
    if not text:
        return None
    encoder = TinyTextEncoder(TinyTextConfig(**text["config"]), WordTokenizer.from_dict(text["tokenizer"]))
    encoder.load_state_dict(text["state"])
    return encoder
