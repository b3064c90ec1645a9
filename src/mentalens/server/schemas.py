"""Request bodies of the API (pydantic), OpenAI-compatible where OpenAI defines the shape.

Fields OpenAI clients send that mentalens does not use (frequency_penalty, logit_bias, tools, ...) are
accepted and ignored, so the official clients work unchanged. mentalens extensions: `session_id` (continue a
server-side session) and `locale` (crisis resources for a country).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator


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
    messages: list[ChatMessage] = Field(json_schema_extra={"minItems": 1})  # the validator below says why
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    stream: StrictBool = False
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, json_schema_extra={"maximum": 1})
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

    model_config = ConfigDict(extra="ignore", json_schema_extra={"oneOf": [
        {"required": ["text"], "properties": {"text": {"type": "string"}}},
        {"required": ["messages"], "properties": {"messages": {"type": "array"}}}]})
    text: str | None = Field(default=None, json_schema_extra={"minLength": 1, "pattern": r"\S"})
    messages: list[ChatMessage] | None = Field(default=None, json_schema_extra={"minItems": 1})
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
    evidence: StrictBool = True


class RiskRequest(TextOrMessages):
    pass


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    locale: str | None = Field(default=None, max_length=35)
    persist: StrictBool = False


# -- responses (documented in the OpenAPI schema; the API fuzz test checks every response against them) ---------
RiskLevelName = Literal["none", "low", "moderate", "high", "imminent"]


class _Open(BaseModel):
    """A response object: these fields are always there; more may be added without breaking clients."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error, in OpenAI's shape."""

    error: ErrorDetail


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class RiskOut(_Open):
    level: RiskLevelName
    flags: dict[str, bool]
    requires_escalation: bool
    cues: list[dict[str, Any]]
    resources: list[dict[str, Any]]


class TurnInfo(_Open):
    """The `mentalens` object of a chat response."""

    turn: int
    analysis: dict[str, Any] | None
    risk: RiskOut
    escalated: bool
    escalation_text: str | None
    fallback: str | None
    guard_violations: list[str]
    timeline_point: dict[str, Any]
    session_id: str | None
    disclosure: str
    not_a_diagnosis: str


class ChatCompletion(_Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice] = Field(min_length=1, max_length=1)
    usage: Usage
    mentalens: TurnInfo


class ModelCard(_Open):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(_Open):
    object: Literal["list"]
    data: list[ModelCard]


class AnalyzeOut(_Open):
    text: str
    tasks: dict[str, dict[str, Any]]
    emotions: list[dict[str, Any]]
    risk: RiskOut
    not_a_diagnosis: str


class RiskResponse(RiskOut):
    escalation_text: str | None


class Timeline(_Open):
    turns: list[dict[str, Any]]
    series: dict[str, list[float | None]]
    risk: list[RiskLevelName]


class SessionOut(_Open):
    id: str
    object: Literal["mentalens.session"]
    created: float
    locale: str | None
    persist: bool
    turns: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    timeline: Timeline


class SessionDeleted(_Open):
    id: str
    object: Literal["mentalens.session.deleted"]
    deleted: bool


class Health(_Open):
    status: Literal["ok"]
    ready: bool
    version: str
    backend: str
    auth_required: bool
    persistence: bool
    stats: dict[str, int]
