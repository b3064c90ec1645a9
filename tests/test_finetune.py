"""Fine-tuning: config validation, leakage-guarded data, answer-only labels, packing, training, resume, merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mentalens.errors import ConfigError, DataError, ModelError
from mentalens.finetune import load_finetune_config, run_finetune
from mentalens.finetune.collate import IGNORE, PackedCollator, PaddedCollator, encode_example
from mentalens.finetune.data import Example, apply_weight, build_examples, stratified_sample


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


def tiny_config(tiny, out: Path, *extra: str):
    """A fast config on the tiny Llama: two IMHI sets, a few steps."""
    return load_finetune_config(None, [
        f"model.name={tiny['small']}",
        "data.sources=[{kind: imhi, sets: [DR], limit: 40}, {kind: imhi, sets: [SAD], limit: 24}]",
        "data.max_length=512", "data.eval_max_examples=8", "data.eval_fraction=0.15",
        f"train.output_dir={out}", "train.max_steps=8", "train.batch_size=4", "train.grad_accum=1",
        "train.eval_steps=4", "train.save_steps=4", "train.logging_steps=1", "train.learning_rate=5e-3",
        "train.warmup_ratio=0", "lora.r=8", "lora.dropout=0",
        *extra,
    ])


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "run"
    cfg = tiny_config(tiny, out)
    return cfg, run_finetune(cfg)


# ------------------------------------------------------------------------------------------------ config


def test_config_typos_and_bad_values_fail_up_front_naming_the_fix():
    with pytest.raises(ConfigError, match=r"unknown config key 'lora.rr'; valid keys: .*alpha.*dropout.*\br\b"):
        load_finetune_config(None, ["lora.rr=8"])
    with pytest.raises(ConfigError, match="train.batching must be one of 'auto', 'packed', 'grouped', 'padded'"):
        load_finetune_config(None, ["train.batching=fast"])
    with pytest.raises(ConfigError, match="data.sources is empty"):
        load_finetune_config(None, ["data.sources=[]"])
    with pytest.raises(ConfigError, match=r"data.sources\[0\].path is required for a jsonl source"):
        load_finetune_config(None, ["data.sources=[{kind: jsonl}]"])
    with pytest.raises(ConfigError, match="save_steps .* must be a multiple of train.eval_steps"):
        load_finetune_config(None, ["train.early_stopping_patience=2", "train.eval_steps=10", "train.save_steps=15"])
    with pytest.raises(ConfigError, match="kind must be one of"):
        load_finetune_config(None, ["data.sources=[{kind: reddit}]"])


def test_example_configs_all_validate():
    root = Path(__file__).resolve().parents[1] / "configs" / "finetune"
    names = sorted(p.name for p in root.glob("*.yaml") if not p.name.startswith("accelerate"))
    seed_runs = {"gemma-2b-imhi.yaml", "yi-6b-counselling.yaml", "mentallama-7b-imhi.yaml"}
    assert {"smollm2-imhi.yaml", *seed_runs} <= set(names)
    for name in names:
        load_finetune_config(root / name)


# ------------------------------------------------------------------------------------------------ data


def test_leakage_guard_drops_imhi_test_posts_from_every_kind_of_source(tmp_path, imhi_dir):
    import csv

    with (imhi_dir / "test_data" / "test_instruction" / "DR.csv").open(encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f))
    from mentalens.data import split_query

    test_post = split_query(row["query"])[0]
    jsonl = tmp_path / "mine.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": row["query"]}, {"role": "assistant", "content": "Yes."}]},
        {"prompt": test_post.upper() + "  ", "completion": "no"},  # case and spacing do not hide it
        {"prompt": "A post nobody has seen before about exams.", "completion": "This post shows stress."},
    ]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    cfg = load_finetune_config(None, [f"data.sources=[{{kind: jsonl, path: {jsonl}}}]", "data.eval_fraction=0"])
    train, _, report = build_examples(cfg.data)
    assert len(train) == 1 and train[0].messages[0]["content"].startswith("A post nobody")
    assert report.leakage["dropped"] == 2 and report.leakage["by_source"] == {"jsonl:mine.jsonl": 2}


def test_imhi_irf_and_multiwd_val_posts_that_are_test_posts_never_reach_training():
    from mentalens.data import LeakageGuard

    cfg = load_finetune_config(None, ["data.sources=[{kind: imhi, sets: [Irf, MultiWD], split: val}]"])
    train, held, report = build_examples(cfg.data)
    assert report.leakage["by_source"]["imhi:Irf"] > 100 and report.leakage["by_source"]["imhi:MultiWD"] > 100
    guard = LeakageGuard.from_data_dir(None)
    assert not any(guard.contains(t) for ex in train + held for t in ex.texts)


def test_empty_data_after_filtering_is_one_clear_error():
    cfg = load_finetune_config(None, ["data.sources=[{kind: imhi, sets: [DR], max_chars: 5}]"])
    with pytest.raises(DataError, match="no training examples left after filtering"):
        build_examples(cfg.data)


def test_weights_repeat_or_subsample_and_balance_spreads_strata():
    import random

    items = [Example([{"role": "user", "content": str(i)}], "s", stratum="ab"[i % 2] if i < 90 else "c")
             for i in range(100)]
    rng = random.Random(0)
    assert len(apply_weight(items, 2.5, rng)) == 250 and len(apply_weight(items, 0.3, rng)) == 30
    picked = stratified_sample(items, 30, rng, balance=True)
    counts = {s: sum(1 for x in picked if x.stratum == s) for s in "abc"}
    assert counts == {"a": 10, "b": 10, "c": 10}
    share = stratified_sample(items, 20, rng)
    assert sum(1 for x in share if x.stratum == "c") == 2  # proportional by default


# ------------------------------------------------------------------------------------------------ labels


def _answer_text(tok, row) -> str:
    return tok.decode([i for i, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != IGNORE])


def test_only_assistant_tokens_carry_labels_with_a_real_chat_template():
    from mentalens.llm import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    msgs = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I feel low."},
            {"role": "assistant", "content": "That sounds hard."}, {"role": "user", "content": "Yes."},
            {"role": "assistant", "content": "Tell me more."}]
    row = encode_example(tok, msgs)
    assert _answer_text(tok, row) == "That sounds hard.<|im_end|>\nTell me more.<|im_end|>\n"
    assert tok.decode(row["input_ids"]) == tok.apply_chat_template(msgs, tokenize=False)
    assert row["n_answer"] == sum(1 for x in row["labels"] if x != IGNORE) and row["length"] == len(row["input_ids"])


def test_plain_template_and_raw_format_for_base_models(tiny):
    from mentalens.llm import load_tokenizer, plain_chat

    tok = load_tokenizer(str(tiny["small"]))
    tok.chat_template = None  # a base model without a chat template
    msgs = [{"role": "user", "content": "Post: I failed my exam  Question: stress? "},
            {"role": "assistant", "content": "yes. Reasoning: exams."}]
    row = encode_example(tok, msgs)
    assert _answer_text(tok, row) == "yes. Reasoning: exams." + tok.eos_token
    assert tok.decode(row["input_ids"]).endswith(plain_chat(msgs, add_generation_prompt=False, eos_token=tok.eos_token))
    raw = encode_example(tok, msgs, template="raw")
    expected = "Post: I failed my exam  Question: stress?  yes. Reasoning: exams." + tok.eos_token
    assert tok.decode(raw["input_ids"]).endswith(expected)
    assert _answer_text(tok, raw) == " yes. Reasoning: exams." + tok.eos_token


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batches_give_exactly_the_padded_loss(tiny, attn):
    import torch

    from mentalens.data import load_imhi
    from mentalens.finetune.trainer import answer_only_loss
    from mentalens.llm import load_model

    lm = load_model(str(tiny["small"]), attn_implementation=attn)
    model, tok = lm.model, lm.tokenizer
    model.config.use_cache = False
    recs = load_imhi(None, split="train", sets=["SAD"], fmt="instruction")[:6]
    rows = [encode_example(tok, [{"role": "user", "content": r.query}, {"role": "assistant", "content": r.answer}])
            for r in recs]
    assert len({r["length"] for r in rows}) > 1  # different lengths: padding and packing really differ
    padded, packed = PaddedCollator(tok.pad_token_id)(rows), PackedCollator()(rows)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    with torch.no_grad():
        ref = model(**padded).loss
        assert torch.allclose(model(**packed).loss, ref, atol=1e-5)
        assert torch.allclose(answer_only_loss(model, packed)[0], ref, atol=1e-5)
        assert torch.allclose(answer_only_loss(model, padded)[0], ref, atol=1e-5)
        separately = sum(model(**PaddedCollator(tok.pad_token_id)([r])).loss * r["n_answer"] for r in rows)
        assert torch.allclose(separately / sum(r["n_answer"] for r in rows), ref, atol=1e-5)


# ------------------------------------------------------------------------------------------------ training


def test_training_lowers_eval_loss_and_writes_every_output(trained, tiny):
    cfg, result = trained
    out, m = result.output_dir, result.metrics
    assert m["eval_loss_after"] < m["eval_loss_before"] - 0.05
    assert m["global_step"] == 8 and m["batching"] == "grouped" and m["leakage_guard"]["test_posts"] > 4000
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(Path(tiny["small"]).resolve()) and adapter["r"] == 8
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "adapter" / "tokenizer.json").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert not list(out.glob("checkpoint-*"))  # removed after a successful run (train.keep_checkpoints=false)
    assert load_finetune_config(out / "config.yaml") == cfg
    assert json.loads((out / "metrics.json").read_text())["eval_loss_after"] == m["eval_loss_after"]
    assert json.loads((out / "data_report.json").read_text())["train_examples"] == m["train_examples"]


def test_adapter_loads_back_for_generation_and_merges_exactly(trained, tiny, tmp_path):
    import torch

    from mentalens.backend import GenerationConfig
    from mentalens.finetune import merge_adapter
    from mentalens.llm import load_model
    from mentalens.llm.backend import HFBackend

    _, result = trained
    prompt = ['Consider this post: "I have exams and no sleep." Question: What is the stress cause of this post?']
    cfg = GenerationConfig(max_new_tokens=8)
    base_answer = HFBackend(str(tiny["small"])).answer(prompt, cfg)
    tuned = HFBackend(str(tiny["small"]), adapter=str(result.output_dir))  # a finetune folder works too
    assert tuned.answer(prompt, cfg) != base_answer
    assert HFBackend(str(result.adapter_dir)).answer(prompt, cfg) == tuned.answer(prompt, cfg)  # adapter alone

    merged_dir = merge_adapter(result.adapter_dir, tmp_path / "merged")
    merged, with_adapter = load_model(str(merged_dir)), load_model(str(tiny["small"]), adapter=str(result.adapter_dir))
    ids = merged.tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged.model(**ids).logits, with_adapter.model(**ids).logits, atol=1e-4)
    with pytest.raises(ConfigError, match="not empty"):
        merge_adapter(result.adapter_dir, tmp_path / "merged")


def test_an_interrupted_run_resumes_from_its_last_complete_checkpoint(tiny, tmp_path):
    from mentalens.finetune.trainer import TrainingInterrupted, checkpoint_is_complete

    out = tmp_path / "run"
    cfg = tiny_config(tiny, out, "train.max_steps=6", "train.save_steps=2", "train.eval_steps=2",
                      "train.tensorboard=false")
    with pytest.raises(TrainingInterrupted, match="checkpoint-2.*run the same command again") as info:
        run_finetune(cfg, interrupt_after_step=3)
    assert info.value.exit_code == 130 and checkpoint_is_complete(out / "checkpoint-2")
    assert not (out / "adapter").exists()  # nothing final was written
    partial = out / "checkpoint-4"  # as if the process died while writing the next checkpoint
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"\0" * 10)
    result = run_finetune(cfg)
    assert result.metrics["resumed_from"].endswith("checkpoint-2") and result.metrics["global_step"] == 6
    assert list(out.glob("incomplete-checkpoint-4-*")) and (out / "adapter" / "adapter_config.json").is_file()
    assert result.metrics["eval_loss_before"] is not None  # kept from the first attempt


def test_early_stopping_stops_when_eval_loss_stops_improving(tiny, tmp_path):
    cfg = tiny_config(tiny, tmp_path / "run", "train.learning_rate=1e-9", "train.max_steps=20",
                      "train.eval_steps=1", "train.save_steps=1", "train.early_stopping_patience=1",
                      "train.early_stopping_threshold=0.01", "train.tensorboard=false", "train.eval_before=false")
    result = run_finetune(cfg)
    assert result.metrics["stopped_early"] and result.metrics["global_step"] == 2


def test_bad_input_fails_before_any_training(tiny, tmp_path):
    import torch

    out = tmp_path / "run"
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        run_finetune(load_finetune_config(None, ["model.name=nope", f"train.output_dir={out}"]))
    with pytest.raises(ConfigError, match="data.max_length=4096 is longer than .* supports \\(1024 positions\\)"):
        run_finetune(tiny_config(tiny, out, "data.max_length=4096"))
    with pytest.raises(DataError, match="has .* tokens, more than data.max_length=40"):
        run_finetune(tiny_config(tiny, out, "data.max_length=40", "data.overlength=error"))
    with pytest.raises(DataError, match="no training examples fit data.max_length=40"):
        run_finetune(tiny_config(tiny, out, "data.max_length=40"))
    assert not torch.cuda.is_available()
    with pytest.raises(ModelError, match="needs a CUDA GPU"):
        run_finetune(tiny_config(tiny, out, "method=qlora"))
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        run_finetune(tiny_config(tiny, out, f"data.sources=[{{kind: jsonl, path: {tmp_path / 'missing.jsonl'}}}]"))
    assert not out.exists()  # nothing was written by any of them


def test_a_base_model_is_trained_on_the_plain_template_and_its_adapter_carries_it(tiny, tmp_path):
    import shutil

    from mentalens.llm.backend import HFBackend

    base = tmp_path / "base"
    shutil.copytree(tiny["small"], base)
    (base / "chat_template.jinja").unlink()  # now a base model: no chat template
    result = run_finetune(tiny_config(tiny, tmp_path / "run", f"model.name={base}", "train.max_steps=2",
                                      "train.eval_before=false", "data.eval_fraction=0", "train.tensorboard=false"))
    backend = HFBackend(str(base), adapter=str(result.adapter_dir))
    assert backend.chat_prompts  # the adapter's tokenizer now has the (plain) template it was trained with
    assert backend.format_prompt("I feel tense.") == "### User:\nI feel tense.\n\n### Assistant:\n"
    assert not HFBackend(str(base)).chat_prompts  # the untouched base still gets raw prompts


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_dry_run_typos_and_merge_errors(cli, tiny, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  name: {tiny['small']}\ndata:\n  sources:\n    - {{kind: imhi, sets: [DR], limit: 20}}\n")
    code, out, err = cli("finetune", str(cfg), "data.max_length=512", "--dry-run")
    import re

    assert code == 0 and "leakage guard: dropped 0" in out
    kept = int(re.search(r"train examples: (\d+), eval examples: 1,", out).group(1))
    dropped = int(re.search(r"'train': (\d+)", out).group(1))
    assert kept + dropped == 19  # 20 sampled, 1 held out for eval, the rest kept or dropped as too long
    code, out, err = cli("finetune", str(cfg), "train.lr=0.1")
    assert code == 2 and err.strip().count("\n") == 0 and "unknown config key 'train.lr'" in err
    code, _, err = cli("finetune", "merge", str(tmp_path / "nothing"), "--out", str(tmp_path / "m"))
    assert code == 2 and "adapter" in err and "not found" in err
    code, out, _ = cli("models", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and {"smollm2-135m-instruct", "gemma3-270m", "tiny-llama-small"} <= {r["name"] for r in rows}
