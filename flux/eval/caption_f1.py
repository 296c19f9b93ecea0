"""DREAM-1K's caption F1 (AutoDQ, bytedance/tarsier evaluation/metrics/evaluate_dream_gpt.py), offline.

AutoDQ extracts events from the predicted description with an LLM, then asks an LLM judge which reference events
the prediction entails (recall) and which predicted events the reference entails (precision). Per video a score is
hits / events (an empty event list scores 1); recall and precision are averaged over the videos of each source
subset, F1 is the harmonic mean of those averages, and the overall recall and precision are the means over subsets.

That aggregation is kept here. The two LLM steps cannot run offline, so they are replaced [I], and the numbers are
not comparable with the paper's:
* events of a description are its clauses: sentences, split further at "then" / "next" / "finally" connectives;
* an event is entailed by a text when at least `ENTAILMENT_COVERAGE` of its content words occur in the text
  (lower-cased, plural -s stripped, function words left out): a lexical judge that misses paraphrases.
The reference events are the annotation's (`extra_info.events`), as AutoDQ uses them when given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

ENTAILMENT_COVERAGE = 0.5
_CLAUSE_BREAKS = re.compile(r"[.!?;]+|,?\s+(?:and\s+)?(?:then|next|finally|afterwards)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
_FUNCTION_WORDS = frozenset(
    "a an the and or but of in on at to from with by for into onto over under is are was were be been being it its "
    "this that these those there here we see video clip shows showing which who while as then next finally first "
    "after before one some".split()
)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def content_words(text: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(text.lower()) if word not in _FUNCTION_WORDS}


def events(description: str) -> list[str]:
    """The clauses of a description that carry a content word."""
    return [clause.strip() for clause in _CLAUSE_BREAKS.split(description) if clause and content_words(clause)]


def entailed(event: str, text: str) -> bool:
    words = content_words(event)
    return bool(words) and len(words & content_words(text)) >= ENTAILMENT_COVERAGE * len(words)


def _share(items: Sequence[str], text: str) -> float:
    return 1.0 if not items else sum(entailed(item, text) for item in items) / len(items)


def video_scores(prediction: str, reference: str, reference_events: Sequence[str]) -> dict[str, float]:
    """One video: recall (reference events the prediction entails), precision (predicted events the reference
    entails)."""
    return {"recall": _share(list(reference_events), prediction), "precision": _share(events(prediction), reference)}


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def aggregate(scores: Iterable[Mapping[str, float]], subsets: Iterable[str]) -> dict[str, float]:
    """AutoDQ's overall numbers in percent: per-subset means, then the mean over subsets, F1 of those means."""
    by_subset: dict[str, list[Mapping[str, float]]] = {}
    for score, subset in zip(scores, subsets, strict=True):
        by_subset.setdefault(subset, []).append(score)
    if not by_subset:
        raise ValueError("no video to score")
    recall = sum(sum(s["recall"] for s in part) / len(part) for part in by_subset.values()) / len(by_subset)
    precision = sum(sum(s["precision"] for s in part) / len(part) for part in by_subset.values()) / len(by_subset)
    return {
        "f1": round(100 * _f1(precision, recall), 4),
        "recall": round(100 * recall, 4),
        "precision": round(100 * precision, 4),
    }
