"""Leakage-free training and validation data for every analyzer head.

Every source passes through `LeakageGuard` (no post of any IMHI test set is ever trained on) and the
counts it dropped are reported. Where a set has no IMHI training file the head learns from the raw research
data (CAMS, IRF) or from weak labels on other leakage-free posts (T-SID); loneliness has no data at all and
is transferred from the thwarted-belongingness head (see `analyze.train`).

Splits: IMHI train/val where they exist; otherwise a fixed-seed stratified split (or cross-validation,
for MultiWD's 140 leakage-free posts).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mentalens.data import (
    LeakageGuard,
    LeakageReport,
    load_cams_raw,
    load_cssrs,
    load_goemotions,
    load_imhi,
    load_irf_raw,
    normalize_post,
)
from mentalens.tasks import get_task

MULTIWD_ASPECTS = ("spiritual", "physical", "intellectual", "social", "vocational", "emotional")
IRF_ASPECTS = ("thwarted belongingness", "perceived burdensomeness")


@dataclass
class Split:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def add(self, text: str, label: str) -> None:
        self.texts.append(text)
        self.labels.append(label)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class HeadData:
    """Training data of one head: its key in Analysis.tasks, labels, train/val splits and provenance."""

    key: str
    task: str
    aspect: str | None
    labels: tuple[str, ...]
    train: Split
    val: Split
    source: str
    extra_train: Split | None = None  # a second, differently-labelled source (IRF raw labels)
    extra_weights: tuple[float, ...] | None = None  # weights of extra_train rows to choose from (CV)

    def counts(self) -> dict[str, object]:
        return {
            "train": len(self.train),
            "val": len(self.val),
            "train_labels": dict(Counter(self.train.labels)),
            "val_labels": dict(Counter(self.val.labels)),
            "source": self.source,
        }


@dataclass
class TrainingData:
    heads: dict[str, HeadData]
    emotions: dict[str, tuple[list[str], list[tuple[str, ...]]]]
    leakage: dict[str, LeakageReport]
    tsid_weak: HeadData | None = None

    def leakage_summary(self) -> dict[str, dict[str, int]]:
        return {k: {"kept": r.kept, "dropped": r.dropped} for k, r in self.leakage.items()}


def _imhi(data_dir: Path, set_name: str, split: str, guard: LeakageGuard, reports: dict) -> list:
    recs = load_imhi(data_dir / "imhi" if (data_dir / "imhi").is_dir() else data_dir, split=split,
                     fmt="instruction", sets=[set_name])  # fmt: skip
    kept, rep = guard.filter(recs, text=lambda r: r.post, source=f"imhi/{set_name}/{split}")
    reports[f"imhi/{set_name}/{split}"] = rep
    return [r for r in kept if r.label is not None]


def _stratified(items: list, label, frac: float, seed: int) -> tuple[list, list]:
    """Split items into (train, val) with val ~ frac of each label, reproducibly."""
    rng = random.Random(seed)
    by: dict[str, list] = {}
    for it in items:
        by.setdefault(label(it), []).append(it)
    train, val = [], []
    for lab in sorted(by):
        group = by[lab][:]
        rng.shuffle(group)
        n_val = max(1, round(len(group) * frac))
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    return train, val


def build_training_data(data_dir: Path, guard: LeakageGuard | None = None, seed: int = 13) -> TrainingData:
    """Every head's leakage-free data (reads IMHI train/val, raw IRF/CAMS/C-SSRS and GoEmotions)."""
    data_dir = Path(data_dir)
    guard = guard or LeakageGuard.from_data_dir(data_dir)
    reports: dict[str, LeakageReport] = {}
    heads: dict[str, HeadData] = {}

    for set_name in ("DR", "dreaddit", "SAD"):
        task = get_task(set_name)
        tr, va = Split(), Split()
        for r in _imhi(data_dir, set_name, "train", guard, reports):
            tr.add(r.post, r.label)
        for r in _imhi(data_dir, set_name, "val", guard, reports):
            va.add(r.post, r.label)
        heads[task.name] = HeadData(task.name, task.name, None, task.labels, tr, va, f"IMHI {set_name} train/val")

    # CAMS: only the raw set exists for training; it contains every IMHI CAMS test post -> guard.
    cams, rep = guard.filter(load_cams_raw(data_dir), text=lambda r: r.text, source="raw/cams")
    reports["raw/cams"] = rep
    cams = _dedupe(cams, lambda r: r.text)
    ctr, cva = _stratified(cams, lambda r: r.labels["cause"], 0.2, seed)
    task = get_task("CAMS")
    heads["CAMS"] = HeadData(
        "CAMS", "CAMS", None, task.labels,
        Split([r.text for r in ctr], [r.labels["cause"] for r in ctr]),
        Split([r.text for r in cva], [r.labels["cause"] for r in cva]),
        "raw CAMS (leakage-guarded), 80/20 stratified split",
    )  # fmt: skip

    # IRF: IMHI's Irf val labels (the labelling the IMHI test uses) are the validation and main training
    # signal; the raw IRF train file (different labelling) is a second source, weighted by validation.
    irf_val = _imhi(data_dir, "Irf", "val", guard, reports)
    irf_raw, rep = guard.filter(load_irf_raw(data_dir, "train"), text=lambda r: r.text, source="raw/irf/train")
    reports["raw/irf/train"] = rep
    for aspect, col in zip(IRF_ASPECTS, ("belong", "burden"), strict=True):
        va = Split()
        for r in irf_val:
            if r.aspect == aspect:
                va.add(r.post, r.label)
        extra = Split()
        for r in irf_raw:
            extra.add(r.text, "yes" if r.labels[col] else "no")
        key = f"IRF.{aspect}"
        heads[key] = HeadData(key, "IRF", aspect, ("no", "yes"), Split(), va,
                              "IMHI Irf val (cross-validated) + raw IRF train", extra_train=extra)  # fmt: skip

    # MultiWD: IMHI's only file is val.csv; after the guard ~140 posts remain: cross-validated.
    mwd = _imhi(data_dir, "MultiWD", "val", guard, reports)
    for aspect in MULTIWD_ASPECTS:
        va = Split()
        for r in mwd:
            if r.aspect == aspect:
                va.add(r.post, r.label)
        key = f"MultiWD.{aspect}"
        heads[key] = HeadData(key, "MultiWD", aspect, ("no", "yes"), Split(), va, "IMHI MultiWD val (cross-validated)")

    emotions: dict[str, tuple[list[str], list[tuple[str, ...]]]] = {}
    for split in ("train", "dev", "test"):
        recs, rep = guard.filter(load_goemotions(data_dir, split), text=lambda r: r.text, source=f"goemotions/{split}")
        reports[f"goemotions/{split}"] = rep
        emotions[split] = ([r.text for r in recs], [r.labels for r in recs])

    # DR's negatives are posts from other support subreddits: alone they teach the head that any post is
    # probably depressed (a happy race report scored 0.86). Everyday Reddit comments without sad or fearful
    # labels or depression/suicide words join its training folds as "no" with a CV-chosen, non-zero weight.
    rng = random.Random(seed)
    sad = {"sadness", "grief", "disappointment", "remorse", "fear", "nervousness", "embarrassment"}
    everyday = [
        t for t, labs in zip(*emotions["train"], strict=True)
        if not sad & set(labs) and len(t.split()) >= 8 and not _SUICIDE.search(t) and not _DEPRESSION.search(t)
    ]  # fmt: skip
    rng.shuffle(everyday)
    heads["DR"].extra_train = Split(everyday[:1500], ["no"] * min(1500, len(everyday)))
    heads["DR"].extra_weights = (0.1, 0.3, 1.0)
    heads["DR"].source += " + everyday GoEmotions comments as extra negatives"

    tsid = build_tsid_weak(data_dir, guard, reports, heads, emotions, seed)
    return TrainingData(heads, emotions, reports, tsid)


