"""LogitEnsemble on real tiny Llamas (two sizes, one trained BPE tokenizer): exactness of every shortcut.

Each shortcut the decoder takes (KV caches, left-padded batches, fused LoRA forward, dropping finished
rows, incremental detokenisation) is compared with the slow, obvious computation it replaces.
"""

from __future__ import annotations

import math

import pytest
import torch

from mentalens.backend import GenerationConfig
from mentalens.errors import ConfigError, DataError, ModelError
from mentalens.proxy import BASE_ADAPTER, EnsembleMember, LogitEnsemble, ProxyConfig
from mentalens.proxy.reference import dexperts_loop, seed_loop

PROMPTS = [
    "I have been feeling really down lately and I cannot sleep",
    "Work is stressful",
    "My friends stopped talking to me after I moved to a new city and I feel alone every evening",
]
RAW = {"base": "raw", "expert": "raw", "anti_expert": "raw"}
MIXED = {"base": "raw", "expert": "chat", "anti_expert": "raw"}  # proxy-tuning's reference setup
ATOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models are latency-bound: one thread is faster, and robust on a shared, busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fam():
    from mentalens.llm.tiny import tiny_family

    return tiny_family()


@pytest.fixture(scope="module")
def tok(fam):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(fam["tokenizer"])
    t.padding_side = "left"
    return t


def _load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def large(fam):
    return _load(fam["large"])


@pytest.fixture(scope="module")
def small(fam):
    return _load(fam["small"])


@pytest.fixture(scope="module")
def lora_dir(fam, tmp_path_factory):
    """A random, non-zero LoRA adapter on the small model, saved like any fine-tuned expert."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(7)
    cfg = LoraConfig(r=8, lora_alpha=16, init_lora_weights=False,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    pm = get_peft_model(_load(fam["small"]), cfg)
    out = tmp_path_factory.mktemp("proxy") / "lora"
    pm.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def expert(fam, lora_dir):
    """The small model with the adapter on (expert) - and off (anti-expert)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(_load(fam["small"]), lora_dir).eval()


def _ens(large, tok, expert, alpha=1.0, formats=RAW, **kw):
    return LogitEnsemble.from_proxy((large, tok), (expert, tok), None, alpha=alpha, formats=formats, **kw)


def _last_logits(model, tok, text, chat=False):
    """Next-token logits of one model, computed the plain way (no cache, no padding)."""
    if chat:
        text = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    ids = torch.tensor([tok(text, add_special_tokens=not chat)["input_ids"]])
    with torch.inference_mode():
        return model(input_ids=ids).logits[0, -1].float()


# ------------------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("combine", ["logits", "logprobs"])
def test_one_step_equals_hand_computed_arithmetic(large, small, tok, expert, combine):
    """Combined scores = base + alpha * (expert - anti_expert), each from its own plain forward."""
    alpha = 0.7
    ens = _ens(large, tok, expert, alpha=alpha, formats=MIXED, combine=combine)
    assert ens.is_fused
    combined, per_member = ens.next_token_logits(PROMPTS)  # a padded batch of 3
    norm = (lambda x: torch.log_softmax(x, -1)) if combine == "logprobs" else (lambda x: x)
    for b, prompt in enumerate(PROMPTS):
        base = _last_logits(large, tok, prompt)
        exp = _last_logits(expert, tok, prompt, chat=True)
        with expert.disable_adapter():
            anti = _last_logits(expert, tok, prompt)
        anti_plain = _last_logits(small, tok, prompt)  # the untouched small model: same thing
        torch.testing.assert_close(anti, anti_plain, atol=ATOL, rtol=0)
        assert (exp - anti).abs().max() > 0.1, "the adapter must change the logits, or the test proves nothing"
        torch.testing.assert_close(per_member[0][b], base, atol=ATOL, rtol=0)
        torch.testing.assert_close(per_member[1][b], exp, atol=ATOL, rtol=0)
        torch.testing.assert_close(per_member[2][b], anti, atol=ATOL, rtol=0)
        want = norm(base) + alpha * (norm(exp) - norm(anti))
        torch.testing.assert_close(combined[b], want, atol=ATOL, rtol=0)


