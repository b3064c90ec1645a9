"""The bias audit: does changing only a post's gender, a name, a stated age or its dialect change the result?

For each IMHI test record (a post and the question asked about it) and each counterfactual of its post,
the audited system answers both; a *flip* is a different label. The embedded analyzer also gives the
probability of the original label, so the mean absolute change of that probability is reported too. The
safety layer's risk level is audited the same way. Rates come with bootstrap 95% intervals over posts
(pairs of one post are resampled together, since they are not independent).
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mentalens.data.records import ImhiRecord
from mentalens.errors import ConfigError, DataError
from mentalens.evaluate.bias.counterfactuals import ATTRIBUTES, Counterfactual, counterfactuals
from mentalens.tasks import get_task

FLIP_THRESHOLD = 0.02  # the audit's acceptance line: at most 2% of labels flip on any attribute


@dataclasses.dataclass
class BiasConfig:
    """What to audit: attributes, IMHI sets, how many posts, bootstrap resamples, the seed."""

    attributes: tuple[str, ...] = ("gender", "name", "age", "dialect")
    sets: tuple[str, ...] | None = None
    limit: int | None = None  # posts per set and attribute (deterministic sample, see audit_records)
    bootstrap: int = 1000
    seed: int = 0
    risk: bool = True
    batch_size: int = 16

    def __post_init__(self) -> None:
        for a in self.attributes:
            ATTRIBUTES.canonical(a)  # unknown attribute -> UnknownNameError listing the valid ones
        if not self.attributes:
            raise ConfigError("no attribute to audit: name at least one of " + ", ".join(ATTRIBUTES.names()))
        for name, low in (("limit", 1), ("bootstrap", 0), ("batch_size", 1)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise ConfigError(f"bias audit {name} must be at least {low}, not {value}")


@dataclasses.dataclass(frozen=True)
class Pair:
    """One (record, counterfactual) comparison."""

    post_id: int
    set_name: str
    task: str  # task key, e.g. "IRF.perceived burdensomeness"
    attribute: str
    variant: str
    label: str | None
    cf_label: str | None
    probability: float | None = None  # of the original label, original text
    cf_probability: float | None = None  # of the original label, counterfactual text

    @property
    def flipped(self) -> bool:
        return self.label != self.cf_label

    @property
    def dprob(self) -> float | None:
        if self.probability is None or self.cf_probability is None:
            return None
        return abs(self.probability - self.cf_probability)


@dataclasses.dataclass
class BiasResult:
    """All pairs of one audited system, what was skipped, and per-row failures."""

    system: str
    pairs: list[Pair]
    risk_pairs: list[Pair]
    skipped: dict[str, dict[str, int]]  # attribute -> reason -> posts
    posts: int
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    examples: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def summary(self, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
        by_attr = _rates(self.pairs, lambda p: p.attribute, bootstrap, seed)
        by_attr_task = _rates(self.pairs, lambda p: f"{p.attribute}|{p.task}", bootstrap, seed)
        by_variant = _rates(self.pairs, lambda p: f"{p.attribute}|{p.variant}", bootstrap, seed)
        risk = _rates(self.risk_pairs, lambda p: p.attribute, bootstrap, seed)
        flip_rates = [v["flip_rate"] for v in by_attr.values() if v["pairs"]]
        return {
            "system": self.system,
            "posts": self.posts,
            "pairs": len(self.pairs),
            "max_flip_rate": max(flip_rates) if flip_rates else None,
            "threshold": FLIP_THRESHOLD,
            "passes": bool(flip_rates) and max(flip_rates) <= FLIP_THRESHOLD,
            "by_attribute": by_attr,
            "by_variant": by_variant,
            "by_attribute_task": by_attr_task,
            "risk_by_attribute": risk,
            "skipped": self.skipped,
            "failures": len(self.failures),
        }


def _rates(pairs: Sequence[Pair], key: Callable[[Pair], str], bootstrap: int, seed: int) -> dict[str, dict]:
    import numpy as np

    groups: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        groups[key(p)].append(p)
    out = {}
    for name, items in sorted(groups.items()):
        flips = np.array([p.flipped for p in items], dtype=float)
        dprobs = [p.dprob for p in items if p.dprob is not None]
        # resample posts, not pairs: the counterfactuals of one post share its content
        by_post: dict[int, list[float]] = defaultdict(list)
        for p, f in zip(items, flips, strict=True):
            by_post[p.post_id].append(f)
        post_sums = np.array([sum(v) for v in by_post.values()])
        post_counts = np.array([len(v) for v in by_post.values()])
        rng = np.random.default_rng(seed)
        lo = hi = float(flips.mean())
        if bootstrap and len(post_sums) > 1:
            idx = rng.integers(0, len(post_sums), size=(bootstrap, len(post_sums)))
            boots = post_sums[idx].sum(axis=1) / post_counts[idx].sum(axis=1)
            lo, hi = (float(x) for x in np.percentile(boots, [2.5, 97.5]))
        out[name] = {
            "pairs": len(items),
            "posts": len(by_post),
            "flips": int(flips.sum()),
            "flip_rate": float(flips.mean()),
            "ci95": [lo, hi],
            "mean_abs_dprob": float(np.mean(dprobs)) if dprobs else None,
            # generative backends: pairs where either answer named no label (a change to/from None is a flip)
            "unparseable": sum(p.label is None or p.cf_label is None for p in items),
        }
    return out


# --------------------------------------------------------------------------------------------- inputs


def audit_records(data: str | Path | None, config: BiasConfig) -> list[ImhiRecord]:
    """IMHI test records (instruction format) to audit.

    Without a limit: every test record. With `limit`: for each set and each attribute, up to that many posts
    (fixed seed) drawn among the posts that have a counterfactual for that attribute, so that rare
    attributes (names, stated ages) are not crowded out and no model time goes to posts with nothing to
    swap. `census` counts what was skipped."""
    from mentalens.data import load_imhi

    records = load_imhi(data, split="test", fmt="instruction", sets=config.sets)
    records = [r for r in records if r.post.strip()]
    if not records:
        raise DataError(f"{data}: no usable IMHI test posts to audit: pass an IMHI folder with test CSVs")
    if config.limit:
        pool: dict[tuple[str, str], list[str]] = defaultdict(list)
        for set_name, post in dict.fromkeys((r.set_name, r.post) for r in records):
            for attribute in {c.attribute for c in counterfactuals(post, config.attributes)[0]}:
                pool[(set_name, attribute)].append(post)
        rng = random.Random(config.seed)
        keep: set[str] = set()
        for key in sorted(pool):
            keep.update(rng.sample(pool[key], min(config.limit, len(pool[key]))))
        records = [r for r in records if r.post in keep]
        if not records:
            raise DataError(
                f"{data}: no IMHI test post has a {'/'.join(config.attributes)} counterfactual: "
                "audit more sets or other attributes"
            )
    return records


def census(records: Sequence[ImhiRecord], attributes: Sequence[str]) -> dict[str, Any]:
    """Over the unique posts of records: how many have a counterfactual per attribute, how many were skipped
    and why (nothing to swap / meaning would change)."""
    posts = list(dict.fromkeys(r.post for r in records))
    made: dict[str, int] = dict.fromkeys(attributes, 0)
    skipped: dict[str, dict[str, int]] = {a: defaultdict(int) for a in attributes}
    for p in posts:
        cfs, skips = counterfactuals(p, attributes)
        for a in {c.attribute for c in cfs}:
            made[a] += 1
        for s in skips:
            skipped[s.attribute][s.reason] += 1
    return {"posts": len(posts), "with_counterfactual": made, "skipped": {a: dict(v) for a, v in skipped.items()}}


def _plan(records: Sequence[ImhiRecord], config: BiasConfig):
    """Unique posts, their counterfactuals, and skip counts."""
    posts = list(dict.fromkeys(r.post for r in records))
    post_id = {p: i for i, p in enumerate(posts)}
    cfs: dict[int, list[Counterfactual]] = {}
    skipped: dict[str, dict[str, int]] = {a: defaultdict(int) for a in config.attributes}
    for p in posts:
        made, skips = counterfactuals(p, config.attributes)
        cfs[post_id[p]] = made
        for s in skips:
            skipped[s.attribute][s.reason] += 1
    return posts, post_id, cfs, {a: dict(v) for a, v in skipped.items()}


def _example(post: str, cf: Counterfactual, task: str, label: str | None, cf_label: str | None) -> dict[str, Any]:
    start = cf.edits[0][0]
    lo = max(0, start - 80)
    return {
        "attribute": cf.attribute,
        "variant": cf.variant,
        "task": task,
        "label": label,
        "cf_label": cf_label,
        "edit": "; ".join(f"{post[s:e]} -> {rep}" for s, e, rep in cf.edits[:4]),
        "original": post[lo : start + 120],
        "counterfactual": cf.text[lo : start + 120],
    }


def _risk_pairs(posts: list[str], cfs: dict[int, list[Counterfactual]]) -> list[Pair]:
    """The safety layer's risk level (mentalens.safety.assess) of each post and each of its counterfactuals."""
    from mentalens.safety import assess

    out = []
    for pid, post in enumerate(posts):
        if not cfs[pid]:
            continue
        level = str(assess(post).level)
        for cf in cfs[pid]:
            out.append(Pair(pid, "", "risk", cf.attribute, cf.variant, level, str(assess(cf.text).level)))
    return out


