"""The semantic risk layer: sentence-level cosine similarity to hand-written prototype sentences.

Why: the rules reach recall 1.0 on the phrasing they were written against but only about a third of new
phrasings (challenge3 first run: high+ 0.233, moderate+ 0.323). A frozen sentence encoder (all-MiniLM-L6-v2,
`sentence_encoder.py`) recognises paraphrases of the prototypes in `resources/safety/prototypes.yaml`
("I've been saving up my meds" ~ "I have been stockpiling pills").

Contract (tested in tests/test_safety_semantic.py):
- it can only RAISE the rule level, never lower it, and never touches the flags;
- every raise names the prototype it matched (a Cue with rule "semantic:<prototype id>" and the cosine);
- a sentence counts only when its nearest risk prototype is at least `threshold` similar AND beats the
  nearest benign look-alike prototype ("none": idioms, media, other people, medication questions...) by
  `margin`; sentences where the rules found any cue (counted, contextual, or discounted as negated, quoted,
  hypothetical, a figure of speech) are skipped: the rules read them ("sometimes I want to die" stays low,
  "I have the pills" stays none), and the layer is for the phrasing they miss entirely;
- safety never depends on it: if the encoder or the bank cannot be loaded, `assess` runs the rules, logs
  one line without user text and counts the failure (`status()`).

The bank (`semantic_bank.json.gz`) is built by `mentalens train risk-semantic`: it embeds the prototypes,
DROPS every prototype that is a near-duplicate (cosine >= 0.9) of a sentence of a held-out split of
bench/data/safety_eval.jsonl (test, challenge, challenge2, challenge3, challenge4) so those splits stay held out,
and chooses `threshold` and `margin` on the DEV and DEV2 splits only (its risk items and its benign look-alikes) plus
GoEmotions dev comments as everyday text. The test/challenge/challenge2/challenge3/challenge4 splits are NEVER used to
tune anything here; they are only read to drop near-duplicate prototypes.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mentalens.errors import DataError, ModelError, UnknownNameError
from mentalens.safety.types import Cue, RiskLevel

log = logging.getLogger("mentalens.safety.semantic")

ARTEFACT = "semantic_bank.json.gz"
PROTOTYPES = "prototypes.yaml"
FORMAT_VERSION = 1
# never tuned on; prototypes that are near-duplicates of their sentences are dropped
HELD_OUT_SPLITS = ("test", "challenge", "challenge2", "challenge3", "challenge4", "challenge5")
TUNE_SPLITS = ("dev", "dev2")  # the only splits the threshold and margin are chosen on
# the splits round 13 of issue 7 chose per-language thresholds on (`--set language_tune_splits=dev9,dev10,train6`),
# read by the whole system: the tuning splits NO shipped learned reader trained on. On a split a reader trained on, it
# finds in sample what only the bank would find out of sample, so the bank looks redundant there (on dev3 any English
# threshold up to 0.90 kept recall). Not shipped: on dev11+dev12 that bank lost recall and saved no false alarm
LANGUAGE_TUNE_SPLITS = ("dev9", "dev10", "train6")
NEAR_DUPLICATE = 0.9
MAX_UNITS = 48  # sentences per assessment (the most recent ones): keeps a long conversation's check fast
MAX_UNIT_CHARS = 600  # a "sentence" longer than this is cut into windows of this size
_SENT = re.compile(r"[^.!?¡¿\n;]+[.!?;]*|[.!?;]+")


# ------------------------------------------------------------------------------------------------ prototypes
@dataclasses.dataclass(frozen=True)
class Prototype:
    id: str  # "<level>.<construct>.<lang>.<n>"
    level: RiskLevel
    construct: str
    lang: str
    text: str


def load_prototypes(path: str | Path | None = None) -> list[Prototype]:
    """The prototype sentences of prototypes.yaml, with stable ids (n counts within a group, in file order)."""
    import yaml

    from mentalens.paths import package_resource

    p = Path(path) if path else package_resource("safety", PROTOTYPES)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{p}: cannot read the prototype sentences ({exc}): fix the YAML or restore the file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("prototypes"), list):
        raise DataError(f"{p}: expected a mapping with a 'prototypes' list: see the comment at the top of the file")
    out: list[Prototype] = []
    counts: dict[tuple[str, str, str], int] = {}
    for g in doc["prototypes"]:
        try:
            level = RiskLevel.parse(g["level"])
            construct, lang, texts = str(g["construct"]), str(g["lang"]), g["texts"]
        except (KeyError, TypeError) as exc:
            raise DataError(f"{p}: a group lacks {exc}: every group needs level, construct, lang and texts") from None
        for t in texts:
            key = (level.value, construct, lang)
            counts[key] = counts.get(key, 0) + 1
            out.append(Prototype(f"{level.value}.{construct}.{lang}.{counts[key]}", level, construct, lang,
                                 str(t).strip()))
    if not out:
        raise DataError(f"{p}: no prototype sentences: add some under 'prototypes'")
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ units
def sentence_units(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of the sentences of one message (long ones cut into windows)."""
    spans: list[tuple[int, int]] = []
    for m in _SENT.finditer(text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if not re.search(r"\w", text[s:e]):
            continue
        while e - s > MAX_UNIT_CHARS:
            cut = text.rfind(" ", s, s + MAX_UNIT_CHARS)
            cut = cut if cut > s else s + MAX_UNIT_CHARS
            spans.append((s, cut))
            s = cut + 1
        spans.append((s, e))
    return spans


def message_units(texts: Sequence[str]) -> list[tuple[int, int, int]]:
    """(message index, start, end) of every sentence; a multi-sentence message also counts as one unit.

    Only the most recent MAX_UNITS are kept (the latest turns matter most for what to show now).
    """
    units: list[tuple[int, int, int]] = []
    for i, t in enumerate(texts):
        spans = sentence_units(t)
        units.extend((i, s, e) for s, e in spans)
        if len(spans) > 1 and len(t) <= MAX_UNIT_CHARS:
            units.append((i, spans[0][0], spans[-1][1]))
    return units[-MAX_UNITS:]


# ------------------------------------------------------------------------------------------------ the bank
def read_artefact(path: Path, version: int) -> dict[str, Any]:
    """A gzipped JSON artefact of the semantic layer (bank or learned reader), checked for its format version;
    ValueError/OSError/EOFError when it cannot be read (the callers turn them into a ModelError)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    if doc.get("format") != version:
        raise ValueError(f"format {doc.get('format')!r}, expected {version}")
    return doc


@dataclasses.dataclass
class SemanticBank:
    """Prototype vectors (unit length) with their ids/levels and the thresholds chosen on dev data."""

    ids: list[str]
    levels: list[RiskLevel]
    texts: list[str]
    vectors: Any  # (n, 384) float32
    threshold: float
    margin: float
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    # a stricter threshold for a language's sentences ({"en": 0.74}), never below `threshold`: chosen on the
    # whole system's decisions (`choose_language_thresholds`); absent from older banks (then `threshold` alone)
    language_thresholds: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        import numpy as np

        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self._risk = np.array([lvl > RiskLevel.NONE for lvl in self.levels])
        self._rank = np.array([lvl.rank for lvl in self.levels])

    def match(self, vecs: Any) -> list[tuple[int, float, float]]:
        """For each unit vector: (index of the nearest risk prototype, its cosine, cosine of nearest benign)."""
        import numpy as np

        sims = np.asarray(vecs, dtype=np.float32) @ self.vectors.T
        risk = np.where(self._risk[None, :], sims, -2.0)
        benign = np.where(self._risk[None, :], -2.0, sims)
        best = risk.argmax(1)
        return [(int(b), float(risk[k, b]), float(benign[k].max())) for k, b in enumerate(best)]

    def decide(self, matches: list[tuple[int, float, float]], threshold: float | None = None,
               margin: float | None = None, languages: Sequence[str] | None = None,
               language_thresholds: dict[str, float] | None = None) -> list[RiskLevel]:
        """The level each unit asks for (NONE when below its threshold or not clear of the benign prototypes).

        With `languages` (one per unit), a unit of a language in `language_thresholds` (default the bank's) needs
        the higher of that threshold and the base one."""
        thr = self.threshold if threshold is None else threshold
        mar = self.margin if margin is None else margin
        by_lang = self.language_thresholds if language_thresholds is None else language_thresholds
        langs = languages if languages is not None else [""] * len(matches)
        thrs = [max(thr, by_lang.get(lang, thr)) for lang in langs]
        return [self.levels[b] if (c >= t and c - n >= mar) else RiskLevel.NONE
                for (b, c, n), t in zip(matches, thrs, strict=True)]

    # -------------------------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Deterministic gzip JSON (float16 vectors, base64), written to a temp file then moved into place."""
        import numpy as np

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT_VERSION, "ids": self.ids, "levels": [lvl.value for lvl in self.levels],
               "texts": self.texts, "dim": int(self.vectors.shape[1]),
               "vectors_f16": base64.b64encode(self.vectors.astype(np.float16).tobytes()).decode("ascii"),
               "threshold": round(float(self.threshold), 4), "margin": round(float(self.margin), 4),
               "meta": self.meta}
        if self.language_thresholds:  # only when set: a bank without them rebuilds byte for byte as before
            doc["language_thresholds"] = {k: round(float(v), 4) for k, v in sorted(self.language_thresholds.items())}
        raw = json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=0).encode("utf-8")
        from mentalens.safety.classifier import write_gzip

        return write_gzip(path, raw)

    @classmethod
    def load(cls, path: str | Path) -> SemanticBank:
        import numpy as np

        path = Path(path)
        try:
            doc = read_artefact(path, FORMAT_VERSION)
            vecs = np.frombuffer(base64.b64decode(doc["vectors_f16"]), dtype=np.float16)
            vecs = vecs.reshape(len(doc["ids"]), int(doc["dim"])).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-9)
            return cls(ids=list(doc["ids"]), levels=[RiskLevel.parse(v) for v in doc["levels"]],
                       texts=list(doc["texts"]), vectors=vecs, threshold=float(doc["threshold"]),
                       margin=float(doc["margin"]), meta=doc.get("meta", {}),
                       language_thresholds={str(k): float(v) for k, v in doc.get("language_thresholds", {}).items()})
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            raise ModelError(f"semantic risk bank {path} cannot be read ({exc}): rebuild it with "
                             "`mentalens train risk-semantic`") from None


