"""From command-line options to a Backend: one option builder per backend name, no if-chain.

`--backend NAME` plus the shared options (--model, --adapter, --base-url, --expert, --anti-expert, --alpha,
...) become the keyword arguments of that backend's constructor (registered in mentalens.backend.BACKENDS).
An option the chosen backend does not take is an error naming the options it does take, rather than
silently ignored (a run with a forgotten --adapter would otherwise evaluate the base model).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from mentalens.backend import BACKENDS, Backend, get_backend
from mentalens.errors import ConfigError
from mentalens.registry import Registry


@dataclass
class BackendOptions:
    model: str | None = None
    adapter: str | None = None
    base_url: str | None = None
    api_key: str | None = None  # normally from $OPENAI_API_KEY, read by the backend itself
    expert: str | None = None
    anti_expert: str | None = None
    alpha: float | None = None
    device: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


OPTION_BUILDERS: Registry[tuple[tuple[str, ...], tuple[str, ...]]] = Registry("backend")


def _register(name: str, required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    OPTION_BUILDERS.register(BACKENDS.canonical(name), (required, optional))


_register("embedded", (), ("model", "device"))
_register("hf", ("model",), ("adapter", "device"))
_register("openai", ("base_url", "model"), ("api_key", "timeout_s", "max_retries"))
_register("proxy", ("base", "expert", "anti_expert"), ("alpha", "device"))

_CLI_NAMES = {
    "model": "--model",
    "adapter": "--adapter",
    "base_url": "--base-url",
    "api_key": "--api-key",
    "expert": "--expert",
    "anti_expert": "--anti-expert",
    "alpha": "--alpha",
    "device": "--device",
    "timeout_s": "--timeout",
    "max_retries": "--max-retries",
    "base": "--model (the base model)",
}


def backend_kwargs(name: str, options: BackendOptions) -> dict[str, Any]:
    """Constructor keyword arguments of backend `name` from the shared options (checked)."""
    canonical = BACKENDS.canonical(name)
    required, optional = OPTION_BUILDERS.get(canonical)
    given = options.given()
    if canonical == "proxy" and "model" in given:  # the proxy's base model comes from --model
        given["base"] = given.pop("model")
    unknown = [k for k in given if k not in required and k not in optional]
    if unknown:
        takes = ", ".join(_CLI_NAMES[k] for k in (*required, *optional)) or "no options"
        raise ConfigError(f"backend {canonical} does not take {_CLI_NAMES[unknown[0]]}: it takes {takes}")
    missing = [k for k in required if k not in given]
    if missing:
        raise ConfigError(f"backend {canonical} needs {_CLI_NAMES[missing[0]]}")
    return given


def build_backend(name: str, options: BackendOptions | None = None, **overrides: Any) -> Backend:
    """The backend `name`, constructed from options (see backend_kwargs)."""
    kwargs = backend_kwargs(name, options or BackendOptions())
    kwargs.update(overrides)
    return get_backend(name, **kwargs)


__all__ = ["OPTION_BUILDERS", "BackendOptions", "backend_kwargs", "build_backend"]
