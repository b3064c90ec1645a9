"""HFBackend: a local transformers model (+ LoRA adapter) behind the common Backend interface.

answer() sorts prompts by length and generates in left-padded batches (little padding, one forward per
batch), then returns completions in the caller's order. stream() runs generate in a thread and yields text
deltas through transformers' TextIteratorStreamer; stop strings are held back until it is certain they
are not part of the reply. One lock serialises generation so a server can share one model safely.

IMHI prompts given to answer() are wrapped as a user turn of the model's chat template when it has one
(chat_prompts=None, the default), so fine-tuned chat models see exactly the format they were trained on;
base models get the raw prompt, as in the IMHI completion format.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from mentalens.backend import Backend, GenerationConfig, Message
from mentalens.errors import BackendError
from mentalens.llm.loading import LoadedModel, load_model, model_max_length
from mentalens.llm.prompts import format_chat, has_chat_template

PLAIN_TURN_MARKER = "\n### "  # where the next turn starts in the plain template (mentalens.llm.prompts)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """text up to the earliest stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class HFBackend(Backend):
    """A Hugging Face causal LM, optionally with a LoRA adapter, generating on CPU or GPU."""

    name = "hf"

    def __init__(
        self,
        model: str | LoadedModel,
        adapter: str | None = None,
        dtype: Any = "auto",
        device: str | None = None,
        batch_size: int = 8,
        *,
        chat_prompts: bool | None = None,
        system_prompt: str | None = None,
        device_map: Any = None,
        load_in_4bit: bool = False,
        load_in_8bit: bool = False,
        trust_remote_code: bool = False,
        merge_adapter: bool = False,
    ):
        if batch_size < 1:
            raise BackendError(f"batch_size must be at least 1, not {batch_size}")
        if isinstance(model, LoadedModel):
            self.lm = model
        else:
            self.lm = load_model(
                model, adapter=adapter, dtype=dtype, device=device, device_map=device_map,
                load_in_4bit=load_in_4bit, load_in_8bit=load_in_8bit, trust_remote_code=trust_remote_code,
                merge_adapter=merge_adapter,
            )
        self.tokenizer = self.lm.tokenizer
        self.tokenizer.padding_side = "left"
        self.tokenizer.truncation_side = "left"
        self.batch_size = batch_size
        self.chat_prompts = has_chat_template(self.tokenizer) if chat_prompts is None else chat_prompts
        self.system_prompt = system_prompt
        self.max_positions = model_max_length(self.lm.model)
        self.truncated = 0  # prompts cut from the left to fit the model (reported by describe())
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- formatting
    def format_prompt(self, prompt: str) -> str:
        """The text the model sees for one answer() prompt."""
        if not self.chat_prompts:
            return prompt
        messages: list[Message] = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": prompt})
        return format_chat(self.tokenizer, messages, add_generation_prompt=True)

    def _generation_config(self, config: GenerationConfig, n_prompt_tokens: int) -> tuple[Any, int]:
        import copy

        gc = copy.deepcopy(self.lm.model.generation_config)
        max_new = config.max_new_tokens
        if self.max_positions:
            max_new = max(1, min(max_new, self.max_positions - n_prompt_tokens))
        gc.max_new_tokens = max_new
        gc.pad_token_id = self.tokenizer.pad_token_id
        if config.greedy:
            gc.do_sample = False
            gc.temperature, gc.top_p, gc.top_k = 1.0, 1.0, None
        else:
            gc.do_sample = True
            gc.temperature, gc.top_p, gc.top_k = config.temperature, config.top_p, (config.top_k or None)
        gc.repetition_penalty = config.repetition_penalty
        gc.stop_strings = list(config.stop) or None
        gc.max_time = config.timeout_s
        return gc, max_new

    def _max_input(self, config: GenerationConfig) -> int | None:
        if not self.max_positions:
            return None
        return max(8, self.max_positions - min(config.max_new_tokens, self.max_positions // 2))

    def _encode(self, texts: list[str], config: GenerationConfig) -> Any:
        limit = self._max_input(config)
        add_special = not self.chat_prompts  # chat templates already contain their special tokens
        enc = self.tokenizer(
            texts, return_tensors="pt", padding=True, truncation=limit is not None, max_length=limit,
            add_special_tokens=add_special,
        )
        if limit is not None:
            full = self.tokenizer(texts, add_special_tokens=add_special)["input_ids"]
            self.truncated += sum(len(ids) > limit for ids in full)
        return enc.to(self.lm.device)

    def _seed(self, config: GenerationConfig) -> None:
        if config.seed is not None:
            import torch

            torch.manual_seed(config.seed)

    # -------------------------------------------------------------------------------- Backend API
    def answer(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        import torch

        config = config or GenerationConfig()
        texts = [self.format_prompt(str(p)) for p in prompts]
        if not texts:
            return []
        lengths = [len(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # similar lengths share a batch
        out: list[str] = [""] * len(texts)
        with self._lock, torch.inference_mode():
            self._seed(config)
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self._encode([texts[i] for i in idx], config)
                gc, _ = self._generation_config(config, enc["input_ids"].shape[1])
                try:
                    gen = self.lm.model.generate(**enc, generation_config=gc, tokenizer=self.tokenizer)
                except RuntimeError as exc:  # e.g. out of memory: say what to change
                    first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                    raise BackendError(f"generation failed ({first}): lower batch_size") from None
                new = gen[:, enc["input_ids"].shape[1] :]
                for j, i in enumerate(idx):
                    text = self.tokenizer.decode(new[j], skip_special_tokens=True)
                    out[i] = cut_at_stop(text, config.stop)[0].strip()
        return out

    def stream(self, messages: Sequence[Message], config: GenerationConfig | None = None) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        config = config or GenerationConfig()
        text = format_chat(self.tokenizer, messages, add_generation_prompt=True)
        add_special = not has_chat_template(self.tokenizer)
        if add_special and PLAIN_TURN_MARKER not in config.stop:
            # a base model on the plain template would go on to write the next "### User:" turn itself
            config = dataclasses.replace(config, stop=(*config.stop, PLAIN_TURN_MARKER))
        limit = self._max_input(config)
        enc = self.tokenizer(
            [text], return_tensors="pt", truncation=limit is not None, max_length=limit, add_special_tokens=add_special
        ).to(self.lm.device)
        gc, _ = self._generation_config(config, enc["input_ids"].shape[1])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        cancelled = threading.Event()
        failure: list[BaseException] = []

        class _Cancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return cancelled.is_set()

        def run() -> None:
            import torch

            try:
                with self._lock, torch.inference_mode():
                    self._seed(config)
                    self.lm.model.generate(
                        **enc, generation_config=gc, tokenizer=self.tokenizer, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([_Cancel()]),
                    )
            except BaseException as exc:  # surfaced to the consumer below
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="mentalens-hf-stream", daemon=True)
        thread.start()
        hold = max((len(s) for s in config.stop), default=1) - 1
        buffer, sent, finished = "", 0, False
        try:
            for delta in streamer:
                buffer += delta
                head, stopped = cut_at_stop(buffer, config.stop)
                if stopped:
                    if len(head) > sent:
                        yield head[sent:]
                    sent = len(head)
                    cancelled.set()
                    break
                safe = len(buffer) - hold
                if safe > sent:
                    yield buffer[sent:safe]
                    sent = safe
            else:
                finished = True
                head, _ = cut_at_stop(buffer, config.stop)
                if len(head) > sent:
                    yield head[sent:]
        finally:
            cancelled.set()
            if not finished:  # stopped early or abandoned: drain so the generating thread can finish
                for _ in streamer:
                    pass
            thread.join(timeout=60)
        if failure:
            exc = failure[0]
            raise BackendError(f"generation failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.lm.name,
            "adapter": str(self.lm.adapter) if self.lm.adapter else None,
            "device": str(self.lm.device),
            "dtype": str(next(self.lm.model.parameters()).dtype).replace("torch.", ""),
            "chat_prompts": self.chat_prompts,
            "truncated_prompts": self.truncated,
        }

    def close(self) -> None:
        import gc

        self.lm = None  # type: ignore[assignment]
        gc.collect()


__all__ = ["HFBackend", "cut_at_stop"]
