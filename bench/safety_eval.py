"""Safety-layer evaluation: the hand-labelled set (bench/data/safety_eval.jsonl) and C-SSRS Reddit users.

    python bench/safety_eval.py            # prints tables, writes bench/results/safety_eval.{json,html}

Labelled set: 276 messages/conversations written by the safety developer BEFORE the rules (explicit and
indirect statements at every level, misspellings, slang, Spanish, multi-turn, flags, 105 benign look-alikes).
Every third item of each category is the dev split the rules were tuned on; the headline figures are on the
test split. Goals (issue 7): recall of high/imminent 100%, of moderate-or-above >= 97%, false alarms on benign
look-alikes <= 5%.

Challenge split (88 items): written AFTER the rules were frozen, to estimate how the rules generalise. Its first
run (before any change) gave recall high/imminent 0.417, moderate+ 0.486 and benign false alarms 0.200; the
lexicon was then extended for the gaps it exposed, so its current figures are no longer held-out. Likewise the
first run on the test split gave 1.000 / 1.000 / 0.057 (0.043 rules only) before four rule bugs it exposed were
fixed. Challenge2 (57 items) was written after that second freeze; its first run gave 0.438 / 0.560 / 0.040
before its gaps were fixed too. The first-run figures (test 1.000/1.000/0.057, challenge 0.417/0.486/0.200,
challenge2 0.438/0.560/0.040) are the honest estimate on unseen phrasing: the lexicon generalises to roughly half
of new moderate-or-higher statements, so the current figures below are tuning figures, not held-out ones.

Challenge4 (140 items) and dev2 (402 items in four batches), issue 7's generalisation round: challenge4 was
written from the C-SSRS constructs and committed ALONE before any change, run once (system: high+ 0.240,
moderate+ 0.413, benign false alarms 0.065), and never tuned on; dev2 was written after it, independently, and is
(with dev) the only split the new lexicon constructs, prototypes and the semantic threshold were fitted to.
challenge3 and challenge4 are the held-out splits; no per-item result of either was read.

Challenge5 (150 items: 20 imminent, 30 high, 25 moderate, 15 low, 4 flag-only, 56 benign look-alikes "c5_benign";
Spanish, slang/misspellings, multi-turn, flags) was written for issue 7's next generalisation round by a helper
who never saw challenge3/4 (nor any per-item result), from the C-SSRS level definitions in docs/safety.md, and
committed ALONE (23ba6ef), frozen before any change to the safety code; its first run (the code at a892df5):
system high+ 0.320, moderate+ 0.440, any risk 0.500, benign false alarms 0.071 (rules + classifier 0.260 / 0.373 /
0.422 / 0.071), recorded below. It is held out: never tune on it.
Dev3 (300 items, the same mix: 40 imminent, 60 high, 50 moderate, 30 low, 8 flag-only, 112 benign look-alikes
"dev3_benign") is a new TUNING split written by the same helper AFTER challenge5 was committed, independently
of it (different wording and scenarios), frozen (c32145f) before any change and run once with the same code:
system 0.370 / 0.453 / 0.456 / 0.062, rules + classifier 0.330 / 0.407 / 0.406 / 0.062. Whether the semantic layer
tunes on it (semantic.TUNE_SPLITS) is the tuner's decision.

C-SSRS (Gaur et al., 500 users, one label per user): a secondary, noisier check. Supportive/Indicator ->
none/low, Ideation -> moderate, Behavior/Attempt -> high. The classifier was trained on 70% of the users;
figures with the classifier are on the other 30% only; rules-only figures are on all 500.
"""

from __future__ import annotations

import html
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("MENTALENS_DATA", str(REPO.parent / "shared" / "data"))

from mentalens.safety import RiskLevel, assess, semantic  # noqa: E402
from mentalens.safety.classifier import cssrs_split, get_classifier  # noqa: E402

