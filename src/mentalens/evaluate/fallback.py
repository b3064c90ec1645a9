"""Classifiers that label an answer the task parser cannot read, from its explanation.

MentaLLaMA labels every generated answer with a MentalBERT classifier per set (src/label_inference.py);
mentalens reads the label sentence first and only falls back to a classifier for unparseable answers.
Two fallbacks are registered:

- `analyzer`: the embedded analyzer's heads (`mentalens.analyze.Analyzer`), offline, no extra files;
- `mentalbert`: MentaLLaMA's classifiers from a local folder, one BertForSequenceClassification per set
  (`<folder>/<set>/`), with MentaLLaMA's label order (`get_dict` in label_inference.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mentalens.errors import ModelError
from mentalens.registry import Registry
from mentalens.tasks import Task


class FallbackClassifier(ABC):
    """Labels free text for a task; returns one task label (or None) per text."""

    name = "fallback"

    @abstractmethod
    def classify(self, texts: Sequence[str], task: Task, aspects: Sequence[str | None]) -> list[str | None]:
        """One label of task.labels per text (None when this classifier has nothing for the task)."""

    def describe(self) -> dict[str, Any]:
        return {"fallback": self.name}


class AnalyzerFallback(FallbackClassifier):
    """The embedded analyzer's task heads (`get_analyzer().classify(text, task, aspect)`)."""

    name = "analyzer"

    def __init__(self, analyzer: Any = None, path: str | None = None):
        if analyzer is None:
            try:
                from mentalens.analyze import get_analyzer
            except ImportError as exc:
                raise ModelError(
                    f"the embedded analyzer is not available ({exc}): use --fallback none or mentalbert:DIR"
                ) from None
            analyzer = get_analyzer(path)  # shared with the embedded backend when both run in one process
        self.analyzer = analyzer

    def classify(self, texts: Sequence[str], task: Task, aspects: Sequence[str | None]) -> list[str | None]:
        out: list[str | None] = []
        for text, aspect in zip(texts, aspects, strict=True):
            result = self.analyzer.classify(text, task.name, aspect=aspect)
            label = getattr(result, "label", result)
            out.append(label if label in task.labels else None)
        return out


# MentaLLaMA's label order per set (src/label_inference.py, get_dict), mapped to mentalens task labels.
MENTALBERT_LABELS: dict[str, tuple[str, ...]] = {
    "CAMS": ("none", "bias or abuse", "jobs and career", "medication", "relationship", "alienation"),
    "CLP": ("no", "yes"),
    "DR": ("no", "yes"),
    "dreaddit": ("no", "yes"),
    "Irf": ("no", "yes"),
    "loneliness": ("no", "yes"),
    "MultiWD": ("no", "yes"),
    "SAD": (
        "school",
        "financial problem",
        "family issues",
        "social relationships",
        "work",
        "health issues",
        "emotion turmoil",
        "everyday decision making",
        "other causes",
    ),
    "swmh": ("depression", "suicide", "anxiety", "bipolar", "none"),
    "t-sid": ("depression", "suicide or self-harm", "ptsd", "none"),
}


class MentalBertFallback(FallbackClassifier):
    """MentaLLaMA's per-set MentalBERT classifiers from a local folder (`<folder>/<set>/`)."""

    name = "mentalbert"

    def __init__(self, path: str | Path, device: str | None = None, batch_size: int = 16, max_length: int = 512):
        self.root = Path(path).expanduser()
        if not self.root.is_dir():
            raise ModelError(f"{self.root}: MentalBERT folder not found: pass a folder with one sub-folder per set")
        self.device = device or "cpu"
        self.batch_size, self.max_length = batch_size, max_length
        self._models: dict[str, Any] = {}

    def _folder(self, task: Task) -> Path | None:
        for name in (task.imhi_set, task.name, task.imhi_set.lower(), task.name.lower()):
            if (self.root / name).is_dir():
                return self.root / name
        return None

    def _load(self, task: Task) -> tuple[Any, Any, tuple[str, ...]] | None:
        key = task.imhi_set
        if key in self._models:
            return self._models[key]
        folder = self._folder(task)
        order = next((v for k, v in MENTALBERT_LABELS.items() if k.lower() == task.imhi_set.lower()), None)
        if folder is None or order is None:
            self._models[key] = None
            return None
        from transformers import AutoTokenizer, BertForSequenceClassification

        try:
            model = BertForSequenceClassification.from_pretrained(folder, num_labels=len(order)).to(self.device)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"{folder}: cannot load a BertForSequenceClassification ({exc}): check the folder"
            ) from None
        model.eval()
        self._models[key] = (model, tokenizer, order)
        return self._models[key]

    def classify(self, texts: Sequence[str], task: Task, aspects: Sequence[str | None]) -> list[str | None]:
        import torch

        loaded = self._load(task)
        if loaded is None:
            return [None] * len(texts)
        model, tokenizer, order = loaded
        out: list[str | None] = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = [str(t) for t in texts[i : i + self.batch_size]]
                enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
                logits = model(**{k: v.to(self.device) for k, v in enc.items()}).logits
                for j in logits.argmax(dim=-1).tolist():
                    label = order[j]
                    out.append(label if label in task.labels else None)
        return out

    def describe(self) -> dict[str, Any]:
        return {"fallback": self.name, "path": str(self.root)}


FALLBACKS: Registry[type[FallbackClassifier]] = Registry("fallback classifier")
FALLBACKS.register("analyzer", AnalyzerFallback, aliases=("embedded",))
FALLBACKS.register("mentalbert", MentalBertFallback)


def get_fallback(spec: str | FallbackClassifier | None) -> FallbackClassifier | None:
    """'none' | 'analyzer[:PATH]' | 'mentalbert:DIR' (or a classifier instance) -> a classifier or None."""
    if isinstance(spec, FallbackClassifier):
        return spec
    if spec is None or spec.strip().lower() in ("", "none", "off"):
        return None
    name, _, arg = spec.partition(":")
    cls = FALLBACKS.get(name.strip())
    if cls is MentalBertFallback:
        if not arg:
            raise ModelError("mentalbert needs its folder: --fallback mentalbert:DIR")
        return MentalBertFallback(arg)
    return cls(path=arg) if arg else cls()


__all__ = [
    "FALLBACKS",
    "MENTALBERT_LABELS",
    "AnalyzerFallback",
    "FallbackClassifier",
    "MentalBertFallback",
    "get_fallback",
]
