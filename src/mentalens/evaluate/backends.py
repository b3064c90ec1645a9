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


@dataclass(frozen=True)
class OptionSpec:
    """Which shared options a backend takes, and the constructor argument each becomes."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()  # (option, constructor argument)

    def kwargs(self, backend: str, options: BackendOptions) -> dict[str, Any]:
        given = options.given()
        takes = (*self.required, *self.optional)
        unknown = [k for k in given if k not in takes]
        if unknown:
            listed = ", ".join(_CLI_NAMES[k] for k in takes) or "no options"
            raise ConfigError(f"backend {backend} does not take {_CLI_NAMES[unknown[0]]}: it takes {listed}")
        missing = [k for k in self.required if k not in given]
        if missing:
            raise ConfigError(f"backend {backend} needs {_CLI_NAMES[missing[0]]}")
        names = dict(self.rename)
        return {names.get(k, k): v for k, v in given.items()}


OPTION_BUILDERS: Registry[OptionSpec] = Registry("backend")
OPTION_BUILDERS.register("embedded", OptionSpec(optional=("model",), rename=(("model", "artefact"),)))
OPTION_BUILDERS.register("hf", OptionSpec(required=("model",), optional=("adapter", "device")))
OPTION_BUILDERS.register(
    "openai", OptionSpec(required=("base_url", "model"), optional=("api_key", "timeout_s", "max_retries"))
)
OPTION_BUILDERS.register(
    "proxy",
    OptionSpec(required=("model", "expert", "anti_expert"), optional=("alpha", "device"), rename=(("model", "base"),)),
)

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
}


def backend_kwargs(name: str, options: BackendOptions) -> dict[str, Any]:
    """Constructor keyword arguments of backend `name` from the shared options (checked)."""
    canonical = BACKENDS.canonical(name)
    return OPTION_BUILDERS.get(canonical).kwargs(canonical, options)


def build_backend(name: str, options: BackendOptions | None = None, **overrides: Any) -> Backend:
    """The backend `name`, constructed from options (see backend_kwargs)."""
    kwargs = backend_kwargs(name, options or BackendOptions())
    kwargs.update(overrides)
    return get_backend(name, **kwargs)


__all__ = ["OPTION_BUILDERS", "BackendOptions", "OptionSpec", "backend_kwargs", "build_backend"]