LEVELS = [lvl.value for lvl in RiskLevel]
RANK = {v: i for i, v in enumerate(LEVELS)}
CORE_FLAGS = ("harm_to_others", "abuse", "medical_emergency", "others_at_risk")
CSSRS_MAP = {"Supportive": "none", "Indicator": "low", "Ideation": "moderate", "Behavior": "high", "Attempt": "high"}
DATA = REPO / "bench" / "data" / "safety_eval.jsonl"
SPLITS = ("test", "challenge", "challenge2", "challenge3", "challenge4", "challenge5", "dev", "dev2", "dev3",
          "dev4", "dev5", "dev6", "dev7", "dev8", "dev9", "dev10", "train1", "train2", "train3", "train4", "train5",
          "train6", "dev11", "dev12", "dev13", "dev14", "dev15",
          "dev16", "train7", "dev17", "dev18", "dev19", "dev20", "dev21", "dev22", "dev23", "dev24", "dev25", "dev26",
          "dev27", "dev28", "dev29", "dev30", "dev31", "dev32", "dev33", "dev34", "dev35", "dev36", "dev37", "dev38",
          "dev39", "dev40", "dev41", "dev42", "dev43", "dev44", "dev45", "dev46", "dev47", "dev48",
          "dev49", "dev50", "dev51", "dev52", "dev53", "dev54", "dev55", "dev56", "dev57", "dev58", "dev59", "dev60",
          "dev61", "dev62", "dev63", "dev64", "dev65", "dev66", "dev67",
          "dev68", "dev69", "dev70", "dev71", "dev72", "dev73", "dev74", "dev75", "dev76", "all")
# splits written blind and not yet read by anyone (a coming round's validation splits): this bench neither assesses
# nor counts them until the round that reads them moves them into SPLITS (dev9/dev10 were read in rounds 11-12,
# dev11/dev12 in round 13, dev13/dev14 in round 14, dev15/dev16 in round 15, dev17/dev18 in round 16, dev19/dev20
# in round 17, dev21/dev22 in round 18, dev23/dev24 in round 19, dev25/dev26 in round 20, dev27/dev28 in round 21,
# dev29/dev30 in round 22, dev31/dev32 in round 23, dev33/dev34 in round 24, dev35/dev36 in round 25, dev37/dev38
# in round 26, dev39/dev40 in round 27, dev41/dev42 in round 28, dev43/dev44 in round 29, dev45/dev46 in round 30,
# dev47/dev48 in round 31, dev49/dev50 in round 32, dev51/dev52 in round 33, dev53/dev54 in round 34,
# dev55/dev56 in round 35, dev57/dev58 in round 36, dev59/dev60 in round 37, dev61/dev62 in round 38,
# dev63/dev64 in round 39, dev65/dev66 in round 40, dev67/dev68 in round 41, dev69/dev70 in round 42,
# dev71/dev72 in round 43, dev73/dev74 in round 44, dev75/dev76 in round 45)
UNREAD: tuple[str, ...] = ()
KINDS = ("system", "rules_classifier", "rules_only")  # system = rules + classifier + semantic layer
OUT = REPO / "bench" / "results"


def confusion(pairs: list[tuple[str, str]]) -> dict[str, dict[str, int]]:
    c = Counter(pairs)
    return {g: {p: c[(g, p)] for p in LEVELS} for g in LEVELS}


def ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def labelled_metrics(rows: list[dict], preds: dict[str, object]) -> dict:
    pairs = [(r["level"], preds[r["id"]].level.value) for r in rows]
    hi = [(g, p) for g, p in pairs if g in ("high", "imminent")]
    mod = [(g, p) for g, p in pairs if RANK[g] >= RANK["moderate"]]
    imm = [(g, p) for g, p in pairs if g == "imminent"]
    benign = [r for r in rows if semantic.is_lookalike(r["category"])]
    alarms = [r for r in benign if preds[r["id"]].requires_escalation]
    risk = [r for r in rows if r["level"] != "none"]
    flags = {}
    for f in CORE_FLAGS:
        tp = sum(1 for r in rows if r["flags"][f] and preds[r["id"]].flags[f])
        fn = sum(1 for r in rows if r["flags"][f] and not preds[r["id"]].flags[f])
        fp = sum(1 for r in rows if not r["flags"][f] and preds[r["id"]].flags[f])
        flags[f] = {"gold": tp + fn, "recall": ratio(tp, tp + fn), "false_positives": fp}
    by_cat = {}
    for cat in sorted({r["category"] for r in rows}):
        rs = [r for r in rows if r["category"] == cat]
        by_cat[cat] = {"n": len(rs), "exact_level": ratio(sum(preds[r["id"]].level.value == r["level"] for r in rs),
                                                          len(rs))}
    return {
        "n": len(rows),
        "benign_lookalikes": len(benign),
        "recall_high_imminent": ratio(sum(RANK[p] >= RANK["high"] for _, p in hi), len(hi)),
        "recall_moderate_plus": ratio(sum(RANK[p] >= RANK["moderate"] for _, p in mod), len(mod)),
        "recall_imminent_exact": ratio(sum(p == "imminent" for _, p in imm), len(imm)),
        "recall_any_risk": ratio(sum(RANK[preds[r["id"]].level.value] >= 1 for r in risk), len(risk)),
        "benign_false_alarm_rate": ratio(len(alarms), len(benign)),
        "benign_false_alarms": [r["id"] for r in alarms],
        "exact_level_accuracy": ratio(sum(g == p for g, p in pairs), len(pairs)),
        "under_triage": ratio(sum(RANK[p] < RANK[g] for g, p in pairs), len(pairs)),
        "over_triage": ratio(sum(RANK[p] > RANK[g] for g, p in pairs), len(pairs)),
        "misses": [{"id": r["id"], "gold": r["level"], "pred": preds[r["id"]].level.value} for r in rows
                   if RANK[preds[r["id"]].level.value] < RANK[r["level"]]],
        "flags": flags,
        "by_category": by_cat,
        "confusion": confusion(pairs),
    }