def default_path() -> Path:
    from mentalens.paths import package_resource

    return package_resource("safety", ARTEFACT)


# ------------------------------------------------------------------------------------------------ runtime
@dataclasses.dataclass
class _State:
    bank: SemanticBank | None = None
    failures: int = 0
    last_error: str | None = None
    failed_at: float | None = None
    calls: int = 0
    raised: int = 0
    learned: Any = None  # LearnedRiskModel, or False when none is shipped / it is turned off
    learned_raised: int = 0
    reader_failed_at: float | None = None  # the learned reader's LM could not run (the bank runs on)


# A learned raise also needs a risk prototype at least this close. Chosen on GoEmotions dev (tuning data): the
# lowest floor at which the learned reader raises none of its 5,426 comments (it raised 4, nearest-risk cosines
# 0.29-0.56: "I'm climbing the walls right now", "gonna do lsd again"), because rules + classifier already flag
# 27 (0.498%) and the whole system must stay <= 0.5%. It also removes its one raise of a dev look-alike (0.47).
LEARNED_MIN_COSINE = 0.56


# What a learned raise must also pass, by the name its artefact records (`LearnedRiskModel.gate`), given the
# sentence's cosine to its nearest risk prototype and to its nearest benign look-alike prototype:
LEARNED_GATES: dict[str, Callable[[float, float], bool]] = {
    # nearer a risk prototype than every look-alike (the bank's look-alikes veto: "I want to jump on the
    # trampoline"), and within LEARNED_MIN_COSINE of one
    "prototype": lambda cos, benign: cos > benign and cos >= LEARNED_MIN_COSINE,
    # within LEARNED_MIN_COSINE of a risk prototype, whatever the look-alikes say
    "floor": lambda cos, benign: cos >= LEARNED_MIN_COSINE,
    # the reader alone (its thresholds then carry every false-alarm limit)
    "none": lambda cos, benign: True,
}


