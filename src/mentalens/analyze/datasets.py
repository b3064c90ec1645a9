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
) -> HeadData:
    """Weakly-labelled, leakage-free posts for T-SID's four classes (no T-SID training data exists here).

    suicide or self-harm: C-SSRS posts of users at Ideation/Behavior/Attempt that mention suicide/self-harm;
    depression: DR posts labelled depressed that mention neither suicide nor trauma;
    ptsd: posts of any guarded set that mention PTSD/trauma (mostly dreaddit's r/ptsd posts);
    none: GoEmotions comments and DR/dreaddit posts labelled not depressed / not stressed.
    Long posts are cut to their first 3 sentences: T-SID texts are tweets.
    """
    from mentalens.analyze.text import split_sentences

    rng = random.Random(seed)
    pools: dict[str, list[str]] = {"none": [], "suicide or self-harm": [], "depression": [], "ptsd": []}
    users, rep = guard.filter(load_cssrs(data_dir), text=lambda r: r.posts, source="raw/cssrs")
    reports["raw/cssrs"] = rep
    for u in users:
        if u.labels["cssrs"] in ("Ideation", "Behavior", "Attempt"):
            pools["suicide or self-harm"].extend(p for p in u.posts if _SUICIDE.search(p))
    dr, dd = heads["DR"], heads["dreaddit"]
    for text, lab in zip(dr.train.texts, dr.train.labels, strict=True):
        if lab == "yes" and not _SUICIDE.search(text) and not _PTSD.search(text):
            pools["depression"].append(text)
        elif lab == "no":
            pools["none"].append(text)
    for text, lab in zip(dd.train.texts, dd.train.labels, strict=True):
        if lab == "no" and not _PTSD.search(text):
            pools["none"].append(text)
    for h in (dd, heads["CAMS"], heads["SAD"]):
        pools["ptsd"].extend(t for t in h.train.texts if _PTSD.search(t))
    pools["ptsd"].extend(t for t, _ in zip(*emotions["train"], strict=True) if _PTSD.search(t))
    goemo = [t for t, _ in zip(*emotions["train"], strict=True) if not _PTSD.search(t) and not _SUICIDE.search(t)]
    rng.shuffle(goemo)
    pools["none"].extend(goemo[:per_class])

    cue = {"ptsd": _PTSD, "suicide or self-harm": _SUICIDE}

    def short(text: str, label: str) -> str:
        """Up to 3 sentences: around the first cue for cue-labelled classes, else the first three."""
        sents = split_sentences(text)
        if not sents:
            return text
        at = 0
        if label in cue:
            at = next((i for i, s in enumerate(sents) if cue[label].search(s.text)), 0)
            at = max(0, at - 1)
        return " ".join(s.text for s in sents[at : at + 3])

    train, val = Split(), Split()
    for label in sorted(pools):
        items = _dedupe(pools[label], lambda t: t)
        rng.shuffle(items)
        items = [short(t, label) for t in items[:per_class]]
        n_val = max(1, len(items) // 5)
        for t in items[:n_val]:
            val.add(t, label)
        for t in items[n_val:]:
            train.add(t, label)
    task = get_task("T-SID")
    return HeadData("T-SID", "T-SID", None, task.labels, train, val,
                    "weak labels on other leakage-free data (C-SSRS, DR, dreaddit, CAMS, GoEmotions)")  # fmt: skip


__all__ = ["IRF_ASPECTS", "MULTIWD_ASPECTS", "HeadData", "Split", "TrainingData", "build_training_data"]