def cssrs_metrics(users: list, preds: dict[str, object]) -> dict:
    pairs = [(CSSRS_MAP[u.labels["cssrs"]], preds[u.id].level.value) for u in users]
    orig = Counter((u.labels["cssrs"], preds[u.id].level.value) for u in users)
    pos = [u for u in users if u.labels["cssrs"] in ("Ideation", "Behavior", "Attempt")]
    beh = [u for u in users if u.labels["cssrs"] in ("Behavior", "Attempt")]
    at_risk = [u for u in users if u.labels["cssrs"] != "Supportive"]
    sup = [u for u in users if u.labels["cssrs"] == "Supportive"]
    out = {
        "users": len(users),
        "recall_moderate_plus": ratio(sum(RANK[preds[u.id].level.value] >= 2 for u in pos), len(pos)),
        "recall_high_plus_behavior_attempt": ratio(sum(RANK[preds[u.id].level.value] >= 3 for u in beh), len(beh)),
        "recall_any_risk_non_supportive": ratio(sum(preds[u.id].requires_escalation for u in at_risk), len(at_risk)),
        "supportive_flagged_rate": ratio(sum(preds[u.id].requires_escalation for u in sup), len(sup)),
        "exact_mapped_level": ratio(sum(g == p for g, p in pairs), len(pairs)),
        "confusion_mapped": confusion(pairs),
        "confusion_by_cssrs_label": {lab: {p: orig[(lab, p)] for p in LEVELS} for lab in CSSRS_MAP},
    }
    probs = [(preds[u.id].classifier_probability, u.labels["cssrs"] != "Supportive") for u in users]
    if all(p is not None for p, _ in probs) and len({y for _, y in probs}) == 2:
        from sklearn.metrics import roc_auc_score

        out["classifier_auc_non_supportive"] = round(float(roc_auc_score([y for _, y in probs],
                                                                         [p for p, _ in probs])), 4)
    return out


def print_confusion(title: str, conf: dict[str, dict[str, int]], rows_label: str = "gold") -> None:
    print(f"\n{title}")
    corner = rows_label + " / pred"
    print(f"  {corner:>18s} " + " ".join(f"{p:>9s}" for p in LEVELS))
    for g, row in conf.items():
        if any(row.values()):
            print(f"  {g:>18s} " + " ".join(f"{row[p]:>9d}" for p in LEVELS))


