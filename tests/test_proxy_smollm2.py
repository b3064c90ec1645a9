"""Proxy-tuning a real pretrained model: SmolLM2-135M-Instruct (offline GGUF package) as the base.

The experts are a small random Llama built on SmolLM2's own tokenizer (so they share its vocabulary, as
Mental-Gemma-2b shares Gemma-7b's) with a random LoRA adapter: expert = adapter on, anti-expert = off.
"""

from __future__ import annotations

import pytest
import torch

from mentalens.backend import GenerationConfig
from mentalens.errors import ModelError
from mentalens.proxy import EnsembleMember, LogitEnsemble
from mentalens.proxy.reference import seed_loop

PROMPT = "I have not slept properly for weeks and I feel on edge all the time. What can I do?"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def smol():
    from mentalens.llm import load_model

    return load_model("smollm2-135m-instruct", device="cpu")


@pytest.fixture(scope="module")
def smol_expert(smol):
    """A tiny Llama sharing SmolLM2's tokenizer, with a random non-zero LoRA adapter (in memory)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from mentalens.llm.tiny import build_tiny_llama
    from mentalens.paths import cache_dir

    d = cache_dir("tests", "proxy-smollm2-tiny")
    if not (d / "config.json").exists():
        build_tiny_llama(d, smol.path, hidden_size=64, num_layers=2, num_heads=4, seed=5,
                         max_position_embeddings=2048)
    torch.manual_seed(3)
    cfg = LoraConfig(r=8, init_lora_weights=False, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"])
    return get_peft_model(AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32), cfg).eval()


def test_alpha_zero_equals_smollm2_generate(smol, smol_expert):
    ens = LogitEnsemble.from_proxy(smol, (smol_expert, smol.tokenizer), None, alpha=0.0)
    got = ens.generate_details([PROMPT], GenerationConfig(max_new_tokens=12))[0]
    text = smol.tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                              add_generation_prompt=True)
    enc = smol.tokenizer([text], return_tensors="pt", add_special_tokens=False)
    assert got.prompt_tokens[0] == enc["input_ids"].shape[1]  # "auto" used the chat template
    with torch.inference_mode():
        ref = smol.model.generate(**enc, max_new_tokens=12, do_sample=False)
    assert got.token_ids == ref[0, enc["input_ids"].shape[1]:].tolist()[: len(got.token_ids)]
    assert len(got.text) > 10  # a real model writes real words


def test_proxy_tuned_smollm2_cached_fused_equals_uncached(smol, smol_expert):
    fused = LogitEnsemble.from_proxy(smol, (smol_expert, smol.tokenizer), None, alpha=1.0)
    separate = LogitEnsemble.from_proxy(smol, (smol_expert, smol.tokenizer), None, alpha=1.0, fused=False)
    assert fused.is_fused and not separate.is_fused
    c1, _ = fused.next_token_logits([PROMPT])
    c2, _ = separate.next_token_logits([PROMPT])
    torch.testing.assert_close(c1, c2, atol=1e-4, rtol=0)
    got = fused.generate_details([PROMPT], GenerationConfig(max_new_tokens=8))[0]
    ids = fused.encode([PROMPT])
    assert got.token_ids == seed_loop(fused, [ids[j][0] for j in range(3)], 8)
    base_only = LogitEnsemble([EnsembleMember(smol.model, smol.tokenizer)])
    assert got.token_ids != base_only.generate_details([PROMPT], GenerationConfig(max_new_tokens=8))[0].token_ids
    fused.close()


def test_smollm2_and_tiny_family_tokenizers_are_refused(smol):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mentalens.llm.tiny import tiny_family

    fam = tiny_family()
    tiny = AutoModelForCausalLM.from_pretrained(fam["small"])
    with pytest.raises(ModelError, match="different tokenizers"):
        LogitEnsemble([EnsembleMember(smol.model, smol.tokenizer),
                       EnsembleMember(tiny, AutoTokenizer.from_pretrained(fam["tokenizer"]))])