def learned_gate(cos: float, benign: float, kind: str = "prototype") -> bool:
    """Whether a learned raise may stand under the gate `kind` (LEARNED_GATES). Applied at run time and in the
    reader's threshold search alike."""
    try:
        gate = LEARNED_GATES[kind]
    except KeyError:
        raise UnknownNameError("learned gate", kind, tuple(LEARNED_GATES)) from None
    return gate(cos, benign)


_STATE = _State()
_LOCK = threading.Lock()
RETRY_AFTER_S = 300.0  # after a load failure, the rules run alone for this long before the next try


def enabled_by_default() -> bool:
    """$MENTALENS_SEMANTIC_RISK=0 turns the layer off process-wide (rules + classifier only)."""
    return os.environ.get("MENTALENS_SEMANTIC_RISK", "1").strip().lower() not in ("0", "false", "no", "off")


def bank_path() -> Path:
    """$MENTALENS_SEMANTIC_BANK, else the packaged bank."""
    env = os.environ.get("MENTALENS_SEMANTIC_BANK")
    return Path(env) if env else default_path()


def get_bank() -> SemanticBank:
    """The shipped bank, loaded once (ModelError when it is missing or unreadable)."""
    if _STATE.bank is None:
        with _LOCK:
            if _STATE.bank is None:
                p = bank_path()
                if not p.is_file():
                    raise ModelError(f"no semantic risk bank at {p}: build it with `mentalens train risk-semantic`")
                _STATE.bank = SemanticBank.load(p)
    return _STATE.bank


def status() -> dict[str, Any]:
    """Counters for health checks (no user text): calls, raises, load failures and the last error."""
    return {"loaded": _STATE.bank is not None, "calls": _STATE.calls, "raised": _STATE.raised,
            "learned_loaded": bool(_STATE.learned), "learned_raised": _STATE.learned_raised,
            "failures": _STATE.failures, "last_error": _STATE.last_error}


def learned_enabled() -> bool:
    """The learned classifier is on unless $MENTALENS_LEARNED_RISK=0. (It was opt-in while it read sentences as
    written and flipped risk levels on 0.31-0.35% of the bias audit's gender and dialect pairs; it now reads the
    neutral reading and flips none, docs/safety.md.) The prototype bank runs either way."""
    return os.environ.get("MENTALENS_LEARNED_RISK", "1").strip().lower() not in ("0", "false", "no", "off")


def get_learned() -> Any:
    """The shipped learned classifier (mentalens.safety.learned), loaded once; None when absent or turned off.

    A model that exists but cannot be read raises ModelError (the caller's fail-safe path: rules decide)."""
    if not learned_enabled():
        return None
    if _STATE.learned is None:
        with _LOCK:
            if _STATE.learned is None:
                from mentalens.safety.learned import load_readers, model_path, model_spec

                _STATE.learned = load_readers(model_spec()) if model_path().is_file() else False
    return _STATE.learned or None


def reset() -> None:
    """Forget the loaded bank and the failure state (tests, or after rebuilding the bank)."""
    with _LOCK:
        _STATE.bank = None
        _STATE.learned = None
        _STATE.failed_at = None
        _STATE.reader_failed_at = None
        _STATE.last_error = None


@dataclasses.dataclass
class UnitReading:
    """What the layer read in the sentences the rules left to it: per unit (message, start, end), its language,
    its nearest prototypes (`SemanticBank.match`) and the learned readers' highest ask with that reader's
    threshold, and whether it holds a context cue released on corroboration (`split_left_to_rules`). The decision
    (`unit_asks`) is separate so a build can replay it under other bank thresholds."""

    units: list[tuple[int, int, int]]
    languages: list[str]
    matches: list[tuple[int, float, float]]
    learned: list[tuple[RiskLevel, float, tuple[int, float, float]]]
    learned_thresholds: list[float]
    held: list[bool]


def unit_language(text: str) -> str:
    """"es" for a sentence read as Spanish, else "en" (the encoder is English-only, `learned.english`)."""
    from mentalens.safety.learned import english

    return "en" if english(text) else "es"


