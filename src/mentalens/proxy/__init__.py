"""Proxy-tuning and logit ensembles: decode from a weighted sum of several causal LMs.

    from mentalens.proxy import LogitEnsemble, EnsembleMember, ProxyConfig
    ens = LogitEnsemble.from_proxy("gemma-7b", expert="mental-gemma-2b-lora/", alpha=1.0)
    ens.generate(["Consider this post: ..."], GenerationConfig(max_new_tokens=128))
    for delta in ens.stream([{"role": "user", "content": "I can't sleep"}]): print(delta, end="")

Importing this package is cheap: torch loads when LogitEnsemble (or anything model-side) is first used.
`mentalens.proxy.backend.ProxyBackend` puts an ensemble behind the common Backend interface.
"""

from __future__ import annotations

import importlib
from typing import Any

from mentalens.proxy.config import COMBINE_MODES, ProxyConfig

_LAZY = {
    "LogitEnsemble": "mentalens.proxy.ensemble",
    "EnsembleMember": "mentalens.proxy.ensemble",
    "GenerationResult": "mentalens.proxy.ensemble",
    "PROMPT_FORMATS": "mentalens.proxy.formats",
    "BASE_ADAPTER": "mentalens.proxy.fused",
    "check_vocabularies": "mentalens.proxy.vocab",
    "ProxyBackend": "mentalens.proxy.backend",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mentalens.proxy' has no attribute {name!r}")


__all__ = ["COMBINE_MODES", "ProxyConfig", *_LAZY]
