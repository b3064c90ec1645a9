"""Load a causal LM (+ tokenizer, + optional LoRA adapter) from any place a user may have one.

`name_or_path` may be an offline alias (`smollm2-135m-instruct`, `gemma3-270m`), a tiny test model
(`tiny-llama-small`, `tiny-llama-large`), a local HF folder, a `.gguf` file (or a folder holding one),
an adapter folder (its base model is read from adapter_config.json) or a hub id (`org/name`, downloaded
through huggingface_hub, which reads HF_TOKEN or your `hf auth login`: tokens never appear in code).

dtype "auto" means float32 on CPU (bf16/fp16 matmuls are slow or unsupported on most CPUs) and the
checkpoint's own dtype on a GPU. 4-bit/8-bit loading (QLoRA) needs CUDA and bitsandbytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mentalens.errors import ConfigError, ModelError
from mentalens.paths import package_resource

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
TINY_MODELS = {"tiny-llama-small": "small", "tiny-llama-large": "large"}
DTYPES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}


@dataclass
class LoadedModel:
    """A model ready for generation or training, with the tokenizer that belongs to it."""

    model: Any
    tokenizer: Any
    name: str
    path: Path
    adapter: Path | None = None

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device


# ------------------------------------------------------------------------------------------------ resolve


def packaged_adapters() -> dict[str, Path]:
    """Adapters shipped inside mentalens (src/mentalens/resources/adapters/<name>)."""
    root = package_resource("adapters")
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir()) if (d / "adapter_config.json").is_file()}


def is_adapter_dir(path: Path) -> bool:
    return (path / "adapter_config.json").is_file()


def resolve_adapter(adapter: str | Path) -> Path:
    """An adapter folder: a path (or a finetune output folder holding adapter/) or a packaged name."""
    p = Path(adapter).expanduser()
    if p.is_dir():
        if is_adapter_dir(p):
            return p
        if is_adapter_dir(p / "adapter"):
            return p / "adapter"
        raise ModelError(
            f"{p} has no adapter_config.json: pass the adapter folder `mentalens finetune` wrote (OUTPUT/adapter)"
        )
    shipped = packaged_adapters()
    if str(adapter) in shipped:
        return shipped[str(adapter)]
    names = ", ".join(shipped) or "none"
    raise ModelError(f"adapter {str(adapter)!r} not found: pass an adapter folder or a packaged adapter ({names})")


def adapter_base(adapter_dir: Path) -> str:
    """The base model an adapter was trained on (as recorded by peft / mentalens)."""
    try:
        cfg = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{adapter_dir}/adapter_config.json is unreadable ({exc}): re-save the adapter") from None
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"{adapter_dir}: adapter_config.json names no base model: pass the base model explicitly")
    return str(base)


def resolve_model(name_or_path: str | Path) -> Path:
    """A local folder transformers can load: prepares offline aliases and GGUF files once (cached)."""
    from mentalens.llm.offline import OFFLINE_MODELS, prepare_offline

    name = str(name_or_path).strip()
    if not name:
        raise ModelError("no model given: pass a hub id, a local folder, a .gguf file or an offline alias")
    p = Path(name).expanduser()
    if p.exists():
        return _resolve_local(p)
    if name in OFFLINE_MODELS:
        return prepare_offline(name)
    if name in TINY_MODELS:
        from mentalens.llm.tiny import tiny_family

        return tiny_family()[TINY_MODELS[name]]
    if _HUB_ID.match(name) and not name.startswith((".", "/", "~")):
        return _download(name)
    offline = ", ".join([*OFFLINE_MODELS.names(), *TINY_MODELS])
    raise ModelError(
        f"unknown model {name!r}: not a local path, not a hub id (org/name), not an offline model ({offline}); "
        "run `mentalens models list` to see what is usable here"
    )


def _resolve_local(p: Path) -> Path:
    from mentalens.llm.gguf import convert_gguf

    if p.is_file():
        if p.suffix.lower() == ".gguf":
            return convert_gguf(p)
        raise ModelError(f"{p} is a file but not a .gguf model: pass a model folder, a .gguf file or a hub id")
    if (p / "config.json").is_file() or is_adapter_dir(p):
        return p
    ggufs = sorted(p.glob("*.gguf"))
    if len(ggufs) == 1:
        return convert_gguf(ggufs[0])
    if len(ggufs) > 1:
        raise ModelError(f"{p} holds {len(ggufs)} .gguf files: pass one of them ({', '.join(g.name for g in ggufs)})")
    raise ModelError(f"{p} is not a model folder (no config.json, adapter_config.json or .gguf): check the path")


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    ignore = ["*.gguf", "*.pt", "*.pth", "*.onnx", "*.onnx_data", "*.msgpack", "*.h5", "*.ot", "original/*",
              "*.tflite", "*.mlmodel", "coreml/*", "onnx/*"]
    try:
        return Path(snapshot_download(repo_id, ignore_patterns=ignore))
    except GatedRepoError:
        raise ModelError(
            f"{repo_id} is gated: accept its licence on huggingface.co, then `hf auth login` or set HF_TOKEN"
        ) from None
    except RepositoryNotFoundError:
        raise ModelError(
            f"model {repo_id!r} not found on the Hugging Face hub (or private): check the id, or log in with "
            "`hf auth login` / HF_TOKEN"
        ) from None
    except LocalEntryNotFoundError:
        raise ModelError(
            f"model {repo_id!r} is not in the local cache and the hub is unreachable (or HF_HUB_OFFLINE=1): "
            "connect and retry, pass a local folder or .gguf file, or use an offline model "
            "(`mentalens models list`)"
        ) from None


# ------------------------------------------------------------------------------------------------ load


def _torch_dtype(dtype: Any, device: str) -> Any:
    import torch

    if dtype is None or dtype == "auto":
        return torch.float32 if device == "cpu" else "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    key = DTYPES.get(str(dtype).lower().replace("torch.", ""))
    if key is None:
        raise ConfigError(f"dtype {dtype!r} is not supported: use auto, float32, bfloat16 or float16")
    return getattr(torch, key)


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def quantization_config(load_in_4bit: bool, load_in_8bit: bool, compute_dtype: Any = None) -> Any:
    """A BitsAndBytesConfig for QLoRA-style loading, or a clear error where it cannot work."""
    if not (load_in_4bit or load_in_8bit):
        return None
    if load_in_4bit and load_in_8bit:
        raise ConfigError("choose one of load_in_4bit and load_in_8bit, not both")
    import torch

    bits = 4 if load_in_4bit else 8
    if not torch.cuda.is_available():
        raise ModelError(
            f"{bits}-bit loading (QLoRA) needs a CUDA GPU and there is none here: set load_in_{bits}bit=false "
            "to load in full precision (LoRA), or run on a GPU machine"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ModelError(
            f"{bits}-bit loading needs bitsandbytes: run `pip install 'mentalens[gpu]'`"
        ) from None
    from transformers import BitsAndBytesConfig

    if load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = compute_dtype or (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def load_tokenizer(name_or_path: str | Path, *, trust_remote_code: bool = False, padding_side: str = "left"):
    """The model's tokenizer with a pad token set and left padding (batched generation needs it)."""
    path = resolve_model(name_or_path)
    if is_adapter_dir(path) and not _has_tokenizer(path):
        path = resolve_model(adapter_base(path))
    return _load_tokenizer_dir(path, trust_remote_code, padding_side)