def read_units(user_texts: Sequence[str], discounted: Sequence[Cue], encoder: Any, bank: SemanticBank,
               learned: Any, corroborate: Sequence[Cue] = ()) -> UnitReading:
    """Embed the sentences the rules left to the layer and read them with the bank and the learned readers
    (those holding a `corroborate` cue are marked held: their asks stand only when corroborated)."""
    from mentalens.safety.learned import read

    units = [u for u in message_units(user_texts) if not _discounted(u, discounted)]
    texts = [user_texts[i][s:e] for i, s, e in units]
    languages = [unit_language(t) for t in texts]
    # the learned reader and its gates see each sentence as it was trained to (its neutral reading): encoded
    # in the same call as the sentences themselves (one encoder run instead of two per turn)
    readings = [] if not learned or learned.reading == "plain" else [read(t, learned.reading) for t in texts]
    both = encoder.encode(texts + readings) if texts else []
    vecs = both[: len(texts)]
    matches = bank.match(vecs) if texts else []
    learned_asked: list[tuple[RiskLevel, float, tuple[int, float, float]]] = [
        (RiskLevel.NONE, 0.0, m) for m in matches]
    learned_thr = [0.0] * len(units)  # the threshold of the reader that asked, for the cue's note
    if learned and texts:
        lvecs = both[len(texts):] if readings else vecs
        lmatches = bank.match(lvecs) if readings else matches
        # English sentences only (the encoder is English-only: Spanish is left to the rules and the bank)
        for reader in learned.members:  # one reader, or a union of readers: the highest ask wins
            read_it = [lang == "en" and learned_gate(m[1], m[2], reader.gate)
                       for lang, m in zip(languages, lmatches, strict=True)]
            decided = _learned_decisions(reader, lvecs, readings or texts, read_it)
            for k, ((lvl, p), ok) in enumerate(zip(decided, read_it, strict=True)):
                if ok and lvl > learned_asked[k][0]:
                    learned_asked[k] = (lvl, p, lmatches[k])
                    learned_thr[k] = reader.thresholds[lvl.rank - 1]
    held = [_discounted(u, corroborate) for u in units] if corroborate else [False] * len(units)
    return UnitReading(units, languages, matches, learned_asked, learned_thr, held)


def unit_asks(reading: UnitReading, bank: SemanticBank, rule_level: RiskLevel,
              language_thresholds: dict[str, float] | None = None) -> tuple[list[RiskLevel], list[RiskLevel]]:
    """Per unit, what the bank and the learned readers ask for, with held sentences' asks dropped unless
    corroborated (`_hold_uncorroborated`): the one decision of run time and of a build's replay."""
    asked = bank.decide(reading.matches, languages=reading.languages, language_thresholds=language_thresholds)
    learned_asks = [llvl for llvl, _p, _m in reading.learned]
    if any(reading.held):
        _hold_uncorroborated(reading, asked, learned_asks, rule_level)
    return asked, learned_asks


def decide_units(reading: UnitReading, bank: SemanticBank, rule_level: RiskLevel,
                 language_thresholds: dict[str, float] | None = None) -> RiskLevel:
    """The level the layer asks for (>= rule_level) from a reading, without building cues (threshold search)."""
    asked, learned_asks = unit_asks(reading, bank, rule_level, language_thresholds)
    return max([rule_level, *asked, *learned_asks], key=lambda x: x.rank)


def semantic_cues(
    user_texts: Sequence[str],
    rule_level: RiskLevel,
    discounted: Sequence[Cue] = (),
    *,
    encoder: Any = None,
    bank: SemanticBank | None = None,
    learned: Any = None,
    corroborate: Sequence[Cue] = (),
) -> tuple[RiskLevel, list[Cue]] | None:
    """The level the semantic layer asks for (>= rule_level) and the cues naming the matched prototypes.

    Two readers of the same sentence vectors: the prototype bank (nearest prototype) and the learned classifier
    (`mentalens.safety.learned`, used with the shipped bank unless a bank is passed without one); each may only
    raise. A sentence holding one of the `corroborate` cues (`split_left_to_rules`) is read too, but its ask
    stands only when corroborated: the rules already reached low, or another sentence asks for low or more.
    Returns None when the layer is unavailable (the failure is logged once and counted, never raised): the caller
    then keeps the rule decision.
    """
    now = time.monotonic()
    if _STATE.failed_at is not None and now - _STATE.failed_at < RETRY_AFTER_S and encoder is None and bank is None:
        return None
    try:
        if learned is None and bank is None:
            learned = get_learned()
        bank = bank or get_bank()
        if encoder is None:
            from mentalens.safety.sentence_encoder import get_encoder

            encoder = get_encoder()
        _STATE.calls += 1
        if rule_level >= RiskLevel.IMMINENT:  # nothing to raise: nothing is encoded
            return rule_level, []
        reading = read_units(user_texts, discounted, encoder, bank, learned, corroborate)
    except Exception as exc:  # safety must not depend on this layer: the rules still decide
        _STATE.failed_at = now
        _record_failure(exc, "semantic risk layer unavailable, rules only")
        return None
    _STATE.failed_at = None
    level = rule_level
    cues: list[Cue] = []
    learned_raise = False
    asked, learned_asks = unit_asks(reading, bank, rule_level)
    for (i, s, e), (b, cos, benign), lvl, llvl, (_l, prob, lm), thr in zip(
            reading.units, reading.matches, asked, learned_asks, reading.learned, reading.learned_thresholds,
            strict=True):
        if lvl > rule_level:
            level = max(level, lvl, key=lambda x: x.rank)
            cues.append(Cue(f"semantic.{bank.levels[b].value}", user_texts[i][s:e], s, e, i, 1.0,
                            f"close to prototype '{bank.texts[b]}' (cosine {cos:.2f}, nearest benign {benign:.2f})",
                            f"semantic:{bank.ids[b]}"))
        if llvl > rule_level:
            level = max(level, llvl, key=lambda x: x.rank)
            learned_raise = True
            head = "imminent" if llvl == RiskLevel.IMMINENT else f">= {llvl.value}"
            cues.append(Cue(f"semantic.{llvl.value}", user_texts[i][s:e], s, e, i, 1.0,
                            f"learned sentence classifier: p({head}) {prob:.2f} >= threshold {thr:.2f}; nearest "
                            f"prototype '{bank.texts[lm[0]]}' ({bank.levels[lm[0]].value}, cosine {lm[1]:.2f})",
                            f"learned:{llvl.value}"))
    if level > rule_level:
        _STATE.raised += 1
        _STATE.learned_raised += learned_raise
    return level, cues


