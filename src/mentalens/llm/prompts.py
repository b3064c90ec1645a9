"""Prompt formats: chat templates, the plain template for base models, IMHI queries, the counselling prompt.

Training and generation must format text the same way, so both go through `format_chat` and
`imhi_prompt` here. A tokenizer with a chat template uses it (`apply_chat_template`); a base model
without one gets PLAIN_TEMPLATE, documented below, so a LoRA trained on it is prompted identically later.

Plain template (base models):

    ### System:
    {system}

    ### User:
    {user}

    ### Assistant:
    {assistant}{eos}

Each message is a block "### <Role>:\\n<content>" and blocks are separated by one blank line; an assistant
turn ends with the tokenizer's EOS token (when there is one) so a model learns to stop; the generation
prompt is "### Assistant:\\n".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from mentalens.errors import ConfigError, UnknownNameError

ImhiFormat = Literal["instruction", "complete"]
IMHI_FORMATS: tuple[str, ...] = ("instruction", "complete")

COUNSELLING_SYSTEM_PROMPT = (
    "You are mentalens, an AI support assistant, not a human and not a therapist. Listen carefully, reflect "
    "the person's feelings back in your own words, and respond with warmth and without judgement. Ask one "
    "gentle, open question at a time. Never diagnose, never prescribe or advise on medication, and never "
    "claim certainty about what someone has. Encourage reaching out to people they trust and to qualified "
    "professionals. If the person mentions suicide, self-harm, harming others or being in danger, say that "
    "you are concerned, urge them to contact local emergency services or a crisis line right away, and stay "
    "supportive. Keep replies short and in plain language."
)

PLAIN_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_GENERATION_PROMPT = "### Assistant:\n"


def plain_chat(
    messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True, eos_token: str | None = None
) -> str:
    """The documented plain template (see the module docstring) for tokenizers without a chat template."""
    blocks = []
    for m in _checked(messages):
        text = f"### {PLAIN_ROLE_NAMES[m['role']]}:\n{m['content']}"
        if m["role"] == "assistant" and eos_token:
            text += eos_token
        blocks.append(text)
    out = "\n\n".join(blocks)
    if add_generation_prompt:
        out = (out + "\n\n" if out else "") + PLAIN_GENERATION_PROMPT
    return out


def plain_chat_template(bos: bool = False) -> str:
    """PLAIN_TEMPLATE as a Jinja chat template, so a base model fine-tuned on it carries it in its tokenizer
    (and every later `format_chat`/backend formats prompts identically). bos: start with the BOS token."""
    roles = "{'system': 'System', 'user': 'User', 'assistant': 'Assistant'}"
    return (
        ("{{ bos_token }}" if bos else "")
        + "{%- for m in messages -%}"
        + "{%- if not loop.first %}{{ '\\n\\n' }}{% endif -%}"
        + "{{ '### ' ~ " + roles + "[m['role']] ~ ':\\n' ~ m['content'] }}"
        + "{%- if m['role'] == 'assistant' and eos_token %}{{ eos_token }}{% endif -%}"
        + "{%- endfor -%}"
        + "{%- if add_generation_prompt -%}{%- if messages %}{{ '\\n\\n' }}{% endif -%}"
        + "{{ '### Assistant:\\n' }}{%- endif -%}"
    )


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_chat(tokenizer: Any, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
    """The text a model sees for a chat history: its own chat template, else the plain template.

    Templates that reject a system role (Gemma's) get the system prompt folded into the first user
    turn, which is what those models' authors recommend.
    """
    msgs = _checked(messages)
    if tokenizer is None or not has_chat_template(tokenizer):
        return plain_chat(msgs, add_generation_prompt, getattr(tokenizer, "eos_token", None))
    try:
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # jinja raises TemplateError for unsupported roles
        if msgs and msgs[0]["role"] == "system" and "system" in str(exc).lower():
            return tokenizer.apply_chat_template(
                fold_system(msgs), tokenize=False, add_generation_prompt=add_generation_prompt
            )
        raise


def fold_system(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Merge a leading system message into the first user message (for templates without a system role)."""
    msgs = [dict(m) for m in messages]
    if not msgs or msgs[0]["role"] != "system":
        return msgs
    system = msgs.pop(0)["content"]
    if msgs and msgs[0]["role"] == "user":
        msgs[0]["content"] = f"{system}\n\n{msgs[0]['content']}"
    else:
        msgs.insert(0, {"role": "user", "content": system})
    return msgs


def _checked(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ConfigError(f"message {i} must be a mapping with 'role' and 'content', not {m!r:.80}")
        if m["role"] not in PLAIN_ROLE_NAMES:
            raise UnknownNameError("message role", str(m["role"]), PLAIN_ROLE_NAMES)
        out.append({"role": str(m["role"]), "content": "" if m["content"] is None else str(m["content"])})
    return out


def imhi_prompt(post: str, question: str, fmt: str = "instruction") -> str:
    """An IMHI query exactly as the benchmark writes it.

    instruction: `Consider this post: "<post>" Question: <question>`
    complete:    `Post: <post>  Question: <question> ` (two spaces and a trailing space, as in IMHI's files)

    `question` may also be an IMHI task name without aspects ("DR", "SAD"): its question in that format.
    """
    if fmt not in IMHI_FORMATS:
        raise UnknownNameError("IMHI format", fmt, IMHI_FORMATS)
    question = _task_question(question, fmt)
    if fmt == "instruction":
        return f'Consider this post: "{post}" Question: {question}'
    return f"Post: {post}  Question: {question} "


def _task_question(question: str, fmt: str) -> str:
    from mentalens.tasks import TASKS

    q = question.strip()
    if q in TASKS and not q.endswith(("?", "is", "of")):
        task = TASKS.get(q)
        if not task.aspects:
            return task.question(None, fmt)
    return q


__all__ = [
    "COUNSELLING_SYSTEM_PROMPT",
    "IMHI_FORMATS",
    "PLAIN_GENERATION_PROMPT",
    "fold_system",
    "format_chat",
    "has_chat_template",
    "imhi_prompt",
    "plain_chat",
    "plain_chat_template",
]
