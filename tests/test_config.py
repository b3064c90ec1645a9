"""Dataclass configs, registries and the CLI's error contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mentalens.config import load_config, parse_overrides, save_config
from mentalens.errors import ConfigError, UnknownNameError
from mentalens.registry import Registry


@dataclasses.dataclass
class Lora:
    r: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("q_proj", "v_proj")


@dataclasses.dataclass
class Train:
    model: str = "tiny"
    lr: float = 2e-4
    epochs: int = 1
    packing: bool = True
    out: Path = Path("runs/x")
    schedule: str = "cosine"
    lora: Lora = dataclasses.field(default_factory=Lora)
    seed: int | None = None

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, not {self.lr}")


def test_yaml_plus_overrides_with_type_conversion(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model: smollm2\nlora:\n  r: 16\n  targets: [q_proj, k_proj]\n")
    cfg = load_config(Train, f, ["lr=1e-3", "lora.alpha=32", "packing=false", "epochs=3", "seed=7", "out=/tmp/o"])
    assert cfg.model == "smollm2" and cfg.lr == 1e-3 and cfg.epochs == 3 and cfg.packing is False
    assert cfg.lora == Lora(r=16, alpha=32.0, targets=("q_proj", "k_proj")) and cfg.seed == 7
    assert cfg.out == Path("/tmp/o")
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Train, tmp_path / "resolved.yaml") == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["lerning_rate=1"], "unknown config key 'lerning_rate'; valid keys: epochs, lora, lr"),
        (["lora.rank=4"], "unknown config key 'lora.rank'"),
        (["epochs=two"], "epochs must be a whole number"),
        (["epochs=1.5"], "epochs must be a whole number"),
        (["packing=maybe"], "packing must be true or false"),
        (["lr=-1"], "lr must be positive"),
        (["justakey"], "is not key=value"),
    ],
)
def test_bad_configs_name_the_problem(overrides, message):
    with pytest.raises(ConfigError) as exc:
        load_config(Train, None, overrides)
    assert message in str(exc.value)


def test_broken_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(Train, bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(Train, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Train, tmp_path / "list.yaml")


def test_parse_overrides_nests_keys():
    assert parse_overrides(["a.b.c=1", "a.d=x", "e=[1, 2]"]) == {"a": {"b": {"c": 1}, "d": "x"}, "e": [1, 2]}


def test_registry_lazy_entries_aliases_and_errors():
    reg: Registry[object] = Registry("metric")
    reg.register("rouge", "mentalens.tasks:get_task", aliases=("ROUGE-L",))
    assert reg.canonical("rouge-l") == "rouge" and "ROUGE" in reg
    from mentalens.tasks import get_task

    assert reg.get("rouge") is get_task
    with pytest.raises(UnknownNameError, match="did you mean 'rouge'"):
        reg.get("rouje")
    with pytest.raises(ValueError):
        reg.register("rouge", object())


def test_cli_help_and_errors(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "data" in out and "not a diagnosis" in out
    code, _, err = cli("no-such-command")
    assert code == 2 and "No such command" in err
    code, out, _ = cli("version")
    assert code == 0 and "mentalens" in out


def test_importing_the_package_and_cli_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, mentalens.cli, mentalens.tasks, mentalens.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