def warm_up() -> None:
    """Load the bank, the encoder, the learned readers and any LM a reader reads, now (server start-up), so the first
    message a Gemma-feature reader reads does not wait for the LM's load (or its one-time GGUF conversion). A failure
    is counted and logged; the layer then loads on first use, and the rules never wait for it."""
    from mentalens.safety.lm_features import get_feature_encoder, split_features

    try:
        semantic_cues(["warming up"], RiskLevel.NONE)
        learned = get_learned()
        for reader in learned.members if learned else ():
            lm = split_features(reader.features)[1]
            if lm is not None:
                get_feature_encoder(lm).encode(["warming up"])
    except Exception as exc:
        _record_failure(exc, "semantic risk layer warm-up failed, it loads on first use")


def _record_failure(exc: Exception, what: str) -> None:
    """Count a failure of the layer and log it once, with the error only (never user text)."""
    _STATE.failures += 1
    _STATE.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
    log.warning("%s (%s)", what, _STATE.last_error)


def _learned_decisions(learned: Any, vecs: Any, readings: Sequence[str], read_it: Sequence[bool]) -> list:
    """(level, probability) the reader asks for per unit. A reader of MiniLM vectors scores them all at once; a
    reader of an LM's hidden states (`lm_features`) runs the LM on the units its gate lets through only."""
    from mentalens.safety.lm_features import get_feature_encoder, split_features

    with_minilm, lm = split_features(learned.features)
    if lm is None:
        return learned.decide(learned.probabilities(vecs))
    out: list[tuple[RiskLevel, float]] = [(RiskLevel.NONE, 0.0)] * len(readings)
    idx = [k for k, ok in enumerate(read_it) if ok]
    now = time.monotonic()
    if not idx or (_STATE.reader_failed_at is not None and now - _STATE.reader_failed_at < RETRY_AFTER_S):
        return out
    import numpy as np

    try:
        feats = get_feature_encoder(lm).encode([readings[k] for k in idx])
    except Exception as exc:  # the LM (a separate package) cannot run: the bank still reads, the rules decide
        _STATE.reader_failed_at = now
        _record_failure(exc, "learned risk reader's LM unavailable: that reader steps aside, the prototype bank, "
                             "any other reader and the rules go on")
        return out
    _STATE.reader_failed_at = None
    if with_minilm:
        feats = np.hstack([np.asarray(vecs)[idx], feats])
    for k, d in zip(idx, learned.decide(learned.probabilities(feats)), strict=True):
        out[k] = d
    return out


# flags that say nothing about the writer's own risk: a sentence whose only cue is one of these is still read
# ("three weeks ago I took an overdose" raises medical_emergency; its own level is the layer's to judge)
_FLAG_ONLY = frozenset({"medical_emergency", "abuse", "harm_to_others"})


def _any_cue(cues: Sequence[Cue], level: RiskLevel | None) -> list[Cue]:
    return [c for c in cues if not (c.construct in _FLAG_ONLY and c.weight > 0)]


def _context_read(cues: Sequence[Cue], level: RiskLevel | None) -> list[Cue]:
    from mentalens.safety.rules import HIGH, LOW, MODERATE

    reached = (level or RiskLevel.NONE).rank
    needs = {**dict.fromkeys(LOW, 1), **dict.fromkeys(MODERATE, 2), **dict.fromkeys(HIGH, 3), "attempt_now": 4}
    return [c for c in _any_cue(cues, level)
            if not (c.contextual and c.weight > 0 and needs.get(c.construct, 0) > reached)]


# Which rule cues keep their sentences from the layer (the rules judged those sentences), by name:
LEFT_TO_RULES_POLICIES: dict[str, Callable[[Sequence[Cue], RiskLevel | None], list[Cue]]] = {
    # every cue except a counted flag cue of _FLAG_ONLY
    "any-cue": _any_cue,
    # as "any-cue", except a generic phrase the rules could not count for want of an explicit self-directed cue
    # beside it (a contextual cue above the level reached: "I've counted out the tablets and they're by my
    # bed", "tonight is the night"): the rules did not judge its sentence, so the layer reads it
    "context-read": _context_read,
}
LEFT_TO_RULES = "any-cue"


def left_to_rules_policy() -> str:
    """The policy the shipped learned reader was tuned with (its artefact records it); LEFT_TO_RULES when no
    reader is in use or it cannot load (the semantic layer then reports the failure itself)."""
    if _STATE.failed_at is not None and time.monotonic() - _STATE.failed_at < RETRY_AFTER_S:
        return LEFT_TO_RULES  # the layer is resting after a failure: no reload attempt per message
    try:
        model = get_learned()
    except Exception:  # the layer's own call logs and counts the failure
        return LEFT_TO_RULES
    return model.left_to_rules if model else LEFT_TO_RULES