def test_alpha_zero_equals_base_models_own_generate(large, tok, expert):
    """With alpha = 0 the experts contribute exactly nothing: token for token the base's generate."""
    ens = _ens(large, tok, expert, alpha=0.0)
    got = ens.generate_details(PROMPTS, GenerationConfig(max_new_tokens=24))
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    with torch.inference_mode():
        ref = large.generate(**enc, max_new_tokens=24, do_sample=False, pad_token_id=tok.pad_token_id)
    for b, r in enumerate(got):
        want = ref[b, enc["input_ids"].shape[1]:].tolist()
        assert r.token_ids == want[: len(r.token_ids)]
        assert len(r.token_ids) == 24 or want[len(r.token_ids)] == tok.eos_token_id


@pytest.mark.parametrize(("prompt", "penalty"), [(PROMPTS[2], 1.5), (PROMPTS[0], 0.5)])
def test_alpha_zero_with_repetition_penalty_equals_generate(large, tok, expert, prompt, penalty):
    ens = _ens(large, tok, expert, alpha=0.0)
    got = ens.generate_details([prompt], GenerationConfig(max_new_tokens=20, repetition_penalty=penalty))[0]
    enc = tok([prompt], return_tensors="pt")
    with torch.inference_mode():
        ref = large.generate(**enc, max_new_tokens=20, do_sample=False, repetition_penalty=penalty)
    assert got.token_ids == ref[0, enc["input_ids"].shape[1]:].tolist()[: len(got.token_ids)]
    plain = ens.generate_details([prompt], GenerationConfig(max_new_tokens=20))[0]
    assert plain.token_ids != got.token_ids  # the penalty really acted


def test_cached_equals_uncached_seed_loop(large, tok, expert):
    """KV-cached, batched, fused decoding gives the seed's full re-forward loop's tokens."""
    ens = _ens(large, tok, expert, alpha=1.0, formats=MIXED)
    got = ens.generate_details(PROMPTS, GenerationConfig(max_new_tokens=16))
    ids = ens.encode(PROMPTS)
    for b, r in enumerate(got):
        assert r.token_ids == seed_loop(ens, [ids[j][b] for j in range(3)], 16)


def test_batched_equals_one_by_one_and_dexperts_loop(large, tok, expert):
    ens = _ens(large, tok, expert, alpha=1.5, formats=MIXED)
    cfg = GenerationConfig(max_new_tokens=16)
    batched = ens.generate_details(PROMPTS, cfg)
    for prompt, r in zip(PROMPTS, batched, strict=True):
        assert ens.generate_details([prompt], cfg)[0].token_ids == r.token_ids
    assert dexperts_loop(ens, ens.encode(PROMPTS), 16) == [r.token_ids for r in batched]


def test_rows_that_stop_early_leave_the_others_exact(large, tok, expert):
    """A stop string ends one row mid-batch (it is dropped from every cache); the others are unchanged."""
    ens = _ens(large, tok, expert, alpha=1.0)
    free = ens.generate_details(PROMPTS, GenerationConfig(max_new_tokens=20))
    stop = free[0].text[6:9]
    assert stop.strip() and stop not in free[0].text[:6]
    cfg = GenerationConfig(max_new_tokens=20, stop=(stop,))
    cut = ens.generate_details(PROMPTS, cfg)
    assert cut[0].finish_reason == "stop" and cut[0].text == free[0].text[:6]
    for b, r in enumerate(cut):
        single = ens.generate_details([PROMPTS[b]], cfg)[0]
        assert (r.text, r.token_ids, r.finish_reason) == (single.text, single.token_ids, single.finish_reason)
        if stop not in free[b].text:
            assert r.token_ids == free[b].token_ids and r.finish_reason == "length"


