"""The chat benchmarks' prompt texts, in one place: the synthetic instruction data is written with them, the chat
stage trains on them, and the evaluation asks with them.

MVBench as VideoChat2 evaluates it (OpenGVLab/Ask-Anything video_chat2/mvbench.ipynb): a system text, the question
with lettered options, "Only give the best option.", then the answer is read after "Best option:(". DREAM-1K as
Tarsier asks it (bytedance/tarsier data/annotations/DREAM-1k.jsonl): "Describe the video in detail." The
conversation separators of VideoChat2 (`###Human:` / `###Assistant:`) are not reproduced: the paper's LLM is not
named, and a frozen LLM's own chat template is what a linear probe would use [I].
"""

from __future__ import annotations

from collections.abc import Sequence

MVBENCH_SYSTEM = (
    "Carefully watch the video and pay attention to the cause and sequence of events, the detail and movement of "
    "objects, and the action and pose of persons. Based on your observations, select the best option that accurately "
    "addresses the question.\n"
)
QUESTION_PROMPT = "\nOnly give the best option."
ANSWER_PROMPT = "Best option:("
CAPTION_PROMPT = "Describe the video in detail."
LETTERS = "ABCDEFGH"


def option_letter(position: int) -> str:
    if not 0 <= position < len(LETTERS):
        raise ValueError(f"a multiple-choice question has at most {len(LETTERS)} options, got option {position + 1}")
    return LETTERS[position]


def mcq_question(question: str, candidates: Sequence[str]) -> str:
    """MVBench's `qa_template`: "Question: ...\\nOptions:\\n(A) ...\\n(B) ..." (no trailing newline)."""
    lines = [f"Question: {question}", "Options:"]
    lines += [f"({option_letter(position)}) {candidate}" for position, candidate in enumerate(candidates)]
    return "\n".join(lines)


def turn_prompt(instruction: str, question: str) -> str:
    """What the LLM reads after the video for one instruction turn {i, q, a}; the answer `a` follows."""
    return f"{instruction}{question}\n"


def caption_turns(captions: Sequence[str]) -> list[dict[str, str]]:
    """A captioned video's turns: "Describe the video in detail." answered by each caption."""
    return [{"i": "", "q": CAPTION_PROMPT, "a": caption} for caption in captions]


def mcq_prompt(question: str, candidates: Sequence[str]) -> str:
    """What the LLM reads after the video: system, question, options, the instruction and the answer prompt; the
    next token is the option letter."""
    return turn_prompt(MVBENCH_SYSTEM, mcq_question(question, candidates) + QUESTION_PROMPT) + ANSWER_PROMPT


def mcq_answer(candidates: Sequence[str], answer: str) -> str:
    """The text after the answer prompt for the right option: "B) red"."""
    return f"{option_letter(list(candidates).index(answer))}) {answer}"
