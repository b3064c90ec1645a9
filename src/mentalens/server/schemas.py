"""Request bodies of the API (pydantic), OpenAI-compatible where OpenAI defines the shape.

Fields OpenAI clients send that mentalens does not use (frequency_penalty, logit_bias, tools, ...) are
accepted and ignored, so the official clients work unchanged. mentalens extensions: `session_id` (continue a
server-side session) and `locale` (crisis resources for a country).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = "text"
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type in ("text", "input_text"))


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage]
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=256)
    session_id: str | None = Field(default=None, max_length=100)
    locale: str | None = Field(default=None, max_length=35)

    @field_validator("messages")
    @classmethod
    def _not_empty(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if not v:
            raise ValueError("messages is empty: send at least one {'role': 'user', 'content': ...} message")
        return v

    @model_validator(mode="after")
    def _one_choice(self) -> ChatCompletionRequest:
        if self.n not in (None, 1):
            raise ValueError("n must be 1: mentalens returns one reply per request")
        return self


class TextOrMessages(BaseModel):
    """Either `text` or `messages` (their user turns are joined)."""

    model_config = ConfigDict(extra="ignore")
    text: str | None = None
    messages: list[ChatMessage] | None = None
    locale: str | None = Field(default=None, max_length=35)

    @model_validator(mode="after")
    def _one_of(self) -> TextOrMessages:
        if self.text is None and not self.messages:
            raise ValueError("send either 'text' or a non-empty 'messages' list")
        if self.text is not None and self.messages:
            raise ValueError("send either 'text' or 'messages', not both")
        return self

    def joined(self) -> str:
        if self.text is not None:
            return self.text
        return "\n".join(m.text() for m in self.messages or [] if m.role == "user")


class AnalyzeRequest(TextOrMessages):
    evidence: bool = True


class RiskRequest(TextOrMessages):
    pass


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    locale: str | None = Field(default=None, max_length=35)
    persist: bool = False
