"""The message-level learned risk reader: the last few user messages read as one text (issue 7, round 29).

Why: the rules, the prototype bank and the sentence readers each judge one sentence at a time, and the sentence readers
read only the sentences the rules left alone. Over 28 rounds about half of each fresh batch of high-risk posts was
still under-triaged. Many of them say it across sentences: "Pills are in my hand. Just wanted to say the people in
this server were the only good part of this year." No single sentence there reaches a threshold. This reader embeds
the conversation's last `WINDOW` user messages as one text (all-MiniLM-L6-v2, the neutral reading) and a small MLP
asks for a level: since round 31, five MLPs from consecutive seeds, folded into one whose logit is their mean. It is
trained on every labelled item the project has read (about 22,500 English ones). At first sight, with no look-alike
added (docs/safety.md):
- round 29, one MLP, on the blind pair dev43 + dev44: recall of high+ 0.565 -> 0.625, of moderate+ 0.631 -> 0.731;
  on the held-out challenge3-5 splits, +0.04 to +0.10;
- round 31, the ensemble, on dev47 + dev48: high+ 0.640 -> 0.680 and moderate+ 0.731 -> 0.797, over round 30's
  single MLP;
- round 32, beside the window's vector the element-wise maximum of its sentences' vectors (`POOLINGS`), on dev49 +
  dev50: high+ 0.685 -> 0.745 and moderate+ 0.797 -> 0.848, over round 31's reader;
- round 33, 20,000 everyday comments as negatives instead of 8,000, on dev51 + dev52: high+ 0.705 -> 0.755 and
  moderate+ 0.807 -> 0.810, over round 32's reader;
- round 35, retrained on every read split with one GoEmotions dev comment in 5,000 allowed above the rules, on dev55
  + dev56: high+ 0.790 -> 0.810 and moderate+ 0.824 -> 0.831, one look-alike fewer, over round 33's reader.
- round 43, retrained on the 77 splits read by then (21,494 items; same configuration and limits), on dev71 +
  dev72: high+ 0.765 -> 0.800 and moderate+ 0.828 -> 0.859, one look-alike fewer, over round 35's reader (its
  stricter imminent head leaves one more imminent item at high: exact imminent 0.750 -> 0.725).
- round 45, retrained on the 81 splits read by then (22,559 items), on dev75 + dev76: high+ 0.830 -> 0.850 and
  moderate+ 0.883 -> 0.900, false alarms unchanged, over round 43's reader.

Contract (the sentence readers', tested in tests/test_safety_message_reader.py):
- it only RAISES the level; English only (the encoder is English-only);
- it runs only where the semantic layer runs (`assess(..., semantic=False)` and $MENTALENS_SEMANTIC_RISK=0 turn it
  off with the rest), and $MENTALENS_MESSAGE_READER=0 turns it off alone;
- its cue names the message, the head's probability and its threshold;
- if it cannot load, the other layers decide, one warning without user text is logged, and the failure is counted.

The thresholds are chosen by grouped cross-validation on the tuning splits only, under two hard limits: the reader
alone raises at most `max_benign_oof_rate` of the benign tuning items out of fold, and at most one GoEmotions dev
comment in 5,000 (`max_everyday_rate`).
The artefact holds weights and thresholds, never a training text. `mentalens train risk-message` rebuilds it
deterministically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mentalens.errors import DataError
from mentalens.safety.learned import (
    HEADS,
    OFF,
    CachedEncoder,
    LearnedBuildConfig,
    LearnedRiskModel,
    _fit,
    english,
    fold_ensemble,
    read,
)
from mentalens.safety.types import Cue, RiskLevel

log = logging.getLogger("mentalens.safety.message_reader")

ARTEFACT = "message_risk.json.gz"
WINDOW = 4  # user messages read together: the labelled conversations have at most four
# every split of bench/data/safety_eval.jsonl read before round 45 (all but the held-out test/challenge* splits and
# the splits still unread); the shipped reader's artefact records the same set (tests/test_safety_message_reader.py)
TUNE_SPLITS: tuple[str, ...] = (
    "dev", "dev2", "dev3", "dev4", "dev5", "dev6", "dev7", "dev8", "dev9", "dev10", "train1", "train2", "train3",
    "train4", "train5", "train6", "train7", *(f"dev{k}" for k in range(11, 75)))


def logit_grid(step: float, top: float = 12.0) -> tuple[float, ...]:
    """Thresholds evenly spaced in logit, sigmoid(0) to sigmoid(top): the heads' probabilities crowd near 1, where an
    even grid in probability would have no room."""
    return tuple(round(1 / (1 + 2.718281828459045 ** (-step * i)), 6) for i in range(int(round(top / step)) + 1))


# what the thresholds are chosen to serve (`choose_thresholds`):
# - "reader": the reader's own levels (round 29);
# - "system": the level the rules and the classifier give each tuning item, raised by the reader: recall is counted
#   on that, and a benign item counts as raised where the reader asks for more than the rules. The thresholds then
#   go to what the rules miss, not to what they already catch.
OBJECTIVES = ("reader", "system")


@dataclasses.dataclass
class MessageReaderConfig:
    """Choices of `build_message_reader` (fixed, so the artefact rebuilds the same way)."""

    tune_splits: tuple[str, ...] = TUNE_SPLITS
    # splits kept unseen for validating a choice: as the held-out splits, their near-duplicates leave training
    validation_splits: tuple[str, ...] = ()
    # POOLINGS; window+max since round 32 (+0.111 recall at first sight on dev49 + dev50, one look-alike fewer)
    pooling: str = "window+max"
    hidden: int = 256
    alpha: float = 1e-3
    epochs: int = 40
    # MLPs from seeds seed, seed+1, ... whose logits are averaged (`learned.fold_ensemble`: still one MLP, wider);
    # 5 since round 31 (+0.106 recall at first sight on dev47 + dev48, no look-alike added)
    ensemble: int = 5
    folds: int = 5
    # GoEmotions train comments as everyday negatives; 20,000 since round 33 (8,000 before: +0.053 recall at first
    # sight on dev51 + dev52, no look-alike added)
    everyday_train: int = 20000
    everyday_weight: float = 0.5  # their total weight relative to the labelled items'
    # benign tuning items the reader alone raises out of fold. 0.2%, not the sentence readers' 0.5%: round 28's
    # reader was dropped for one look-alike more on 220 fresh ones, and 0.5% of them is one
    max_benign_oof_rate: float = 0.002
    # GoEmotions dev comments raised: one in 5,000 since round 35 (none before). With none, the one odd comment a
    # build's seeds score highest set the thresholds alone; one allowed gave +0.027 recall at first sight on dev55 +
    # dev56, one look-alike fewer
    max_everyday_rate: float = 0.0002
    everyday_dev: int = 0  # GoEmotions dev comments checked against that limit (0: all 5,426; fewer for tests)
    reading: str = "neutral"  # gender, names, dialect forms and digits folded (the bias audit's finding)
    gate: str = "sentences"  # what a raise must also pass (MESSAGE_GATES)
    near_duplicate: float = 0.9  # a training item this close to a held-out or validation item is dropped
    threshold_step: float = 0.25  # logit step of the threshold grid (`logit_grid`; round 29 had 0.5)
    grid: tuple[float, ...] = ()  # an explicit threshold grid instead (tests); empty: `logit_grid(threshold_step)`
    objective: str = "reader"  # OBJECTIVES
    seed: int = 0

    def __post_init__(self) -> None:
        """Names are checked here, before minutes of embedding: a typo fails at once, in one line."""
        from mentalens.errors import UnknownNameError

        if self.gate not in MESSAGE_GATES:
            raise UnknownNameError("message reader gate", self.gate, MESSAGE_GATES)
        if self.pooling not in POOLINGS:
            raise UnknownNameError("message reader pooling", self.pooling, tuple(POOLINGS))
        if self.ensemble < 1:
            raise DataError(f"message reader: ensemble {self.ensemble} must be 1 or more (the number of MLPs)")
        if self.objective not in OBJECTIVES:
            raise UnknownNameError("message reader objective", self.objective, OBJECTIVES)
        if not self.grid and not 0 < self.threshold_step <= 12:
            raise DataError(f"message reader: threshold_step {self.threshold_step} is outside (0, 12]: use e.g. 0.25")
        if self.reading not in ("plain", "neutral"):
            raise UnknownNameError("reading", self.reading, ("plain", "neutral"))
        from mentalens.safety.semantic import HELD_OUT_SPLITS

        held = (set(HELD_OUT_SPLITS) | set(self.validation_splits)) & set(self.tune_splits)
        if held:
            raise DataError(f"message reader: tuning splits {sorted(held)} are held out or validation splits: remove "
                            "them from tune_splits")

    def thresholds_grid(self) -> tuple[float, ...]:
        return self.grid or logit_grid(self.threshold_step)


def window_messages(user_texts: Sequence[str]) -> list[str]:
    """The last WINDOW non-empty user messages, as written."""
    return [t for t in user_texts if t and t.strip()][-WINDOW:]


def message_text(user_texts: Sequence[str]) -> str:
    """What the reader reads: the last WINDOW non-empty user messages, one per line."""
    return "\n".join(t.strip() for t in window_messages(user_texts))


def window_sentences(user_texts: Sequence[str]) -> list[str]:
    """The sentences of the last WINDOW non-empty user messages (`semantic.sentence_units`)."""
    from mentalens.safety.semantic import sentence_units

    return [t[s:e] for t in window_messages(user_texts) for s, e in sentence_units(t)]


# What the MLP reads beside the window's own vector, by the name the artefact records ("pooling"):
# - "window": the window as one text only (rounds 29-31);
# - "window+max": and the element-wise maximum of its sentences' vectors, so one strong sentence is not averaged away
#   in a long window (the encoder reads at most 256 word pieces of the window, and mean-pools what it reads).
POOLINGS: dict[str, Callable[[Any], Any] | None] = {
    "window": None,
    "window+max": lambda vecs: vecs.max(0),
}


def window_features(window_vecs: Any, windows: Sequence[Sequence[str]], pooling: str, encoder: Any,
                    reading: str) -> Any:
    """The MLP's input for each window: its vector (`window_vecs`, one row a window) and, by `pooling`, a pool of
    its sentences' vectors (the window's own vector where it has no sentence)."""
    import numpy as np

    pool = POOLINGS[pooling]
    if pool is None:
        return np.asarray(window_vecs, dtype=np.float32)
    sents = [[read(u, reading) for u in window_sentences(w)] for w in windows]
    vecs = encoder.encode([u for s in sents for u in s])
    out, at = [], 0
    for row, s in zip(window_vecs, sents, strict=True):
        out.append(pool(vecs[at:at + len(s)]) if s else row)
        at += len(s)
    return np.hstack([np.asarray(window_vecs, dtype=np.float32), np.asarray(out, dtype=np.float32)])


# What a raise must also pass (`window_ceiling`), by the name the artefact records:
# - "sentences": the window has two sentences or more (a single sentence is the sentence readers' job, and alone the
#   message reader read "I'm sitting on the edge of the bed" as imminent), and the rules discounted nothing in it (a
#   cue they read as past, negated, quoted, hypothetical, a figure of speech or an ordinary use: "I used to want to
#   kill myself but I'm doing well now" is theirs);
# - "sentences+prototype": as "sentences" for a window of two sentences or more; a single sentence passes where the
#   rules discounted nothing and it passes the sentence readers' gate (nearer a risk prototype than every look-alike,
#   `semantic.LEARNED_GATES`), so a lone sentence is read under the same veto as the sentence readers', and it is
#   raised to high at most (`window_ceiling`): read alone, "Took all my pills last month, I'm home now." went to
#   imminent, where the rules read the attempt's time (round 37);
# - "sentences+prototype-moderate": the same, a lone sentence raised to moderate at most (round 37);
# - "undiscounted": the rules discounted nothing in the window, however many sentences it has (round 37);
# - "prototype": as the sentence readers' gate, on a sentence of the window the rules do not hold;
# - "none": the reader alone.
# the highest level a lone sentence may be raised to, by gate ("sentences": none; not listed: any)
LONE_SENTENCE_CEILINGS = {"sentences": RiskLevel.NONE, "sentences+prototype": RiskLevel.HIGH,
                          "sentences+prototype-moderate": RiskLevel.MODERATE}
MESSAGE_GATES = (*LONE_SENTENCE_CEILINGS, "undiscounted", "prototype", "none")


def window_ceiling(user_texts: Sequence[str], left: Sequence[Cue], reading: str, kind: str, encoder: Any,
                   bank: Any) -> int:
    """The highest rank a raise of this window may reach under the gate `kind` (MESSAGE_GATES): 0 where the gate
    stops it, the gate's LONE_SENTENCE_CEILINGS for a lone sentence, else imminent. `left`: the rule cues whose
    sentences the rules hold (`semantic.split_left_to_rules`, released context phrases included)."""
    from mentalens.safety.semantic import _discounted, learned_gate, message_units, sentence_units

    idx = [i for i, t in enumerate(user_texts) if t and t.strip()][-WINDOW:]
    if not idx:
        return 0
    top = RiskLevel.IMMINENT.rank
    if kind == "none":
        return top
    lone = False
    if kind in LONE_SENTENCE_CEILINGS or kind == "undiscounted":
        if any(c.weight == 0 and c.construct != "stressor" and c.message_index >= idx[0] for c in left):
            return 0  # the rules understood a cue here as past, negated, quoted, ...: theirs
        if kind == "undiscounted" or sum(len(sentence_units(user_texts[i])) for i in idx) >= 2:
            return top
        top, lone = LONE_SENTENCE_CEILINGS[kind].rank, True
        if not top:
            return 0
    # "prototype": the sentences the rules do not hold; a lone sentence: itself, held or not
    units = [(i, s, e) for i, s, e in message_units(user_texts)
             if i >= idx[0] and (lone or not _discounted((i, s, e), left))]
    units = [user_texts[i][s:e] for i, s, e in units if english(user_texts[i][s:e])]
    if not units:
        return 0
    vecs = encoder.encode([read(u, reading) for u in units])
    return top if any(learned_gate(cos, benign, "prototype") for _b, cos, benign in bank.match(vecs)) else 0


# ---------------------------------------------------------------------------------------------------- build
def _fold(item_id: str, k: int, seed: int) -> int:
    return int(hashlib.sha1(f"{seed}:{item_id}".encode()).hexdigest(), 16) % k


def _levels(probs: Any, thr: Sequence[float]) -> Any:
    """The rank each row asks for: the highest head at or above its threshold (0 when none)."""
    import numpy as np

    out = np.zeros(len(probs), dtype=int)
    for k, head in enumerate(HEADS):
        out = np.where(probs[:, k] >= thr[k], np.maximum(out, head.rank), out)
    return out


def score(levels: Any, gold: Any, benign: Any, base: Any = None) -> dict[str, float]:
    """Recall of high+ and moderate+ over the risk items and the benign raise rate, for levels asked; with `base`
    (the level each item had before the reader, `levels` at or above it), raised means above it."""
    import numpy as np

    raised = levels > (0 if base is None else base)

    def recall(r: int) -> float:
        m = gold >= r
        return float((levels[m] >= r).mean()) if m.any() else 0.0

    return {"recall_high_plus": recall(RiskLevel.HIGH.rank), "recall_moderate_plus": recall(RiskLevel.MODERATE.rank),
            "benign_raised": float(raised[benign].sum()),
            "benign_raised_rate": float(raised[benign].mean()) if benign.any() else 0.0,
            "over_triage": float(np.mean(levels[gold > 0] > np.maximum(gold[gold > 0], RiskLevel.HIGH.rank)))
            if (gold > 0).any() else 0.0}


def head_allowed(ceilings: Any) -> Any:
    """(rows, heads): whether each head may raise each row, from the highest rank a raise of that row may reach
    (`window_ceiling`: 0 where the gate fails, IMMINENT where it passes without a cap)."""
    import numpy as np

    return np.array([h.rank for h in HEADS])[None, :] <= np.asarray(ceilings)[:, None]


def choose_thresholds(oof: Any, gold: Any, benign: Any, everyday: tuple[Any, Any],
                      cfg: MessageReaderConfig, gate: tuple[Any, Any] | None = None, base: Any = None,
                      ) -> tuple[list[float], dict[str, float]]:
    """Exhaustive search over the moderate/high/imminent heads (>= low stays off: raising none to low is the char
    classifier's job) for the highest recall high+ + moderate+ within both false-alarm limits; ties go to fewer
    benign raises, then to higher thresholds. Every head off if nothing fits. `everyday`: the GoEmotions dev
    comments' probabilities and the rank the rules and the classifier give each (a raise is a level above it).
    `gate`: the highest rank a raise of each tuning item and of each comment may reach under the run-time gate
    (`window_ceiling`; 0 where it fails).
    `base`: the rank the rules and the classifier give each tuning item; used under the "system" objective only."""
    import itertools

    import numpy as np

    every_p, every_rank = everyday
    if gate is not None:  # probabilities zeroed where the gate would stop the raise at run time
        oof = np.where(head_allowed(gate[0]), oof, 0.0)
        every_p = np.where(head_allowed(gate[1]), every_p, 0.0) if len(every_p) else every_p

    if cfg.objective == "system" and base is None:
        raise ValueError("the system objective needs the rules' rank of each tuning item (base)")
    base = np.asarray(base) if cfg.objective == "system" else None

    def levels(thr: list[float]) -> Any:
        own = _levels(oof, thr)
        return own if base is None else np.maximum(own, base)

    best: tuple[Any, ...] | None = None
    for t_mod, t_high, t_imm in itertools.product(cfg.thresholds_grid(), repeat=3):
        thr = [OFF, t_mod, t_high, t_imm]
        s = score(levels(thr), gold, benign, base)
        every = float((_levels(every_p, thr) > every_rank).mean()) if len(every_p) else 0.0
        if s["benign_raised_rate"] > cfg.max_benign_oof_rate or every > cfg.max_everyday_rate:
            continue
        key = (round(s["recall_high_plus"] + s["recall_moderate_plus"], 9), -s["benign_raised"], t_mod + t_high + t_imm)
        if best is None or key > best[0]:
            best = (key, thr, {**s, "everyday_raised_rate": every})
    if best is None:
        return [OFF] * 4, {**score(levels([OFF] * 4), gold, benign, base), "everyday_raised_rate": 0.0}
    return best[1], best[2]


def _gate_at_run_time(user_texts: list[str], rules: Any, cfg: MessageReaderConfig, encoder: Any, bank: Any) -> int:
    """`window_ceiling` as `assess` applies it: after the rules and the classifier (`rules`: their assessment of
    `user_texts`, semantic layer off), with the cues they leave to themselves."""
    from mentalens.safety.semantic import split_left_to_rules

    left, released = split_left_to_rules(rules.cues, rules.level)
    return window_ceiling(user_texts, [*left, *released], cfg.reading, cfg.gate, encoder, bank)


def build_message_reader(
    eval_set: str | Path,
    data_dir: str | Path | None = None,
    *,
    cfg: MessageReaderConfig | None = None,
    encoder: Any = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[LearnedRiskModel, dict[str, Any]]:
    """Embed the tuning items (English, last WINDOW user messages), drop those near a held-out or validation item,
    add GoEmotions train comments as negatives, choose thresholds out of fold, fit on everything."""
    import numpy as np
    import sklearn

    from mentalens.data import LeakageGuard, load_goemotions
    from mentalens.paths import resolve_data_dir
    from mentalens.safety.assess import assess
    from mentalens.safety.learned import default_cache
    from mentalens.safety.semantic import HELD_OUT_SPLITS, _eval_rows, _sha256, _user_texts, get_bank, is_lookalike
    from mentalens.safety.sentence_encoder import MODEL_NAME, get_encoder

    cfg = cfg or MessageReaderConfig()
    say = progress or (lambda _m: None)
    enc = encoder or CachedEncoder(get_encoder(), default_cache())
    held_splits = set(HELD_OUT_SPLITS) | set(cfg.validation_splits)
    rows = _eval_rows(Path(eval_set))
    rank = {lv.value: lv.rank for lv in RiskLevel}

    def text_of(r: dict) -> str:
        return read(message_text(_user_texts(r["messages"])), cfg.reading)

    tune = [r for r in rows if r["split"] in cfg.tune_splits and english(message_text(_user_texts(r["messages"])))]
    if not tune:
        raise DataError(f"{eval_set}: no English item of the tuning splits {list(cfg.tune_splits)}: pass the "
                        "labelled set")
    held = [text_of(r) for r in rows if r["split"] in held_splits]
    say(f"embedding {len(held)} held-out and validation items (only to drop near-duplicate training items)")
    hv = enc.encode(held) if held else np.zeros((0, 384), np.float32)
    say(f"embedding {len(tune)} tuning items")
    tv = enc.encode([text_of(r) for r in tune])
    near = np.zeros(len(tune), dtype=bool)
    for s in range(0, len(tune), 2048):
        if len(hv):
            near[s:s + 2048] = (tv[s:s + 2048] @ hv.T).max(1) >= cfg.near_duplicate
    tune = [r for r, n in zip(tune, near, strict=True) if not n]
    if cfg.pooling != "window":
        say(f"embedding the sentences of {len(tune)} tuning items ({cfg.pooling})")
    x = window_features(tv[~near], [_user_texts(r["messages"]) for r in tune], cfg.pooling, enc, cfg.reading)
    gold = np.array([rank[r["level"]] for r in tune])
    benign = np.array([r["level"] == "none" and is_lookalike(r["category"]) for r in tune])

    root = resolve_data_dir(data_dir)
    guard = LeakageGuard.from_data_dir(root)
    emo = sorted((r for r in load_goemotions(root, split="train") if r.text.strip()),
                 key=lambda r: hashlib.sha1(("message" + r.id).encode()).hexdigest())[:cfg.everyday_train]
    emo, leak = guard.filter(emo, text=lambda r: r.text, source="goemotions")
    emo = [r.text for r in emo if english(r.text)]
    say(f"embedding {len(emo)} everyday comments (GoEmotions train)")
    ex = window_features(enc.encode([read(t, cfg.reading) for t in emo]), [[t] for t in emo], cfg.pooling, enc,
                         cfg.reading)
    dev = sorted((r for r in load_goemotions(root, split="dev") if r.text.strip()), key=lambda r: r.id)
    dev = [r for r in dev[:cfg.everyday_dev or None] if english(r.text)]
    say(f"rules on {len(dev)} GoEmotions dev comments")
    # as for the sentence readers, a raise is a comment read above what the rules and the classifier say
    dev_rules = [assess(r.text, semantic=False) for r in dev]  # once: the rank here, the gate below
    dev_rank = np.array([a.level.rank for a in dev_rules])
    dev_texts = [read(r.text, cfg.reading) for r in dev]
    say(f"embedding {len(dev_texts)} GoEmotions dev comments (false-alarm check only)")
    dv = window_features(enc.encode(dev_texts), [[r.text] for r in dev], cfg.pooling, enc, cfg.reading)
    if hasattr(enc, "flush"):
        enc.flush()

    fit_cfg = LearnedBuildConfig(hidden=cfg.hidden, alpha=cfg.alpha, epochs=cfg.epochs, seed=cfg.seed)
    every_w = cfg.everyday_weight * len(x) / max(len(ex), 1)

    def fit(mask: Any) -> LearnedRiskModel:
        xs = np.vstack([x[mask], ex])
        ys = np.concatenate([gold[mask], np.zeros(len(ex), dtype=int)])
        ws = np.concatenate([np.ones(int(mask.sum())), np.full(len(ex), every_w)])
        if cfg.ensemble == 1:
            return _fit(xs, ys, ws, fit_cfg)
        return fold_ensemble([_fit(xs, ys, ws, dataclasses.replace(fit_cfg, seed=cfg.seed + j))
                              for j in range(cfg.ensemble)])

    folds = np.array([_fold(r["id"], cfg.folds, cfg.seed) for r in tune])
    oof = np.zeros((len(tune), len(HEADS)))
    for k in range(cfg.folds):
        say(f"cross-validation: fold {k + 1} of {cfg.folds}")
        oof[folds == k] = fit(folds != k).probabilities(x[folds == k])
    say("fitting on every tuning item")
    model = fit(np.ones(len(tune), dtype=bool))
    bank = get_bank()
    say(f"rules and the {cfg.gate} gate on every tuning item and GoEmotions dev comment")
    # a raise stands only where the gate lets it through at run time: the thresholds are chosen under it
    tune_texts = [_user_texts(r["messages"]) for r in tune]
    tune_rules = [assess(texts, semantic=False) for texts in tune_texts]  # once: the gate and the system objective
    base = np.array([a.level.rank for a in tune_rules])
    ceilings = (
        np.array([_gate_at_run_time(t, a, cfg, enc, bank) for t, a in zip(tune_texts, tune_rules, strict=True)]),
        np.array([_gate_at_run_time([r.text], a, cfg, enc, bank) for r, a in zip(dev, dev_rules, strict=True)]))
    if hasattr(enc, "flush"):
        enc.flush()
    say("choosing thresholds out of fold")
    thr, oof_scores = choose_thresholds(oof, gold, benign, (model.probabilities(dv), dev_rank), cfg, ceilings, base)
    model.thresholds = thr
    allowed = head_allowed(ceilings[0])  # which heads may raise each tuning item
    in_sample = score(_levels(np.where(allowed, model.probabilities(x), 0.0), thr), gold, benign)
    with_rules = {"rules_alone": score(base, gold, benign),  # what the reader adds (out of fold), whatever objective
                  "rules_and_reader": score(np.maximum(base, _levels(np.where(allowed, oof, 0.0), thr)),
                                            gold, benign, base)}
    model.meta = {
        "kind": "message", "encoder": MODEL_NAME, "features": "minilm", "reading": cfg.reading, "window": WINDOW,
        "gate": cfg.gate, "pooling": cfg.pooling,
        "heads": [h.value for h in HEADS], "config": dataclasses.asdict(cfg),
        "eval_set_sha256": _sha256(Path(eval_set)),
        "tune_splits": list(cfg.tune_splits), "held_out_splits": list(HELD_OUT_SPLITS),
        "validation_splits": list(cfg.validation_splits), "sklearn": sklearn.__version__,
        "tuned_on": "tuning splits of the labelled set (out of fold) + GoEmotions dev comments; never test/challenge*",
        "data": {"tuning_items": len(tune), "dropped_near_held_out": int(near.sum()), "everyday_train": len(ex),
                 "leakage_dropped": leak.dropped, "everyday_dev": len(dev_texts)},
        "out_of_fold_at_thresholds": {k: round(float(v), 4) for k, v in oof_scores.items()},
        "in_sample_at_thresholds": {k: round(float(v), 4) for k, v in in_sample.items()},
        "out_of_fold_with_rules": {name: {k: round(float(v), 4) for k, v in sc.items()}
                                   for name, sc in with_rules.items()},
    }
    return model, {"thresholds": thr, **model.meta}


# ---------------------------------------------------------------------------------------------------- run time
_LOCK = threading.Lock()
_MODELS: dict[str, LearnedRiskModel | None] = {}


def default_path() -> Path:
    from mentalens.paths import package_resource

    return package_resource("safety", ARTEFACT)


def model_path() -> Path:
    """$MENTALENS_MESSAGE_READER_MODEL, else the packaged artefact."""
    env = os.environ.get("MENTALENS_MESSAGE_READER_MODEL")
    return Path(env) if env else default_path()


def enabled() -> bool:
    """On unless $MENTALENS_MESSAGE_READER=0 (it also runs only where the semantic layer runs)."""
    return os.environ.get("MENTALENS_MESSAGE_READER", "1").strip().lower() not in ("0", "false", "no", "off")


def get_reader() -> LearnedRiskModel | None:
    """The reader at `model_path()`, loaded once per path; None when turned off or absent. A file that exists but
    cannot be read raises ModelError (the caller's fail-safe path)."""
    if not enabled():
        return None
    path = model_path()
    key = str(path)
    if key not in _MODELS:
        with _LOCK:
            if key not in _MODELS:
                _MODELS[key] = LearnedRiskModel.load(path) if path.is_file() else None
    return _MODELS[key]


def reset() -> None:
    with _LOCK:
        _MODELS.clear()


def message_cue(user_texts: Sequence[str], level: RiskLevel,
                left: Sequence[Cue] = ()) -> tuple[RiskLevel, Cue] | None:
    """The level the reader asks for and its cue, when that is above `level` and the gate lets it through (`left`:
    the rule cues whose sentences are the rules'); else None. English text only."""
    if level == RiskLevel.IMMINENT:
        return None
    reader = get_reader()
    text = message_text(user_texts)
    if reader is None or not text or not english(text):
        return None
    from mentalens.safety.semantic import get_bank
    from mentalens.safety.sentence_encoder import get_encoder

    enc = get_encoder()
    pooling = str(reader.meta.get("pooling", "window"))
    if pooling not in POOLINGS:
        from mentalens.errors import ModelError

        raise ModelError(f"{model_path()}: unknown pooling {pooling!r}: rebuild it with `mentalens train "
                         "risk-message` or upgrade mentalens")
    probs = reader.probabilities(window_features(enc.encode([read(text, reader.reading)]), [user_texts], pooling, enc,
                                                 reader.reading))
    asked, p = reader.decide(probs)[0]
    if asked <= level:
        return None
    ceiling = window_ceiling(user_texts, left, reader.reading, reader.gate, enc, get_bank())
    if asked.rank > ceiling:  # the heads above the gate's ceiling are off here, as in the threshold search
        import numpy as np

        asked, p = reader.decide(np.where(head_allowed([ceiling]), probs, 0.0))[0]
        if asked <= level:
            return None
    k = HEADS.index(asked)
    last = max(i for i, t in enumerate(user_texts) if t and t.strip())
    n = min(WINDOW, sum(1 for t in user_texts if t and t.strip()))
    head = "imminent" if asked == RiskLevel.IMMINENT else f">= {asked.value}"
    note = (f"message reader over the last {n} message{'s' if n > 1 else ''}: p({head}) {p:.2f} >= threshold "
            f"{reader.thresholds[k]:.2f}")
    msg = user_texts[last]
    return asked, Cue(f"semantic.{asked.value}", msg, 0, len(msg), last, 1.0, note, f"learned-message:{asked.value}")
