"""What an LLM backend sees: a counsellor system prompt steered by the turn's analysis, and a history window.

The system prompt sets a supportive, non-diagnosing role and says it is an AI. The analysis note names the
emotions the analyzer found in the latest message and the conversation's risk level, so the model can reflect
them; it tells the model never to quote scores or name conditions. The history window keeps the newest
messages that fit the model's context (system prompt and latest message always kept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mentalens.backend import Message
from mentalens.counsel.analysis import top_emotions, words_for

SYSTEM_PROMPT = (
    "You are mentalens, an AI support companion. You are not a human and not a licensed therapist, and you say "
    "so if asked. Reply like a warm, supportive counsellor: listen, reflect the person's feelings in your own "
    "words, validate them, and gently explore with one open question. Do not diagnose or label the person with "
    "any condition, do not recommend or dose medication, and do not give medical or legal instructions. "
    "Suggest professional support when it would help. Keep replies under 150 words, in plain language."
)

RISK_NOTES = {
    "low": "The person may be feeling hopeless or like a burden. Gently ask how they are coping and whether they "
    "have thought about harming themselves.",
    "moderate": "The person may be having thoughts of suicide or self-harm. Take this seriously, stay calm and "
    "caring, ask directly about their safety, and encourage them to reach out to a crisis line or someone they "
    "trust today.",
    "high": "The person may be at serious risk of suicide or self-harm. Put their safety first: ask whether they "
    "are safe right now, encourage them to contact a crisis line or emergency services now, and to stay with "
    "someone. Never discuss methods.",
    "imminent": "The person may be in immediate danger. Urge them to contact emergency services or a crisis line "
    "right now and to get to a safe place or stay with someone. Keep it short. Never discuss methods.",
}


def analysis_note(analysis: Any, risk_level: str = "none", resources: Sequence[str] = ()) -> str:
    """A note for the model about this turn (the person never sees it)."""
    parts = []
    emotions = words_for([label for label, _ in top_emotions(analysis, k=3, min_score=0.05)])
    if emotions:
        parts.append(f"An automatic reading of their latest message suggests: {', '.join(emotions)}.")
    if risk_level in RISK_NOTES:
        parts.append(f"Safety: {RISK_NOTES[risk_level]}")
        if resources:
            parts.append("Resources you may mention: " + "; ".join(resources) + ".")
    if not parts:
        return ""
    parts.append(
        "Acknowledge these feelings naturally if they fit; the reading may be wrong, so never mention it, "
        "never quote scores and never name a condition."
    )
    return " ".join(parts)


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (English BPE: about 4 characters per token, rounded up)."""
    return len(text) // 4 + 1


def build_messages(
    history: Sequence[Message],
    user_message: str,
    note: str = "",
    context_tokens: int = 2048,
    reserve_tokens: int = 256,
    count: Callable[[str], int] = approx_tokens,
    system_prompt: str = SYSTEM_PROMPT,
) -> list[Message]:
    """System prompt (+ note), the newest history that fits, then the latest message.

    context_tokens - reserve_tokens is the prompt budget (the reserve is for the reply). A latest message
    longer than the budget keeps its beginning and end.
    """
    system = system_prompt + ("\n\n" + note if note else "")
    overhead = 8  # per-message template tokens (role markers)
    budget = context_tokens - reserve_tokens - count(system) - overhead
    user_message = _fit(user_message, max(budget, 32), count)
    budget -= count(user_message) + overhead
    kept: list[Message] = []
    for msg in reversed(list(history)):
        if msg.get("role") not in ("user", "assistant"):
            continue
        cost = count(msg["content"]) + overhead
        if cost > budget:
            break
        kept.append({"role": msg["role"], "content": msg["content"]})
        budget -= cost
    kept.reverse()
    if kept and kept[0]["role"] == "assistant":  # templates expect a user turn first
        kept = kept[1:]
    return [{"role": "system", "content": system}, *kept, {"role": "user", "content": user_message}]


def _fit(text: str, budget: int, count: Callable[[str], int]) -> str:
    if count(text) <= budget:
        return text
    chars = max(budget * 4 - 16, 64)
    head = text[: chars * 2 // 3]
    tail = text[-(chars // 3) :]
    return f"{head} […] {tail}"