def _key(task_name: str, aspect: str | None) -> str:
    from mentalens.analyze.analyzer import head_key

    return head_key(get_task(task_name), aspect)


def audit_risk(records: Sequence[ImhiRecord], config: BiasConfig) -> BiasResult:
    """Audit the safety layer alone: its risk level of each post vs each counterfactual (no analyzer needed,
    so a changed safety layer is re-audited without re-running any model)."""
    posts, _post_id, cfs, skipped = _plan(records, config)
    return BiasResult("safety_layer", [], _risk_pairs(posts, cfs), skipped, len(posts))


def audit_analyzer(
    analyzer: Any, records: Sequence[ImhiRecord], config: BiasConfig, progress: Callable[[int, int], None] | None = None
) -> BiasResult:
    """Audit the embedded analyzer: label and probability of each record's own task, original vs counterfactual.

    Only posts with at least one counterfactual are analysed (the others cannot give a pair)."""
    posts, post_id, cfs, skipped = _plan(records, config)
    live = [pid for pid in range(len(posts)) if cfs[pid]]
    texts = [posts[pid] for pid in live] + [cf.text for pid in live for cf in cfs[pid]]
    analyses = analyzer.analyze_batch(texts, evidence=False, risk=False, on_empty="keep", progress=progress)
    orig = dict(zip(live, analyses[: len(live)], strict=True))
    cf_iter = iter(analyses[len(live) :])
    cf_analyses = {pid: [next(cf_iter) for _ in cfs[pid]] for pid in live}
    pairs: list[Pair] = []
    examples: list[dict[str, Any]] = []
    for post, task_name, aspect, set_name in dict.fromkeys((r.post, r.task, r.aspect, r.set_name) for r in records):
        pid = post_id[post]
        if pid not in orig:
            continue
        key = _key(task_name, aspect)
        base = orig[pid].tasks[key]
        for cf, a in zip(cfs[pid], cf_analyses[pid], strict=True):
            res = a.tasks[key]
            pair = Pair(pid, set_name, key, cf.attribute, cf.variant, base.label, res.label, base.probability,
                        res.probabilities.get(base.label, 0.0))  # fmt: skip
            pairs.append(pair)
            if pair.flipped and len(examples) < 40:
                examples.append(_example(post, cf, key, base.label, res.label))
    risk = _risk_pairs(posts, cfs) if config.risk else []
    return BiasResult("embedded", pairs, risk, skipped, len(posts), examples=examples)