@pytest.mark.parametrize("impl", ["lean", "peft"])
def test_fused_path_equals_three_separate_forwards(large, small, tok, expert, lora_dir, impl):
    """One batched forward over shared weights == expert and anti-expert run as separate models."""
    fused = _ens(large, tok, expert, formats=MIXED, fused_impl=impl)
    separate = _ens(large, tok, expert, formats=MIXED, fused=False)
    plain_anti = LogitEnsemble.from_proxy((large, tok), (expert, tok), (small, tok), formats=MIXED)
    assert fused.describe()["forwards_per_step"] == 2 and fused.describe()["fused_impl"] == impl
    assert separate.describe()["forwards_per_step"] == 3 and plain_anti.describe()["forwards_per_step"] == 3
    c1, m1 = fused.next_token_logits(PROMPTS)
    for other in (separate, plain_anti):
        c2, m2 = other.next_token_logits(PROMPTS)
        torch.testing.assert_close(c1, c2, atol=ATOL, rtol=0)
        for a, b in zip(m1, m2, strict=True):
            torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
    cfg = GenerationConfig(max_new_tokens=16)
    want = [r.token_ids for r in plain_anti.generate_details(PROMPTS, cfg)]
    assert [r.token_ids for r in fused.generate_details(PROMPTS, cfg)] == want
    assert [r.token_ids for r in separate.generate_details(PROMPTS, cfg)] == want
    ids = fused.encode(PROMPTS)
    assert seed_loop(fused, [ids[j][1] for j in range(3)], 16) == want[1]  # disable_adapter() reference
    for ens in (fused, separate, plain_anti):
        ens.close()


def test_fused_ensemble_from_an_adapter_folder(large, tok, lora_dir, expert):
    """The CLI / backend path: the expert given as a LoRA folder is loaded once, on and off."""
    cfg = GenerationConfig(max_new_tokens=16)
    ref = _ens(large, tok, expert, formats=MIXED, fused=False)
    from_disk = LogitEnsemble.from_proxy(str(large.config.name_or_path), str(lora_dir), formats=MIXED, device="cpu")
    assert from_disk.is_fused and from_disk.members[2].adapter == BASE_ADAPTER
    assert from_disk.members[1].model is from_disk.members[2].model
    got = [r.token_ids for r in from_disk.generate_details(PROMPTS, cfg)]
    assert got == [r.token_ids for r in ref.generate_details(PROMPTS, cfg)]
    from_disk.close()


