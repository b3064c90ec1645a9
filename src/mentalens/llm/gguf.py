"""GGUF -> Hugging Face folder, once, cached.

transformers can read a GGUF file (`from_pretrained(dir, gguf_file=...)`) but dequantises every tensor on
each load (15-70 s on a laptop CPU) and refuses to `save_pretrained` the result. We load it once, copy the
weights into a fresh model of the same config (so it is an ordinary, serialisable fp32 model), and save
model + tokenizer (+ its chat template) into the user cache. Later loads take a fraction of a second and
LoRA can train on it like on any hub checkpoint.

The folder is written under a temporary name and renamed into place, under a file lock, so concurrent
processes (DDP ranks, parallel tests) never see or produce a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from mentalens.errors import ModelError
from mentalens.paths import cache_dir

MARKER = "mentalens_source.json"


def _models_root() -> Path:
    return cache_dir("models")


def conversion_dir(gguf: Path | None = None, name: str | None = None) -> Path:
    """Where the converted folder of a GGUF (or a named offline model) lives."""
    if name:
        return _models_root() / name
    assert gguf is not None
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:10]
    return _models_root() / f"{gguf.stem}-{key}"


def cached_conversion(name: str) -> Path | None:
    d = _models_root() / name
    return d if (d / MARKER).is_file() else None


def convert_gguf(gguf: str | Path, *, name: str | None = None, force: bool = False) -> Path:
    """A cached HF folder with the dequantised weights and tokenizer of a .gguf file."""
    src = Path(gguf).expanduser()
    if not src.is_file():
        raise ModelError(f"GGUF file {src} not found: check the path")
    if src.suffix.lower() != ".gguf":
        raise ModelError(f"{src} is not a .gguf file: pass a GGUF file, a model folder or a hub id")
    target = conversion_dir(src, name)
    if (target / MARKER).is_file() and not force:
        return target
    lock = Path(str(target) + ".lock")
    try:
        _convert_locked(src, target, lock, name, force)
    except BaseException:
        if not target.exists():  # a file that cannot be converted leaves nothing behind in the cache
            lock.unlink(missing_ok=True)
        raise
    return target


def _convert_locked(src: Path, target: Path, lock: Path, name: str | None, force: bool) -> None:
    from filelock import FileLock

    with FileLock(str(lock)):
        if (target / MARKER).is_file() and not force:
            return
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _convert(src, tmp)
            (tmp / MARKER).write_text(
                json.dumps({"gguf": str(src.resolve()), "size": src.stat().st_size, "name": name}, indent=2),
                encoding="utf-8",
            )
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _convert(src: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        quantised = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    except Exception as exc:  # any failure to parse the file (struct, numpy, KeyError...) means the same thing
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelError(
            f"cannot read GGUF {src.name} ({first}): transformers supports llama, mistral, qwen2, gemma2/3, "
            "phi3 and a few more GGUF architectures; convert others with llama.cpp's convert scripts"
        ) from None
    cfg = quantised.config.to_dict()
    cfg.pop("quantization_config", None)
    config = type(quantised.config).from_dict(cfg)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ModelError(
            f"GGUF {src.name}: weights do not match the model ({len(missing)} missing, {len(unexpected)} "
            "unexpected): this architecture's GGUF mapping is incomplete in transformers"
        )
    model.generation_config = quantised.generation_config
    del quantised
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