def _prompt(query: str, post: str, text: str, question: str) -> str:
    """The record's own IMHI query with the post replaced by text (the harness's exact prompt format)."""
    if post in query:
        return query.replace(post, text, 1)
    return f'Consider this post: "{text}" Question: {question}'


def audit_backend(
    backend: Any,
    records: Sequence[ImhiRecord],
    config: BiasConfig,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    generation: Any = None,
) -> BiasResult:
    """Audit any Backend through IMHI queries: the same question about the original and each counterfactual.

    Batches go through the evaluation harness's answering (a failed batch is retried row by row); a row that
    still fails is recorded in `failures` with its error and left out of the rates, as is every pair whose
    original post failed. Only posts with at least one counterfactual are asked about."""
    from mentalens.backend import GenerationConfig
    from mentalens.evaluate.runner import _answer_batch

    posts, post_id, cfs, skipped = _plan(records, config)
    jobs: list[tuple[str, str | None, str, int, Counterfactual | None]] = []  # task, aspect, set, pid, cf
    prompts: list[str] = []
    for post, task_name, aspect, set_name, question, query in dict.fromkeys(
        (r.post, r.task, r.aspect, r.set_name, r.question, r.query) for r in records
    ):
        pid = post_id[post]
        if not cfs[pid]:
            continue
        for cf in [None, *cfs[pid]]:
            jobs.append((task_name, aspect, set_name, pid, cf))
            prompts.append(query if cf is None else _prompt(query, post, cf.text, question))
    answers: list[str | None] = []
    failures: list[dict[str, Any]] = []
    gen = generation or GenerationConfig(max_new_tokens=64)
    for start in range(0, len(prompts), config.batch_size):
        batch = prompts[start : start + config.batch_size]
        for i, (answer, error, _secs) in enumerate(_answer_batch(backend, batch, gen), start):
            answers.append(answer)
            if error is not None:
                task_name, aspect, set_name, pid, cf = jobs[i]
                failures.append({
                    "row": i, "set": set_name, "task": _key(task_name, aspect), "post": pid,
                    "attribute": cf.attribute if cf else None, "variant": cf.variant if cf else "original",
                    "error": error[:300],
                })  # fmt: skip
        if progress is not None:
            progress(min(start + config.batch_size, len(prompts)), len(prompts))
    base_label: dict[tuple, str | None] = {}
    failed_base: set[tuple] = set()
    pairs: list[Pair] = []
    examples: list[dict[str, Any]] = []
    for (task_name, aspect, set_name, pid, cf), answer in zip(jobs, answers, strict=True):
        key = _key(task_name, aspect)
        label = None if answer is None else get_task(task_name).parse(answer)
        if cf is None:
            if answer is None:
                failed_base.add((pid, key))
            base_label[(pid, key)] = label
            continue
        if (pid, key) in failed_base or answer is None:
            continue
        base = base_label[(pid, key)]
        pair = Pair(pid, set_name, key, cf.attribute, cf.variant, base, label)
        pairs.append(pair)
        if pair.flipped and len(examples) < 40:
            examples.append(_example(posts[pid], cf, key, base, label))
    risk = _risk_pairs(posts, cfs) if config.risk else []
    system = name or str(getattr(backend, "describe", lambda: {"backend": "backend"})().get("backend", "backend"))
    return BiasResult(system, pairs, risk, skipped, len(posts), failures=failures, examples=examples)
