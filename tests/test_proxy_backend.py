"""ProxyBackend (the registered "proxy" backend) and `mentalens generate`, on tiny Llamas and a LoRA folder."""

from __future__ import annotations

import json

import pytest
import torch

from mentalens.backend import GenerationConfig, get_backend
from mentalens.errors import ConfigError
from mentalens.proxy import LogitEnsemble

PROMPTS = ["Consider this post: I can't focus at work anymore. Question: Does the poster suffer from stress?",
           "hello"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fam():
    from mentalens.llm.tiny import tiny_family

    return tiny_family()


@pytest.fixture(scope="module")
def lora_dir(fam, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(11)
    pm = get_peft_model(AutoModelForCausalLM.from_pretrained(fam["small"]),
                        LoraConfig(r=4, init_lora_weights=False, target_modules=["q_proj", "v_proj", "down_proj"]))
    out = tmp_path_factory.mktemp("proxycli") / "adapter"
    pm.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def reference(fam, lora_dir):
    ens = LogitEnsemble.from_proxy(str(fam["large"]), str(lora_dir), alpha=1.0, device="cpu")
    yield ens
    ens.close()


def test_proxy_backend_answers_and_streams(fam, lora_dir, reference):
    cfg = GenerationConfig(max_new_tokens=10)
    with get_backend("proxy", base=str(fam["large"]), expert=str(lora_dir), device="cpu") as backend:
        info = backend.describe()
        assert info["backend"] == "proxy" and info["fused"] and info["forwards_per_step"] == 2
        assert [m["weight"] for m in info["members"]] == [1.0, 1.0, -1.0]
        assert backend.answer(PROMPTS, cfg) == [t.strip() for t in reference.generate(PROMPTS, cfg)]
        msgs = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I feel low."}]
        assert backend.chat(msgs, cfg) == reference.generate([msgs], cfg)[0]
        assert backend.answer([], cfg) == []


def test_models_on_different_devices_load_separately_and_agree(fam, lora_dir, reference):
    """Experts on another device than the base ("cpu:0" vs "cpu" here; cuda:1 vs cuda:0 on a GPU box):
    the expert and anti-expert are loaded where asked, logits meet on the base's device, tokens agree."""
    ens = LogitEnsemble.from_proxy(str(fam["large"]), str(lora_dir), device="cpu",
                                   devices={"expert": "cpu:0", "anti_expert": "cpu"})
    assert not ens.is_fused and ens.members[1].model is not ens.members[2].model
    cfg = GenerationConfig(max_new_tokens=10)
    assert ens.generate(PROMPTS, cfg) == reference.generate(PROMPTS, cfg)
    ens.close()


def test_proxy_backend_weighted_ensemble(fam):
    with get_backend("proxy", models=[str(fam["large"]), str(fam["small"])], weights=[1.0, 0.5],
                     device="cpu") as backend:
        assert [m["weight"] for m in backend.describe()["members"]] == [1.0, 0.5]
        assert len(backend.answer(["hello"], GenerationConfig(max_new_tokens=4))) == 1
    with pytest.raises(ConfigError, match="2 models but 1 weights"):
        get_backend("proxy", models=[str(fam["large"]), str(fam["small"])], weights=[1.0])


def test_cli_generate_streams_the_proxy_tuned_text(cli, fam, lora_dir, reference):
    code, out, err = cli("generate", "--model", str(fam["large"]), "--expert", str(lora_dir), "-n", "10",
                         "--device", "cpu", PROMPTS[0])
    assert code == 0, err
    assert out == reference.generate([PROMPTS[0]], GenerationConfig(max_new_tokens=10))[0] + "\n"
    code, out, err = cli("generate", "--model", str(fam["large"]), "--expert", str(lora_dir), "-n", "6",
                         "--device", "cpu", "--json", *PROMPTS)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ensemble"]["fused"] and len(doc["results"]) == 2
    assert [r["text"] for r in doc["results"]] == reference.generate(PROMPTS, GenerationConfig(max_new_tokens=6))


def test_cli_generate_from_a_proxy_config_file(cli, fam, lora_dir, tmp_path):
    cfg = tmp_path / "proxy.yaml"
    cfg.write_text(f"base: {fam['large']}\nexpert: {lora_dir}\nalpha: 0.5\ndevice: cpu\nformats:\n  expert: chat\n")
    code, out, err = cli("generate", "--config", str(cfg), "-n", "4", "--json", "hello")
    assert code == 0, err
    members = json.loads(out)["ensemble"]["members"]
    assert [m["weight"] for m in members] == [1.0, 0.5, -0.5] and members[1]["prompt_format"] == "chat"
    cfg.write_text("base: m\nalpha: lots\n")
    code, out, err = cli("generate", "--config", str(cfg), "hello")
    assert code == 2 and "alpha" in err


def test_cli_shows_crisis_resources_whatever_the_model_says(cli, fam):
    code, out, err = cli("generate", "--model", str(fam["small"]), "-n", "3", "--device", "cpu",
                         "I want to kill myself tonight, I have the pills here")
    assert code == 0
    # imminent: the emergency number first, then where to find a crisis line, whatever the model printed
    assert "emergency number" in err and "findahelpline.com" in err and out.strip()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "abc", "x"], "--alpha"),
        (["--fused", "maybe", "x"], "--fused must be auto, on or off"),
        (["   "], "empty prompt"),
        ([], "no prompt given"),
        (["--expert", "smollm2-135m-instruct", "--anti-expert", "smollm2-135m-instruct", "x"], "different tokenizers"),
        (["-n", "0", "x"], "max_new_tokens must be at least 1"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, fam, args, message):
    code, out, err = cli("generate", "--model", str(fam["large"]), "--device", "cpu", *args)
    assert code == 2 and message in err and out == ""
