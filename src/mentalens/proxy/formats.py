"""How each ensemble member turns a prompt (text or chat messages) into token ids.

Proxy-tuning's reference implementation prompts a chat expert through its chat template and the base
model with plain text; each member here does the same with its own tokenizer and format:

    auto   the tokenizer's chat template when it has one, else raw text (messages: the plain template)
    chat   the chat template (the documented plain template when the tokenizer has none)
    raw    a text prompt as is; messages through the plain template of `mentalens.llm.prompts`
    plain  always the plain template (`### User:` blocks), for base models tuned on it

A member may also take a callable(messages) -> str. Text that came out of a chat template already holds
its special tokens, so it is tokenised without adding BOS again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mentalens.errors import DataError
from mentalens.registry import Registry

Prompt = str | Sequence[Mapping[str, Any]]
Formatter = Callable[[Any, Prompt, "str | None"], tuple[str, bool]]  # -> (text, add_special_tokens)


def as_messages(prompt: Prompt, system: str | None = None) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if system and not (msgs and msgs[0].get("role") == "system"):
        msgs.insert(0, {"role": "system", "content": system})
    return msgs


def _chat(tokenizer: Any, prompt: Prompt, system: str | None) -> tuple[str, bool]:
    from mentalens.llm.prompts import format_chat, has_chat_template

    return format_chat(tokenizer, as_messages(prompt, system)), not has_chat_template(tokenizer)


def _raw(tokenizer: Any, prompt: Prompt, system: str | None) -> tuple[str, bool]:
    if isinstance(prompt, str):
        return (f"{system}\n\n{prompt}" if system else prompt), True
    return _plain(tokenizer, prompt, system)


def _plain(tokenizer: Any, prompt: Prompt, system: str | None) -> tuple[str, bool]:
    from mentalens.llm.prompts import plain_chat

    return plain_chat(as_messages(prompt, system), eos_token=getattr(tokenizer, "eos_token", None)), True


def _auto(tokenizer: Any, prompt: Prompt, system: str | None) -> tuple[str, bool]:
    from mentalens.llm.prompts import has_chat_template

    return (_chat if has_chat_template(tokenizer) else _raw)(tokenizer, prompt, system)


PROMPT_FORMATS: Registry[Formatter] = Registry("prompt format")
PROMPT_FORMATS.register("auto", _auto)
PROMPT_FORMATS.register("chat", _chat, aliases=("template", "chat_template"))
PROMPT_FORMATS.register("raw", _raw, aliases=("text", "none"))
PROMPT_FORMATS.register("plain", _plain)


def check_prompts(prompts: Any) -> list[Prompt]:
    """A list of prompts (each a string or a list of {role, content} messages), or a one-line error.

    A single string, or a single list of message dicts, is one prompt.
    """
    one_chat = isinstance(prompts, Sequence) and prompts and all(isinstance(p, Mapping) for p in prompts)
    if isinstance(prompts, str) or one_chat:
        prompts = [prompts]
    if not isinstance(prompts, Sequence) or isinstance(prompts, bytes):
        raise DataError(f"prompts must be a list of strings or of message lists, not {type(prompts).__name__}")
    out: list[Prompt] = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, Sequence) and not isinstance(p, bytes):
            if not p:
                raise DataError(f"prompt {i} is an empty message list: give at least one message")
            for j, m in enumerate(p):
                if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
                    raise DataError(f"prompt {i}, message {j} must be a mapping with 'role' and 'content'")
            out.append(list(p))
        else:
            raise DataError(f"prompt {i} must be a string or a list of messages, not {type(p).__name__}")
    if not out:
        raise DataError("no prompts given: pass at least one prompt")
    return out


def render(fmt: str | Callable[..., str], tokenizer: Any, prompt: Prompt, system: str | None) -> tuple[str, bool]:
    """The text one member sees for a prompt, and whether its tokenizer should add special tokens."""
    if callable(fmt):
        text = fmt(as_messages(prompt, system))
        if not isinstance(text, str):
            raise DataError(f"prompt format {fmt!r} returned {type(text).__name__}, not text: return a string")
        return text, False
    return PROMPT_FORMATS.get(fmt)(tokenizer, prompt, system)


__all__ = ["PROMPT_FORMATS", "Prompt", "as_messages", "check_prompts", "render"]
