"""The LLM layer: load any causal LM (hub id, folder, GGUF, offline package), format its prompts, generate.

Importing this package is cheap: torch and transformers load only when a model is loaded.

    from mentalens.llm import load_model, format_chat, imhi_prompt
    lm = load_model("smollm2-135m-instruct", adapter="smollm2-imhi-lora")
    text = format_chat(lm.tokenizer, [{"role": "user", "content": imhi_prompt(post, "DR")}])

Backends for evaluation/chat/server: `mentalens.llm.backend.HFBackend` (local model + adapter) and
`mentalens.llm.openai_backend.OpenAIBackend` (any OpenAI-compatible endpoint).
"""

from mentalens.llm.loading import (
    LoadedModel,
    adapter_base,
    load_model,
    load_tokenizer,
    model_max_length,
    packaged_adapters,
    resolve_adapter,
    resolve_model,
)
from mentalens.llm.offline import OFFLINE_MODELS, prepare_offline
from mentalens.llm.prompts import (
    COUNSELLING_SYSTEM_PROMPT,
    IMHI_FORMATS,
    format_chat,
    has_chat_template,
    imhi_prompt,
    plain_chat,
)

__all__ = [
    "COUNSELLING_SYSTEM_PROMPT",
    "IMHI_FORMATS",
    "OFFLINE_MODELS",
    "LoadedModel",
    "adapter_base",
    "format_chat",
    "has_chat_template",
    "imhi_prompt",
    "load_model",
    "load_tokenizer",
    "model_max_length",
    "packaged_adapters",
    "plain_chat",
    "prepare_offline",
    "resolve_adapter",
    "resolve_model",
]