def _dedupe(items: list, text) -> list:
    seen: set[str] = set()
    out = []
    for it in items:
        k = normalize_post(text(it))
        if k and k not in seen:
            seen.add(k)
            out.append(it)
    return out


_DEPRESSION = re.compile(r"\b(?:depress\w*|hopeless\w*|worthless\w*)", re.IGNORECASE)
_DEPRESSION_CUE = re.compile(r"\b(?:depress\w*|antidepressant\w*|mdd|major depressive)\b", re.IGNORECASE)
_PTSD = re.compile(r"\b(?:ptsd|c-?ptsd|post[- ]traumatic|flashbacks?|traumati[sz]ed|trauma)\b", re.IGNORECASE)
_SUICIDE = re.compile(
    r"\b(?:suicid\w*|kill (?:my|him|her)self|end (?:it all|my life)|want to die|self[- ]harm\w*|cutting myself|"
    r"overdos\w*)\b",
    re.IGNORECASE,
)


def build_tsid_weak(
    data_dir: Path,
    guard: LeakageGuard,
    reports: dict,
    heads: dict[str, HeadData],
    emotions: dict[str, tuple[list[str], list[tuple[str, ...]]]],
    seed: int,
    per_class: int = 1500,
    mask_fraction: float = 0.3,
) -> HeadData:
    """Weakly-labelled, leakage-free, tweet-sized texts for T-SID's four classes (no T-SID training data).

    T-SID's tweets were collected by keyword (suicide, depression, PTSD), so each positive class is a
    window of at most two sentences and 280 characters around its cue, cut from any guarded post that has
    it (C-SSRS users' posts, DR, dreaddit, SAD, CAMS, raw IRF, MultiWD, GoEmotions):
    suicide or self-harm: a suicide/self-harm cue (it wins over the others);
    ptsd: a PTSD/trauma cue and no suicide cue;
    depression: a depression cue and neither of the others;
    none: GoEmotions comments and windows of posts labelled not depressed / not stressed, with no cue.
    A `mask_fraction` of the cue windows is added again with the cue words masked, so the head also
    learns the context of what people write, not only the keyword.
    """
    from mentalens.analyze.text import split_sentences

    rng = random.Random(seed)
    users, rep = guard.filter(load_cssrs(data_dir), text=lambda r: r.posts, source="raw/cssrs")
    reports["raw/cssrs"] = rep
    sources: list[str] = [p for u in users for p in u.posts]
    for h in heads.values():
        sources += h.train.texts + h.val.texts + (h.extra_train.texts if h.extra_train else [])
    goemo = list(emotions["train"][0])
    sources += goemo

    def window(text: str, cue: re.Pattern[str]) -> str | None:
        sents = split_sentences(text)
        at = next((i for i, x in enumerate(sents) if cue.search(x.text)), None)
        if at is None:
            return None
        pick = " ".join(x.text for x in sents[max(0, at - 1) : at + 1])
        if len(pick) > 280:  # keep the cue sentence, cut at a word boundary
            pick = sents[at].text
            if len(pick) > 280:
                m = cue.search(pick)
                lo = max(0, (m.start() if m else 0) - 140)
                pick = pick[lo : lo + 280].split(" ", 1)[-1] if lo else pick[:280]
                pick = pick.rsplit(" ", 1)[0]
        return pick

    pools: dict[str, list[str]] = {"none": [], "suicide or self-harm": [], "depression": [], "ptsd": []}
    cues = (("suicide or self-harm", _SUICIDE), ("ptsd", _PTSD), ("depression", _DEPRESSION_CUE))
    for text in dict.fromkeys(sources):
        for label, cue in cues:  # in priority order: the first cue the text has decides its class
            if cue.search(text):
                w = window(text, cue)
                if w:
                    pools[label].append(w)
                break
    negatives = [t for key in ("DR", "dreaddit") for t, lab in zip(heads[key].train.texts, heads[key].train.labels,
                 strict=True) if lab == "no"]  # fmt: skip
    for text in negatives + goemo:
        if any(c.search(text) for _, c in cues):
            continue
        sents = split_sentences(text)
        pick = " ".join(x.text for x in sents[:2])[:280]
        if pick:
            pools["none"].append(pick)

    train, val = Split(), Split()
    for label in sorted(pools):
        items = _dedupe(pools[label], lambda t: t)
        rng.shuffle(items)
        items = items[:per_class]
        n_val = max(1, len(items) // 5)
        for t in items[:n_val]:
            val.add(t, label)
        for t in items[n_val:]:
            train.add(t, label)
        if label != "none":  # masked copies of training windows only (validation stays as written)
            cue = dict(cues)[label]
            for t in items[n_val:][: int(mask_fraction * (len(items) - n_val))]:
                train.add(cue.sub("[MASK]", t), label)
    task = get_task("T-SID")
    return HeadData("T-SID", "T-SID", None, task.labels, train, val,
                    "weak labels: cue-centred tweet-sized windows of other leakage-free data (C-SSRS, DR, "
                    "dreaddit, SAD, CAMS, IRF, MultiWD, GoEmotions), 30% of cue windows also with the cue "
                    "masked")  # fmt: skip


__all__ = ["IRF_ASPECTS", "MULTIWD_ASPECTS", "HeadData", "Split", "TrainingData", "build_training_data"]
