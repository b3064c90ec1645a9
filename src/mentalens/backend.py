"""One interface for every model: evaluation, chat and the server take a Backend and never care which.

    answer(prompts)  -> list[str]       one IMHI-style (or any) completion per prompt, batched
    stream(messages) -> Iterator[str]   text deltas of one chat reply

Implementations are registered lazily by name so that choosing one never imports torch up front:
`embedded` (analyzer + retrieval, offline), `hf` (local model + adapter), `proxy` (proxy-tuned
ensemble), `openai` (any OpenAI-compatible endpoint).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Literal, TypedDict

from mentalens.errors import ConfigError
from mentalens.registry import Registry

Role = Literal["system", "user", "assistant"]


class Message(TypedDict):
    role: Role
    content: str


@dataclasses.dataclass
class GenerationConfig:
    """Decoding settings shared by every backend (a backend ignores what it cannot honour)."""

    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0, not {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ConfigError(f"repetition_penalty must be > 0, not {self.repetition_penalty}")
        self.stop = tuple(self.stop)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Backend(ABC):
    """A text generator. Subclasses implement `answer` and `stream`; `chat` joins the stream."""

    name: str = "backend"

    @abstractmethod
    def answer(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        """One completion per prompt (e.g. an IMHI query -> "<label sentence> Reasoning: ...")."""

    @abstractmethod
    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        """Yield the text deltas of the assistant's reply to a chat history."""

    def chat(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> str:
        return "".join(self.stream(messages, config))

    def describe(self) -> dict[str, Any]:
        """What this backend is (for reports and /v1/models), without secrets."""
        return {"backend": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to release
        """Release models, connections or threads."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BACKENDS: Registry[type[Backend]] = Registry("backend")
BACKENDS.register("embedded", "mentalens.analyze.backend:EmbeddedBackend")
BACKENDS.register("hf", "mentalens.llm.backend:HFBackend", aliases=("local", "transformers"))
BACKENDS.register("proxy", "mentalens.proxy.backend:ProxyBackend")
BACKENDS.register("openai", "mentalens.llm.openai_backend:OpenAIBackend", aliases=("openai-compatible",))


def get_backend(name: str, **options: Any) -> Backend:
    """Build a backend by registered name; options go to its constructor."""
    return BACKENDS.build(name, **options)