def html_report(result: dict) -> str:
    def table(conf: dict, label: str) -> str:
        head = "".join(f"<th>{p}</th>" for p in LEVELS)
        body = ""
        for g, row in conf.items():
            if not any(row.values()):
                continue
            cells = ""
            for p in LEVELS:
                v = row[p]
                shade = "#d4edda" if g == p else ("#f8d7da" if RANK.get(p, 0) < RANK.get(g, 0) else "#fff3cd")
                cells += f"<td style='background:{shade if v else '#fff'}'>{v}</td>"
            body += f"<tr><th>{html.escape(g)}</th>{cells}</tr>"
        return f"<table border=1 cellpadding=4><tr><th>{label} \\ predicted</th>{head}</tr>{body}</table>"

    parts = ["<html><head><meta charset='utf-8'><title>mentalens safety evaluation</title></head><body>",
             "<h1>mentalens safety evaluation</h1>",
             "<p>Rows: gold level; columns: predicted. Green: exact; red: under-triage; yellow: over-triage.</p>"]
    keys = ("recall_high_imminent", "recall_moderate_plus", "benign_false_alarm_rate", "exact_level_accuracy")
    parts.append("<h2>Side by side (system = rules + classifier + semantic layer)</h2><table border=1 cellpadding=4>"
                 "<tr><th>split</th><th>system</th>" + "".join(f"<th>{k}</th>" for k in keys) + "</tr>")
    for split in sorted(SPLITS[:-1], key=lambda sp: not sp.startswith("dev")):  # tuning splits first
        for kind in KINDS:
            m = result["labelled"][split][kind]
            parts.append(f"<tr><td>{split}</td><td>{kind}</td>" + "".join(f"<td>{m[k]}</td>" for k in keys) + "</tr>")
    parts.append("</table>")
    for split in SPLITS[:-1]:
        m = result["labelled"][split]["system"]
        parts.append(f"<h2>Labelled set, {split} split (n={m['n']})</h2>")
        parts.append("<ul>" + "".join(f"<li>{k}: {m[k]}</li>" for k in keys) + "</ul>")
        parts.append(table(m["confusion"], "gold"))
    for key in ("cssrs_heldout_system", "cssrs_all_rules"):
        m = result[key]
        parts.append(f"<h2>C-SSRS: {key} (users={m['users']})</h2>")
        parts.append(table(m["confusion_by_cssrs_label"], "C-SSRS label"))
    parts.append("</body></html>")
    return "\n".join(parts)