def cues_left_to_rules(cues: Sequence[Cue], level: RiskLevel | None = None, policy: str | None = None) -> list[Cue]:
    """The rule cues whose sentences the layer skips, given the level the rules (and classifier) reached, under
    `policy` (LEFT_TO_RULES_POLICIES; default LEFT_TO_RULES)."""
    name = policy or LEFT_TO_RULES
    try:
        rule = LEFT_TO_RULES_POLICIES[name]
    except KeyError:
        raise UnknownNameError("left-to-rules policy", name, tuple(LEFT_TO_RULES_POLICIES)) from None
    return rule(cues, level)


# Sentences whose only rule cues are generic context phrases the rules could not count ("I have the pills", "I'm on
# the bridge", "tonight's the night": means, place or timing without an explicit self-directed cue beside them) are
# the rules' under "any-cue", so the layer never read "I've got my dad's shotgun on my lap. Loaded it ten minutes
# ago." Released (issue 7, round 14): the layer reads them, and their ask stands only when corroborated, since alone
# they are as often benign ("The pills are lined up on the pharmacy shelf"). $MENTALENS_CONTEXT_RELEASE=1/0 turns it
# on/off; CONTEXT_RELEASE is the default: on since round 14 (dev13+dev14 first sight: recall 0.550 / 0.614 -> 0.590 /
# 0.641, benign false alarms 0.045 either way; docs/safety.md).
CONTEXT_RELEASE = True


def context_release_enabled() -> bool:
    env = os.environ.get("MENTALENS_CONTEXT_RELEASE", "").strip().lower()
    return CONTEXT_RELEASE if not env else env not in ("0", "false", "no", "off")


def split_left_to_rules(cues: Sequence[Cue], level: RiskLevel | None,
                        policy: str | None = None) -> tuple[list[Cue], list[Cue]]:
    """(the rule cues whose sentences the layer skips under `policy`, the cues it reads on corroboration): the
    latter are contextual cues above the level reached ("context-read" reads those unconditionally) and stressors
    (context only, weight 0: "since losing my job"), which say nothing about the writer's risk either way; none
    when the release is off."""
    left = cues_left_to_rules(cues, level, policy)
    if not context_release_enabled():
        return left, []
    kept = {id(c) for c in _context_read(cues, level)}
    released = {id(c) for c in left if id(c) not in kept or c.construct == "stressor"}
    return [c for c in left if id(c) not in released], [c for c in left if id(c) in released]


def _hold_uncorroborated(reading: UnitReading, asked: list[RiskLevel], learned_asks: list[RiskLevel],
                         rule_level: RiskLevel) -> None:
    """Zero (in place) the asks of sentences holding a released context cue unless something else corroborates
    them: the rules reached low or more, or a sentence without such a cue asks for low or more. (A sentence merely
    near a risk prototype was tried as corroboration: "I have the pills here with me. I take them every morning."
    went to imminent.)"""
    units, held = reading.units, reading.held
    if not any(held) or rule_level >= RiskLevel.LOW:
        return
    if any(not h and max(a, la, key=lambda x: x.rank) >= RiskLevel.LOW
           for h, a, la in zip(held, asked, learned_asks, strict=True)):
        return
    for k, ((i, s, e), h) in enumerate(zip(units, held, strict=True)):
        if not h:
            continue
        asked[k] = RiskLevel.NONE  # the bank's nearest prototype follows the context phrase, whatever surrounds it
        # a learned reader that read the context phrase beside a sentence of its own (the whole message) judged it
        # with what surrounds it ("...Loaded it ten minutes ago." vs "...Remind me to take one after dinner.")
        if not any(not h2 and i2 == i and s <= s2 and e2 <= e and (s2, e2) != (s, e)
                   for (i2, s2, e2), h2 in zip(units, held, strict=True)):
            learned_asks[k] = RiskLevel.NONE


def _discounted(unit: tuple[int, int, int], discounted: Sequence[Cue]) -> bool:
    i, s, e = unit
    return any(c.message_index == i and c.start < e and c.end > s for c in discounted)


# ------------------------------------------------------------------------------------------------ building
@dataclasses.dataclass
class SemanticBuildConfig:
    """Choices of `build_bank` (fixed so the artefact rebuilds the same way)."""

    near_duplicate: float = NEAR_DUPLICATE
    thresholds: tuple[float, ...] = tuple(round(0.40 + 0.01 * i, 2) for i in range(51))  # 0.40 .. 0.90
    margins: tuple[float, ...] = tuple(round(0.025 * i, 3) for i in range(11))  # 0.0 .. 0.25
    max_dev_false_alarm_rate: float = 0.0  # dev "none" items raised by the layer alone (0.025 was tried: see docs)
    max_everyday_false_alarm_rate: float = 0.005  # GoEmotions dev comments raised by the layer alone
    everyday_sample: int = 2000
    safety_gap: float = 0.02  # added to the chosen threshold: the dev set is small
    # per-language thresholds (`choose_language_thresholds`): each language's sentences get the highest threshold
    # (from the base one up, in steps of 0.01) at which the whole system's recall of high+ and of moderate+ on these
    # splits does not fall. The base threshold is chosen on the bank alone over dev/dev2 (strict on their look-alikes
    # but blind to what the rules and readers already catch). () = one threshold for all languages: the shipped bank
    # (round 13 tried LANGUAGE_TUNE_SPLITS: docs/safety.md)
    language_tune_splits: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en", "es")
    language_grid: tuple[float, ...] = tuple(round(0.01 * i, 2) for i in range(40, 96))  # 0.40 .. 0.95


