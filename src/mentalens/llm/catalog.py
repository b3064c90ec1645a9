"""What LLMs and adapters are usable on this machine, and where they live (for `mentalens models list`)."""

from __future__ import annotations

from typing import Any


def list_models() -> list[dict[str, Any]]:
    """Rows {name, kind, status, path|hint}: offline packages, converted GGUFs, hub cache, adapters."""
    from mentalens.llm.gguf import MARKER, cached_conversion
    from mentalens.llm.loading import TINY_MODELS, adapter_base, packaged_adapters
    from mentalens.llm.offline import OFFLINE_MODELS
    from mentalens.paths import cache_dir

    rows: list[dict[str, Any]] = []
    for name, spec in OFFLINE_MODELS.items():
        done = cached_conversion(name)
        if done is not None:
            rows.append({"name": name, "kind": "offline", "status": "ready", "path": str(done)})
        elif spec.installed():
            rows.append({"name": name, "kind": "offline", "status": "installed, not prepared",
                         "hint": f"mentalens models prepare {name} (or load it: prepared on first use)"})
        else:
            rows.append({"name": name, "kind": "offline", "status": "not installed", "hint": spec.install})
    for name in TINY_MODELS:
        rows.append({"name": name, "kind": "tiny (tests)", "status": "built on first use",
                     "hint": "random weights, IMHI-trained tokenizer: for tests and smoke runs only"})
    root = cache_dir("models")
    for d in sorted(root.iterdir()):
        if d.is_dir() and (d / MARKER).is_file() and d.name not in OFFLINE_MODELS:
            rows.append({"name": str(d), "kind": "gguf (converted)", "status": "ready", "path": str(d)})
    rows += _hub_cache()
    for name, path in packaged_adapters().items():
        try:
            base = adapter_base(path)
        except Exception:
            base = "?"
        rows.append({"name": name, "kind": "adapter (packaged)", "status": f"LoRA on {base}", "path": str(path)})
    return rows


def _hub_cache() -> list[dict[str, Any]]:
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:
        return []
    rows = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        rows.append({"name": repo.repo_id, "kind": "hub cache", "status": f"{repo.size_on_disk / 1e6:.0f} MB",
                     "path": str(repo.repo_path)})
    return rows


__all__ = ["list_models"]
