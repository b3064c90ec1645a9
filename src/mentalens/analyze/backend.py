"""The `embedded` backend: IMHI answers from the analyzer, chat replies from the retrieval counsellor.

Offline and CPU-only, so evaluation and chat work on any machine without a model download.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mentalens.backend import Backend, GenerationConfig, Message
from mentalens.errors import BackendError


class EmbeddedBackend(Backend):
    """answer(prompts): full IMHI queries (instruction or completion wording) -> analyzer answers."""

    name = "embedded"

    def __init__(self, analyzer: Any = None, artefact: str | None = None, **_: Any):
        self._analyzer = analyzer
        self._artefact = artefact
        self._counsellor: Any = None

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            from mentalens.analyze.analyzer import get_analyzer

            self._analyzer = get_analyzer(self._artefact)
        return self._analyzer

    def answer(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        """One IMHI-style answer per query; each distinct post is encoded once (IRF/MultiWD repeat posts)."""
        from mentalens.data import split_query

        posts, questions = [], []
        for prompt in prompts:
            post, question, _fmt = split_query(prompt)
            posts.append(post)
            questions.append(question)
        return self.analyzer.answer_batch(posts, questions)

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        """Chat replies come from the retrieval counsellor (counselling answers to similar questions)."""
        if self._counsellor is None:
            try:
                from mentalens.counsel.retrieval import RetrievalCounsellor
            except ImportError as exc:
                raise BackendError(
                    f"the embedded chat needs mentalens.counsel.retrieval, which is not available ({exc}): "
                    "use another backend for chat (--backend hf|openai)"
                ) from None
            self._counsellor = RetrievalCounsellor(analyzer=self.analyzer)
        yield from self._counsellor.stream(messages, config or GenerationConfig())

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": self.name, "model": "mentalens embedded analyzer (all-MiniLM-L6-v2 + heads)"}
        if self._analyzer is not None:
            info.update(self._analyzer.describe())
        return info


__all__ = ["EmbeddedBackend"]