def _has_tokenizer(path: Path) -> bool:
    names = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
    return any((path / f).is_file() for f in names)


def _load_tokenizer_dir(path: Path, trust_remote_code: bool = False, padding_side: str = "left"):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load a tokenizer from {path} ({_first_line(exc)}): check the model folder") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if tok.pad_token is None:
        raise ModelError(f"tokenizer at {path} has no pad, eos or unk token: add one to its tokenizer_config.json")
    tok.padding_side = padding_side
    return tok


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def load_model(
    name_or_path: str | Path,
    *,
    adapter: str | Path | None = None,
    dtype: Any = "auto",
    device: str | None = None,
    device_map: Any = None,
    load_in_4bit: bool = False,
    load_in_8bit: bool = False,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
    merge_adapter: bool = False,
) -> LoadedModel:
    """Model + tokenizer (+ LoRA adapter) ready for generation: eval mode, on its device.

    An adapter folder passed as name_or_path loads its base model with the adapter on top.
    merge_adapter folds the LoRA weights into the base (faster generation, no peft at inference).
    """
    from transformers import AutoModelForCausalLM

    name = str(name_or_path)
    path = resolve_model(name_or_path)
    adapter_dir = resolve_adapter(adapter) if adapter is not None else None
    if is_adapter_dir(path) and not (path / "config.json").is_file():
        adapter_dir = adapter_dir or path
        path = resolve_model(adapter_base(path))
    device = device or (None if device_map is not None else default_device())
    quant = quantization_config(load_in_4bit, load_in_8bit)
    kwargs: dict[str, Any] = {"dtype": _torch_dtype(dtype, device or "cuda"), "trust_remote_code": trust_remote_code}
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = device_map or {"": 0}
    elif device_map is not None:
        kwargs["device_map"] = device_map
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot load model {name!r} from {path} ({_first_line(exc)}): check the folder") from None
    if quant is None and device_map is None and device:
        model.to(device)
    tok_dir = adapter_dir if adapter_dir is not None and _has_tokenizer(adapter_dir) else path
    tokenizer = _load_tokenizer_dir(tok_dir, trust_remote_code)
    if adapter_dir is not None:
        model = attach_adapter(model, adapter_dir, merge=merge_adapter)
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=name, path=path, adapter=adapter_dir)


def attach_adapter(model: Any, adapter_dir: Path, *, merge: bool = False, is_trainable: bool = False) -> Any:
    """Put a LoRA adapter on a loaded model; a shape mismatch names the base the adapter belongs to."""
    from peft import PeftModel

    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=is_trainable)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelError(
            f"adapter {adapter_dir} does not fit this model ({_first_line(exc)}); it was trained on "
            f"{adapter_base(adapter_dir)!r}: load that base model"
        ) from None
    return peft_model.merge_and_unload() if merge else peft_model


def model_max_length(model_or_config: Any) -> int | None:
    """The longest sequence the model's positions support (None when it does not say)."""
    cfg = getattr(model_or_config, "config", model_or_config)
    cfg = getattr(cfg, "get_text_config", lambda: cfg)()
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(cfg, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


__all__ = [
    "LoadedModel",
    "adapter_base",
    "attach_adapter",
    "default_device",
    "load_model",
    "load_tokenizer",
    "model_max_length",
    "packaged_adapters",
    "quantization_config",
    "resolve_adapter",
    "resolve_model",
]