def main() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] not in UNREAD]
    unknown = sorted({r["split"] for r in rows} - set(SPLITS))
    if unknown:
        raise SystemExit(f"{DATA}: splits {unknown} are neither in SPLITS nor UNREAD: add each to one of them")
    clf = get_classifier()
    bank = semantic.get_bank()
    result: dict = {"labelled": {}, "classifier_present": clf is not None,
                    "semantic_bank": {"prototypes": len(bank.ids), "threshold": bank.threshold,
                                      "margin": bank.margin, "tuned_on": bank.meta.get("tuned_on"),
                                      "dropped_near_duplicates_of_held_out":
                                          len(bank.meta.get("dropped_near_duplicates_of_held_out", []))}}
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    preds: dict[str, dict[str, object]] = {k: {} for k in KINDS}
    opts = {"system": {"semantic": True}, "rules_classifier": {"semantic": False},
            "rules_only": {"use_classifier": False, "semantic": False}}
    semantic.get_bank()
    assess("warm up the encoder", semantic=True)
    from tqdm import tqdm

    # tqdm writes to stderr at most every 30 s, so a log of a 45-minute read shows where it is
    for r in tqdm(rows, desc="labelled items", unit="item", mininterval=30):
        for kind in KINDS:
            t0 = time.perf_counter()
            preds[kind][r["id"]] = assess(r["messages"], **opts[kind])
            times[kind].append(time.perf_counter() - t0)
    for split in SPLITS:
        rs = [r for r in rows if split == "all" or r["split"] == split]
        result["labelled"][split] = {kind: labelled_metrics(rs, preds[kind]) for kind in KINDS}
    result["latency_ms_per_item"] = {
        "rules_only_median": round(statistics.median(times["rules_only"]) * 1000, 3),
        "with_classifier_median": round(statistics.median(times["rules_classifier"]) * 1000, 3),
        "with_classifier_and_semantic_median": round(statistics.median(times["system"]) * 1000, 3),
        "with_classifier_and_semantic_p95": round(sorted(times["system"])[int(0.95 * len(rows))] * 1000, 3),
        "note": "2 shared CPU cores under load from other jobs; the encoder's first load is not included",
    }
    raised = [r["id"] for r in rows if preds["system"][r["id"]].level > preds["rules_classifier"][r["id"]].level]
    result["semantic_raised_items"] = {sp: sum(1 for r in rows if r["id"] in set(raised) and r["split"] == sp)
                                       for sp in SPLITS[:-1]}

    from mentalens.data import load_cssrs

    users = load_cssrs()
    c_rules, c_sys = {}, {}
    t0 = time.perf_counter()
    for u in tqdm(users, desc="C-SSRS users, rules", unit="user", mininterval=30):
        c_rules[u.id] = assess(list(u.posts), use_classifier=False)
    t_cssrs = time.perf_counter() - t0
    held = [u for u in users if cssrs_split(u.id) == "test"]
    for u in held:
        c_sys[u.id] = assess(list(u.posts), semantic=True)
    result["cssrs_all_rules"] = cssrs_metrics(users, c_rules)
    result["cssrs_heldout_rules"] = cssrs_metrics(held, c_rules)
    result["cssrs_heldout_system"] = cssrs_metrics(held, c_sys)
    result["cssrs_seconds_rules_all_users"] = round(t_cssrs, 2)

    test = result["labelled"]["test"]["system"]
    result["headline"] = {
        "split": "test",
        "n": test["n"],
        "recall_high_imminent": test["recall_high_imminent"],
        "recall_moderate_plus": test["recall_moderate_plus"],
        "benign_false_alarm_rate": test["benign_false_alarm_rate"],
        "goals": {"recall_high_imminent": 1.0, "recall_moderate_plus": 0.97, "benign_false_alarm_rate_max": 0.05},
        "cssrs_heldout_recall_moderate_plus": result["cssrs_heldout_system"]["recall_moderate_plus"],
        "cssrs_heldout_recall_any_risk": result["cssrs_heldout_system"]["recall_any_risk_non_supportive"],
        "cssrs_heldout_supportive_flagged": result["cssrs_heldout_system"]["supportive_flagged_rate"],
        "cssrs_all_rules_recall_moderate_plus": result["cssrs_all_rules"]["recall_moderate_plus"],
        # recorded, not re-measured: each split's FIRST run, before the rule fixes its failures prompted
        # (see the module docstring); the honest estimate for phrasing the rules were not written against
        "first_run_before_fixes": {
            "test": {"recall_high_imminent": 1.0, "recall_moderate_plus": 1.0, "benign_false_alarm_rate": 0.057},
            "challenge": {"recall_high_imminent": 0.417, "recall_moderate_plus": 0.486,
                          "benign_false_alarm_rate": 0.2},
            "challenge2": {"recall_high_imminent": 0.438, "recall_moderate_plus": 0.56,
                           "benign_false_alarm_rate": 0.04},
            "challenge3": {"recall_high_imminent": 0.2326, "recall_moderate_plus": 0.3231, "recall_any_risk": 0.325,
                           "benign_false_alarm_rate": 0.05, "exact_level_accuracy": 0.5903, "n": 144,
                           "benign_lookalikes": 60,
                           "system": "rules + char n-gram classifier at commit dea0c41 (identical to rules only on "
                                     "this split)"},
            # challenge4 (140 items) was written and committed alone (1157d89) before any change for issue 7's
            # generalisation work, then run once with the shipped system; nothing was tuned on it afterwards
            "challenge4": {"recall_high_imminent": 0.24, "recall_moderate_plus": 0.4133, "recall_any_risk": 0.4783,
                           "benign_false_alarm_rate": 0.0652, "exact_level_accuracy": 0.6071,
                           "recall_imminent_exact": 0.05, "n": 140, "benign_lookalikes": 46,
                           "rules_classifier": {"recall_high_imminent": 0.16, "recall_moderate_plus": 0.3333,
                                                "benign_false_alarm_rate": 0.0217},
                           "system": "rules + classifier + semantic layer at commit 1157d89"},
            # dev2 (157 items, tuning split written after challenge4 was frozen): its run before any change
            "dev2": {"recall_high_imminent": 0.4667, "recall_moderate_plus": 0.5222, "recall_any_risk": 0.6018,
                     "benign_false_alarm_rate": 0.0, "n": 157, "benign_lookalikes": 45,
                     "system": "rules + classifier + semantic layer at commit 6989835"},
            # dev2 grew in four batches, each written after the previous round of changes and run once before
            # the next round (system figures on that batch alone). Later batches were written knowing the
            # constructs' weak spots, so they are harder and not comparable with each other or with challenge4.
            "dev2_batches_first_run": {
                "batch1_dev2-001..157_before_any_change": {"recall_high_imminent": 0.467,
                                                           "recall_moderate_plus": 0.522,
                                                           "benign_false_alarm_rate": 0.0},
                "batch2_dev2-158..237_after_round1": {"recall_high_imminent": 0.531, "recall_moderate_plus": 0.630,
                                                      "benign_false_alarm_rate": 0.077},
                "batch3_dev2-238..328_after_round2": {"recall_high_imminent": 0.314, "recall_moderate_plus": 0.451,
                                                      "benign_false_alarm_rate": 0.067},
                "batch4_dev2-329..402_after_round3": {"recall_high_imminent": 0.321, "recall_moderate_plus": 0.400,
                                                      "benign_false_alarm_rate": 0.231},
            },
            # challenge5 (held out, frozen alone at commit 23ba6ef) and dev3 (tuning, frozen at c32145f), both written
            # by a helper who never saw challenge3/4, run once with the safety code at a892df5 (before any change for
            # the next round): git worktree of a892df5 + this bench and data, `python bench/safety_eval.py`
            "challenge5": {"recall_high_imminent": 0.32, "recall_moderate_plus": 0.44, "recall_any_risk": 0.5,
                           "benign_false_alarm_rate": 0.0714, "exact_level_accuracy": 0.6533,
                           "recall_imminent_exact": 0.15, "n": 150, "benign_lookalikes": 56,
                           "rules_classifier": {"recall_high_imminent": 0.26, "recall_moderate_plus": 0.3733,
                                                "recall_any_risk": 0.4222, "benign_false_alarm_rate": 0.0714},
                           "system": "rules + classifier + semantic layer at commit a892df5"},
            "dev3": {"recall_high_imminent": 0.37, "recall_moderate_plus": 0.4533, "recall_any_risk": 0.4556,
                     "benign_false_alarm_rate": 0.0625, "exact_level_accuracy": 0.6167, "recall_imminent_exact": 0.225,
                     "n": 300, "benign_lookalikes": 112,
                     "rules_classifier": {"recall_high_imminent": 0.33, "recall_moderate_plus": 0.4067,
                                          "recall_any_risk": 0.4056, "benign_false_alarm_rate": 0.0625},
                     "system": "rules + classifier + semantic layer at commit a892df5"},
            # dev4 (tuning, frozen at cd71ff5) and dev5 (validation, frozen at 6c5407c), written blind by helpers who
            # never saw the held-out splits; first sight with the learned reader off (an ad-hoc script with this
            # bench's labelled_metrics on that split only; the reader-off path is the code of 5f8663e)
            "dev4": {"recall_high_imminent": 0.1926, "recall_moderate_plus": 0.3026, "benign_false_alarm_rate": 0.0738,
                     "exact_level_accuracy": 0.52, "n": 400, "benign_lookalikes": 149,
                     "system": "rules + classifier + semantic bank at commit 5f8663e (learned reader off)"},
            "dev5": {"recall_high_imminent": 0.28, "recall_moderate_plus": 0.4207, "benign_false_alarm_rate": 0.0364,
                     "exact_level_accuracy": 0.6, "n": 300, "benign_lookalikes": 110,
                     "system": "rules + classifier + semantic bank, learned reader off (MENTALENS_LEARNED_RISK=0)"},
            # dev6 (round 4's validation, frozen at 165119c) and dev7 (round 6's, frozen at ef15fcb), written blind;
            # first sight with the system of their round (bench/safety_candidates.py; an ad-hoc script with this
            # bench's labelled_metrics for dev7), docs/safety.md rounds 4 and 6
            "dev6": {"recall_high_imminent": 0.38, "recall_moderate_plus": 0.4759, "benign_false_alarm_rate": 0.0455,
                     "exact_level_accuracy": 0.6333, "n": 300, "benign_lookalikes": 110,
                     "system": "rules + classifier + semantic bank + round 3's learned reader at commit c3d2ab8"},
            "dev7": {"recall_high_imminent": 0.38, "recall_moderate_plus": 0.469, "benign_false_alarm_rate": 0.0545,
                     "n": 300, "benign_lookalikes": 110,
                     "system": "rules + classifier + semantic bank + round 3's learned reader at commit ce7be28 "
                               "(the rules before round 6)"},
            "dev8": {"recall_high_imminent": 0.35, "recall_moderate_plus": 0.4414, "benign_false_alarm_rate": 0.0364,
                     "n": 300, "benign_lookalikes": 110,
                     "system": "rules + classifier + semantic bank + round 3's learned reader at commit 01548e1 "
                               "(round 6's rules; round 7's candidate gave the same figures)"},
        },
        # recorded, not re-measured: the semantic layer's FIRST run on the held-out splits (an ad-hoc script with
        # these metrics), with the bank that ships (threshold 0.70, margin 0, chosen on dev allowing no dev
        # false alarm). A second bank was then tried (1 of 43 dev "none" items allowed -> threshold 0.63): its
        # full run is bench/results/safety_eval_semantic_t063.json (challenge3 high+ 0.488, moderate+ 0.538, but
        # benign false alarms 0.150, test 0.057, challenge2 0.120: it broke the false-alarm goal and was not shipped).
        "semantic_first_run": {
            "test": {"recall_high_imminent": 1.0, "recall_moderate_plus": 1.0, "benign_false_alarm_rate": 0.029},
            "challenge": {"recall_high_imminent": 0.917, "recall_moderate_plus": 0.943,
                          "benign_false_alarm_rate": 0.0},
            "challenge2": {"recall_high_imminent": 0.938, "recall_moderate_plus": 0.96,
                           "benign_false_alarm_rate": 0.0},
            "challenge3": {"recall_high_imminent": 0.349, "recall_moderate_plus": 0.431,
                           "benign_false_alarm_rate": 0.05},
            "system": "rules + classifier + semantic layer, bank threshold 0.70 margin 0.0 (the shipped bank)",
        },
        "semantic_bank": result["semantic_bank"],
    }

    print("mentalens safety evaluation")
    print(f"labelled set: {len(rows)} items ({sum(r['split'] == 'test' for r in rows)} test, "
          f"{sum(r['split'] == 'dev' for r in rows)} dev); classifier: {'on' if clf else 'absent'}")
    print(f"\n{'split':10s} {'system':16s} {'rec high+':>9s} {'rec mod+':>9s} {'benign FA':>9s} {'exact':>7s} "
          f"{'under':>7s} {'over':>7s}")
    for split in SPLITS:
        for kind in KINDS:
            m = result["labelled"][split][kind]
            print(f"{split:10s} {kind:16s} {m['recall_high_imminent']:>9.3f} {m['recall_moderate_plus']:>9.3f} "
                  f"{m['benign_false_alarm_rate']:>9.3f} {m['exact_level_accuracy']:>7.3f} {m['under_triage']:>7.3f} "
                  f"{m['over_triage']:>7.3f}")
    print_confusion("confusion, labelled TEST split (system)", test["confusion"])
    print("\nflags (test):", json.dumps(test["flags"]))
    print("under-triaged (test):", test["misses"])
    print("benign false alarms (test):", test["benign_false_alarms"])
    for key in ("cssrs_heldout_system", "cssrs_heldout_rules", "cssrs_all_rules"):
        m = result[key]
        print(f"\nC-SSRS {key}: users={m['users']} recall mod+={m['recall_moderate_plus']} "
              f"recall high+ (Behavior/Attempt)={m['recall_high_plus_behavior_attempt']} "
              f"any-risk recall={m['recall_any_risk_non_supportive']} supportive flagged={m['supportive_flagged_rate']}"
              + (f" classifier AUC={m['classifier_auc_non_supportive']}"
                 if "classifier_auc_non_supportive" in m else ""))
        print_confusion(f"  confusion by C-SSRS label ({key})", m["confusion_by_cssrs_label"], "C-SSRS")
    print(f"\nlatency per labelled item (median): rules {result['latency_ms_per_item']['rules_only_median']} ms, "
          f"with classifier {result['latency_ms_per_item']['with_classifier_median']} ms, with classifier and "
          f"semantic layer {result['latency_ms_per_item']['with_classifier_and_semantic_median']} ms "
          f"(p95 {result['latency_ms_per_item']['with_classifier_and_semantic_p95']} ms)")
    print("semantic layer raised (items per split):", result["semantic_raised_items"])

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / "safety_eval.json.tmp"
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, OUT / "safety_eval.json")
    (OUT / "safety_eval.html").write_text(html_report(result), encoding="utf-8")
    print(f"\nwrote {OUT / 'safety_eval.json'} and safety_eval.html")


if __name__ == "__main__":
    main()