def test_ensembles_sharing_one_peft_model_stay_exact_and_clean_up(fam, large, tok, lora_dir):
    """Several ensembles over one PeftModel (a server's chat + eval backends): each stays exact, and
    closing them leaves the model exactly as it was (no patched forward, no hook)."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    pm = PeftModel.from_pretrained(_load(fam["small"]), lora_dir).eval()
    layers = [m for m in pm.modules() if isinstance(m, LoraLayer)]
    cfg = GenerationConfig(max_new_tokens=12)
    lean_a, lean_b = _ens(large, tok, pm), _ens(large, tok, pm, alpha=0.5)
    peft_c = _ens(large, tok, pm, fused_impl="peft")
    assert all("forward" in m.__dict__ for m in layers) and all(m._forward_pre_hooks for m in layers)
    separate = _ens(large, tok, pm, fused=False)  # its anti-expert runs through the lean path too
    want = [r.token_ids for r in separate.generate_details(PROMPTS, cfg)]
    separate.close()
    lean_b.close()
    assert [r.token_ids for r in lean_a.generate_details(PROMPTS, cfg)] == want
    assert [r.token_ids for r in peft_c.generate_details(PROMPTS, cfg)] == want
    lean_a.close()
    peft_c.close()
    assert not any("forward" in m.__dict__ or m._forward_pre_hooks for m in layers)
    with torch.inference_mode():  # the adapter is still on for ordinary use
        ids = torch.tensor([tok(PROMPTS[0])["input_ids"]])
        on = pm(input_ids=ids).logits
        with pm.disable_adapter():
            off = pm(input_ids=ids).logits
    assert (on - off).abs().max() > 0.1


def test_streamed_text_equals_returned_text(large, tok, expert):
    ens = _ens(large, tok, expert, formats=MIXED)
    for cfg in (GenerationConfig(max_new_tokens=30),
                GenerationConfig(max_new_tokens=30, temperature=0.9, top_p=0.95, top_k=40, seed=11)):
        for prompt in PROMPTS:
            want = ens.generate([prompt], cfg)[0]
            deltas = list(ens.stream(prompt, cfg))
            assert "".join(deltas) == want and len(deltas) > 3
    free = ens.generate([PROMPTS[1]], GenerationConfig(max_new_tokens=30))[0]
    stop = free[10:13]
    cfg = GenerationConfig(max_new_tokens=30, stop=(stop,))
    streamed = "".join(ens.stream(PROMPTS[1], cfg))
    assert streamed == ens.generate([PROMPTS[1]], cfg)[0] == free[: free.index(stop)]


def test_concurrent_streams_on_one_ensemble_match_sequential(large, tok, expert):
    """A server streams several chats from one ensemble at once: steps interleave, results do not mix."""
    import threading

    ens = _ens(large, tok, expert, formats=MIXED)
    cfg = GenerationConfig(max_new_tokens=20)
    want = [ens.generate([p], cfg)[0] for p in PROMPTS]
    got: dict[int, str] = {}

    def run(i: int) -> None:
        got[i] = "".join(ens.stream(PROMPTS[i], cfg))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(PROMPTS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(PROMPTS))] == want


def test_chat_messages_use_each_members_format(large, tok, expert):
    ens = _ens(large, tok, expert, formats=MIXED)
    msgs = [{"role": "user", "content": PROMPTS[0]}]
    ids = ens.encode([msgs])
    start = tok.convert_tokens_to_ids("<|im_start|>")
    assert start in ids[1][0]  # the chat expert sees its chat template
    assert start not in ids[0][0] and ids[2][0] == ids[0][0]  # base and anti-expert: the plain template
    assert tok.decode(ids[0][0]).startswith("### User:\n" + PROMPTS[0])
    assert ens.encode([PROMPTS[0]])[1][0] == ids[1][0]  # a text prompt is one user turn for a chat model
    assert len(ens.generate([msgs], GenerationConfig(max_new_tokens=8))[0]) > 0


# ------------------------------------------------------------------------------------------ sampling


def test_sampling_is_seeded_per_row(large, tok, expert):
    ens = _ens(large, tok, expert)
    cfg = GenerationConfig(max_new_tokens=20, temperature=1.0, top_k=50, top_p=0.9, seed=5)
    a = ens.generate(PROMPTS, cfg)
    assert a == ens.generate(PROMPTS, cfg)
    assert a != ens.generate(PROMPTS, GenerationConfig(max_new_tokens=20, temperature=1.0, top_k=50, seed=6))
    for b, prompt in enumerate(PROMPTS):  # row b uses seed + b, whatever else is in the batch
        solo = GenerationConfig(max_new_tokens=20, temperature=1.0, top_k=50, top_p=0.9, seed=5 + b)
        assert ens.generate([prompt], solo)[0] == a[b]
    greedy = ens.generate(PROMPTS, GenerationConfig(max_new_tokens=20))
    assert ens.generate(PROMPTS, GenerationConfig(max_new_tokens=20, temperature=0.7, top_k=1, seed=1)) == greedy


# ------------------------------------------------------------------------------------------ vocabularies, ensembles


def test_expert_with_extra_trailing_tokens_is_cut_to_base_vocabulary(fam, large, tok, tmp_path_factory):
    from mentalens.llm.tiny import build_tiny_llama

    d = build_tiny_llama(tmp_path_factory.mktemp("extra") / "m", fam["tokenizer"], hidden_size=32, num_layers=1,
                         extra_vocab=64, seed=3)
    padded = _load(d)
    assert padded.get_output_embeddings().weight.shape[0] == len(tok) + 64
    ens = LogitEnsemble([EnsembleMember(large, tok, 1.0, "raw"), EnsembleMember(padded, tok, 0.5, "raw")])
    assert ens.vocab == len(tok)
    combined, _ = ens.next_token_logits(PROMPTS[:1])
    want = _last_logits(large, tok, PROMPTS[0]) + 0.5 * _last_logits(padded, tok, PROMPTS[0])[: len(tok)]
    torch.testing.assert_close(combined[0], want, atol=ATOL, rtol=0)


def test_naive_two_model_sum(large, small, tok):
    """The seed's "naive architecture": model1 + model2, weight 1 each."""
    ens = LogitEnsemble([EnsembleMember(large, tok, 1.0, "raw"), EnsembleMember(small, tok, 1.0, "raw")])
    combined, _ = ens.next_token_logits(PROMPTS[1:2])
    want = _last_logits(large, tok, PROMPTS[1]) + _last_logits(small, tok, PROMPTS[1])
    torch.testing.assert_close(combined[0], want, atol=ATOL, rtol=0)
    got = ens.generate_details(PROMPTS, GenerationConfig(max_new_tokens=12))
    ids = ens.encode(PROMPTS)
    assert [r.token_ids for r in got] == [seed_loop(ens, [ids[0][b], ids[1][b]], 12) for b in range(3)]