def _eval_rows(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the labelled safety set ({exc}): pass --eval-set FILE") from None


def is_lookalike(category: str) -> bool:
    """A benign look-alike of the labelled set: "benign_lookalike" (dev/test) or "<split>_benign" (every split
    written since), so a new split's look-alikes count without a hand-kept list."""
    return category == "benign_lookalike" or category.endswith("_benign")


def _user_texts(messages: list) -> list[str]:
    out = []
    for m in messages:
        if isinstance(m, str):
            out.append(m)
        elif isinstance(m, dict) and m.get("role", "user") == "user":
            out.append(str(m.get("content") or ""))
    return out


def build_bank(
    eval_set: str | Path,
    data_dir: str | Path | None = None,
    *,
    prototypes: str | Path | None = None,
    cfg: SemanticBuildConfig | None = None,
    encoder: Any = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[SemanticBank, dict[str, Any]]:
    """Embed the prototypes, drop near-duplicates of held-out sentences, choose threshold/margin on dev only."""
    import numpy as np

    from mentalens.paths import package_resource
    from mentalens.safety.assess import assess
    from mentalens.safety.sentence_encoder import MODEL_NAME, get_encoder

    cfg = cfg or SemanticBuildConfig()
    say = progress or (lambda _m: None)
    encoder = encoder or get_encoder()
    proto_path = Path(prototypes) if prototypes else package_resource("safety", PROTOTYPES)
    protos = load_prototypes(proto_path)
    rows = _eval_rows(Path(eval_set))

    say(f"embedding {len(protos)} prototypes")
    pv = encoder.encode([p.text for p in protos])

    # 1. held-out splits stay held out: drop prototypes that are near-duplicates of any of their sentences
    held = [r for r in rows if r["split"] in HELD_OUT_SPLITS]
    held_texts = []
    for r in held:
        texts = _user_texts(r["messages"])
        held_texts += [texts[i][s:e] for i, s, e in message_units(texts)] + [t for t in texts if t.strip()]
    say(f"embedding {len(held_texts)} held-out sentences (only to drop near-duplicate prototypes)")
    hv = encoder.encode(held_texts)
    nearest = (pv @ hv.T).max(1) if len(held_texts) else np.zeros(len(protos))
    keep = [k for k in range(len(protos)) if nearest[k] < cfg.near_duplicate]
    dropped = [{"id": protos[k].id, "cosine": round(float(nearest[k]), 4)} for k in range(len(protos))
               if nearest[k] >= cfg.near_duplicate]
    kept = [protos[k] for k in keep]
    bank = SemanticBank(ids=[p.id for p in kept], levels=[p.level for p in kept], texts=[p.text for p in kept],
                        vectors=pv[keep], threshold=1.0, margin=0.0)

    # 2. thresholds on DEV only: the layer's own decisions (without the rules) on dev risk items and dev
    # benign/none items, plus everyday GoEmotions dev comments. NEVER on test/challenge*.
    dev = [r for r in rows if r["split"] in TUNE_SPLITS]
    say(f"embedding the dev split ({len(dev)} items)")
    dev_units = []
    for r in dev:
        texts = _user_texts(r["messages"])
        rule = assess(r["messages"], use_classifier=False, semantic=False)
        disc = cues_left_to_rules(rule.cues, rule.level, "any-cue")  # the policy the bank is tuned with
        us = [u for u in message_units(texts) if not _discounted(u, disc)]
        dev_units.append((r, [texts[i][s:e] for i, s, e in us]))
    flat = [t for _, ts in dev_units for t in ts]
    dev_matches = bank.match(encoder.encode(flat)) if flat else []
    everyday = _everyday_texts(data_dir, cfg.everyday_sample)
    say(f"embedding {len(everyday)} everyday GoEmotions dev comments")
    ev_units = [t[s:e] for t in everyday for _, s, e in message_units([t])]
    ev_owner = [k for k, t in enumerate(everyday) for _ in message_units([t])]
    ev_matches = bank.match(encoder.encode(ev_units)) if ev_units else []

    def score(thr: float, mar: float) -> dict[str, float]:
        asked = bank.decide(dev_matches, thr, mar)
        pos = 0
        risk_hit = risk_n = benign_fa = benign_n = 0
        for r, ts in dev_units:
            lv = max((a.rank for a in asked[pos:pos + len(ts)]), default=0)
            pos += len(ts)
            gold = RiskLevel.parse(r["level"]).rank
            if gold >= RiskLevel.MODERATE.rank:
                risk_n += 1
                risk_hit += lv >= RiskLevel.MODERATE.rank
            if gold == 0:
                benign_n += 1
                benign_fa += lv > 0
        ev_asked = bank.decide(ev_matches, thr, mar)
        ev_fa = len({ev_owner[k] for k, a in enumerate(ev_asked) if a > RiskLevel.NONE})
        return {"dev_recall_moderate_plus_layer_alone": risk_hit / max(risk_n, 1),
                "dev_none_false_alarm_rate_layer_alone": benign_fa / max(benign_n, 1),
                "everyday_false_alarm_rate_layer_alone": ev_fa / max(len(everyday), 1)}

    say("choosing threshold and margin on dev")
    best: tuple[float, float, float, dict[str, float]] | None = None
    frontier = []
    for mar in cfg.margins:
        for thr in cfg.thresholds:
            s = score(thr, mar)
            if (s["dev_none_false_alarm_rate_layer_alone"] <= cfg.max_dev_false_alarm_rate
                    and s["everyday_false_alarm_rate_layer_alone"] <= cfg.max_everyday_false_alarm_rate):
                key = s["dev_recall_moderate_plus_layer_alone"]
                frontier.append({"margin": mar, "threshold": thr, **{k: round(v, 4) for k, v in s.items()}})
                # most dev recall; ties -> the lowest threshold that reaches it, then the smaller margin
                if best is None or key > best[2] + 1e-9:
                    best = (thr, mar, key, s)
                break  # higher thresholds at this margin only lose recall
    if best is None:
        raise ModelError("no threshold keeps dev false alarms at the target: add benign prototypes (level none)")
    thr, mar = round(best[0] + cfg.safety_gap, 4), best[1]
    bank.threshold, bank.margin = thr, mar
    final = score(thr, mar)
    bank.meta = {
        "encoder": MODEL_NAME, "prototypes_sha256": _sha256(proto_path), "eval_set_sha256": _sha256(Path(eval_set)),
        "prototypes": len(protos), "kept": len(kept), "dropped_near_duplicates_of_held_out": dropped,
        "held_out_splits": list(HELD_OUT_SPLITS), "near_duplicate_cosine": cfg.near_duplicate,
        "tuned_on": "dev and dev2 splits of the labelled set + GoEmotions dev comments (never test/challenge*)",
        "tune_splits": list(TUNE_SPLITS),
        "chosen_before_gap": {"threshold": best[0], "margin": best[1], **{k: round(v, 4) for k, v in best[3].items()}},
        "frontier_per_margin": frontier, "safety_gap": cfg.safety_gap,
        "at_shipped_thresholds": {k: round(v, 4) for k, v in final.items()},
        "everyday_comments": len(everyday),
    }
    if cfg.language_tune_splits:
        system_rows = [r for r in rows if r["split"] in cfg.language_tune_splits]
        bank.language_thresholds, bank.meta["language_threshold_choice"] = choose_language_thresholds(
            bank, system_rows, encoder, cfg, say)
    report = {"threshold": thr, "margin": mar, "language_thresholds": bank.language_thresholds, **bank.meta}
    return bank, report


def choose_language_thresholds(bank: SemanticBank, rows: list[dict], encoder: Any, cfg: SemanticBuildConfig,
                               say: Callable[[str], None]) -> tuple[dict[str, float], dict[str, Any]]:
    """Per language, the highest threshold (>= the bank's) at which the whole system (rules, classifier, this bank,
    the shipped learned readers) keeps its recall of high+ and of moderate+ on `rows`: what the bank alone raises
    there beyond that threshold, the other layers already find. Each sentence is read once; the thresholds are
    replayed on the readings (`decide_units`). Returns the thresholds and a report with the false alarms saved."""
    from mentalens.safety.assess import assess

    learned = get_learned()
    say(f"reading {len(rows)} items of {', '.join(sorted({r['split'] for r in rows}))} with the whole system")
    cases = []
    for r in rows:
        a = assess(r["messages"], semantic=False)
        texts = _user_texts(r["messages"])
        reading = None
        if a.level < RiskLevel.IMMINENT and any(t.strip() for t in texts):
            left, released = split_left_to_rules(a.cues, a.level, left_to_rules_policy())
            reading = read_units(texts, left, encoder, bank, learned, released)
        flagged = any(a.flags.values())
        cases.append((RiskLevel.parse(r["level"]).rank, is_lookalike(r["category"]), flagged, a.level, reading))

    def score(by_lang: dict[str, float]) -> tuple[int, int, int]:
        high = moderate = alarms = 0
        for gold, benign, flagged, level, reading in cases:
            lv = decide_units(reading, bank, level, by_lang) if reading is not None else level
            high += gold >= RiskLevel.HIGH.rank and lv >= RiskLevel.HIGH
            moderate += gold >= RiskLevel.MODERATE.rank and lv >= RiskLevel.MODERATE
            alarms += benign and (lv >= RiskLevel.LOW or flagged)
        return high, moderate, alarms

    base = score({})
    chosen: dict[str, float] = {}
    for lang in cfg.languages:
        for t in sorted(x for x in cfg.language_grid if x > bank.threshold):
            h, m, _ = score({**chosen, lang: t})
            if h < base[0] or m < base[1]:
                break
            chosen[lang] = t
    final = score(chosen)
    n_high = sum(g >= RiskLevel.HIGH.rank for g, *_ in cases)
    n_moderate = sum(g >= RiskLevel.MODERATE.rank for g, *_ in cases)
    n_benign = sum(b for _, b, *_ in cases)
    report = {"splits": sorted({r["split"] for r in rows}), "items": len(cases), "high_plus": n_high,
              "moderate_plus": n_moderate, "benign_lookalikes": n_benign,
              "readers": [m.meta.get("features", "minilm") for m in (learned.members if learned else ())],
              "at_base": {"recall_high_plus": round(base[0] / max(n_high, 1), 4),
                          "recall_moderate_plus": round(base[1] / max(n_moderate, 1), 4), "benign_raised": base[2]},
              "at_chosen": {"recall_high_plus": round(final[0] / max(n_high, 1), 4),
                            "recall_moderate_plus": round(final[1] / max(n_moderate, 1), 4),
                            "benign_raised": final[2]}}
    say(f"language thresholds {chosen}: benign look-alikes raised {base[2]} -> {final[2]} of {n_benign}")
    return chosen, report


def _everyday_texts(data_dir: str | Path | None, n: int) -> list[str]:
    """A fixed sample of GoEmotions dev comments: everyday Reddit text that must stay 'none'."""
    from mentalens.data import load_goemotions

    try:
        recs = load_goemotions(data_dir, split="dev")
    except Exception as exc:  # a missing optional corpus must not stop the build
        log.warning("GoEmotions dev comments unavailable (%s): thresholds use the dev split only", exc)
        return []
    recs = sorted(recs, key=lambda r: hashlib.sha1(r.id.encode()).hexdigest())[:n]
    return [r.text for r in recs if r.text.strip()]