def test_same_model_twice_runs_as_one_batched_forward(small, tok):
    ens = LogitEnsemble([EnsembleMember(small, tok, 1.0, "raw"), EnsembleMember(small, tok, 0.5, "chat")])
    assert ens.describe()["forwards_per_step"] == 1
    combined, _ = ens.next_token_logits(PROMPTS[:1])
    want = _last_logits(small, tok, PROMPTS[0]) + 0.5 * _last_logits(small, tok, PROMPTS[0], chat=True)
    torch.testing.assert_close(combined[0], want, atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------------ bad input


def test_bad_input_fails_before_generation(large, tok, expert):
    ens = _ens(large, tok, expert)
    with pytest.raises(DataError, match="no prompts"):
        ens.generate([])
    with pytest.raises(DataError, match="context of 1024 tokens"):
        ens.generate(["word " * 3000])
    with pytest.raises(DataError, match="empty"):
        ens.generate([""])
    with pytest.raises(DataError, match="message"):
        ens.generate([[{"role": "user"}]])
    for bad in ("1", None, True, math.nan, math.inf):
        with pytest.raises(ConfigError, match="alpha"):
            _ens(large, tok, expert, alpha=bad)
        with pytest.raises(ConfigError, match="alpha"):
            ProxyConfig(base="m", expert="e", alpha=bad)
    with pytest.raises(ConfigError, match="combine"):
        _ens(large, tok, expert, combine="average")
    with pytest.raises(ConfigError, match="anti-expert"):
        LogitEnsemble.from_proxy((large, tok), (large, tok), None)  # a plain expert needs its anti-expert
    with pytest.raises(ConfigError, match="fused=True"):
        LogitEnsemble([EnsembleMember(large, tok), EnsembleMember(expert, tok, 0.5)], fused=True)
    with pytest.raises(ConfigError, match="unknown role"):
        ProxyConfig(base="m", devices={"basee": "cuda:0"})


def test_different_tokenizers_are_refused(large, tok, tmp_path_factory):
    """Same ids for different strings (a tokenizer trained on other text) cannot share logits."""
    from transformers import AutoTokenizer

    from mentalens.llm.tiny import build_tokenizer, default_corpus

    other_dir = tmp_path_factory.mktemp("othertok")
    build_tokenizer([t.upper() for t in default_corpus(1500)], other_dir, vocab_size=len(tok))
    other = AutoTokenizer.from_pretrained(other_dir)
    assert other.vocab_size == tok.vocab_size  # same size, different tokens: only the id check can tell
    with pytest.raises(ModelError, match=r"different tokenizers \(\d+ of \d+ token ids differ"):
        LogitEnsemble([EnsembleMember(large, tok), EnsembleMember(large, other)])
