"""What the corroboration hold costs and saves: the learned asks it drops, and what letting them stand would do.

    python bench/safety_context_hold.py            # every read split + GoEmotions dev (about an hour on 2 cores)
    python bench/safety_context_hold.py --from-raw bench/results/safety_context_hold_raw.json   # re-summarise

Why: a sentence whose only rule cue is an uncountable context phrase ("I have the pills", "made my will today") is
read by the learned sentence reader, but its ask stands only when something corroborates it
(`semantic._hold_uncorroborated`, round 14). Each lexicon round adds such phrases, so the hold can take raises away.
This bench records, for every read item (never test/challenge* or an unread split) and every GoEmotions dev comment
whose rules-only reading releases a context cue, the learned asks the hold drops (level, probability, the reader's
threshold) beside the item's gold and full-system level, then says what each probability floor for letting a held
ask stand would change: risk items raised toward gold against benign items raised to moderate or above.
Writes bench/results/safety_context_hold.json (the summary) and safety_context_hold_raw.json (per item: ids, levels
and probabilities, no text).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RANK = {"none": 0, "low": 1, "moderate": 2, "high": 3, "imminent": 4}
FLOORS = (0.0, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
OUT = ROOT / "bench" / "results"


def record() -> dict:
    """Run the full system on every read item and GoEmotions dev comment whose rules release a context cue,
    recording what the hold drops."""
    from tqdm import tqdm

    from mentalens.data import load_goemotions
    from mentalens.safety import RiskLevel, assess
    from mentalens.safety import semantic as sem

    sys.path.insert(0, str(ROOT / "bench"))
    from safety_eval import DATA, UNREAD

    dropped: list = []
    original = sem._hold_uncorroborated

    def watching(reading, asked, learned_asks, rule_level):
        before = list(learned_asks)
        original(reading, asked, learned_asks, rule_level)
        dropped.extend([b.value, round(float(reading.learned[k][1]), 4), reading.learned_thresholds[k]]
                       for k, (b, a) in enumerate(zip(before, learned_asks, strict=True))
                       if b > RiskLevel.NONE and a == RiskLevel.NONE)

    sem._hold_uncorroborated = watching
    skip = set(sem.HELD_OUT_SPLITS) | set(UNREAD)
    rows = [json.loads(x) for x in DATA.read_text(encoding="utf-8").splitlines() if x.strip()]
    items = [(r["id"], r["messages"], r["level"], r["split"], r["category"]) for r in rows if r["split"] not in skip]
    data = os.environ.get("MENTALENS_DATA")
    items += [(f"goemotions-dev-{i}", e.text, "none", "goemotions", "goemotions")
              for i, e in enumerate(load_goemotions(data, split="dev"))]
    raw: dict = {}
    for iid, messages, gold, split, category in tqdm(items, desc="items", unit="item", mininterval=30):
        rules = assess(messages, use_classifier=False, semantic=False)
        if rules.level >= RiskLevel.LOW or not sem.split_left_to_rules(rules.cues, rules.level,
                                                                       sem.left_to_rules_policy())[1]:
            continue  # the hold applies only below low, to sentences holding a released cue
        dropped.clear()
        level = assess(messages).level.value
        if dropped:
            raw[iid] = {"gold": gold, "split": split, "category": category, "pred": level, "dropped": list(dropped)}
    sem._hold_uncorroborated = original
    return raw


def summarise(raw: dict) -> dict:
    """Per floor: the items whose level would rise if held asks at or above it stood (an approximation: the
    message reader, which reads after the sentence layer, is not rerun). Benign means a look-alike, as in the
    safety bench's false-alarm rate (`semantic.is_lookalike`)."""
    from mentalens.safety.semantic import is_lookalike

    table = {}
    for floor in FLOORS:
        c: Counter = Counter()
        for v in raw.values():
            gold, pred = RANK[v["gold"]], RANK[v["pred"]]
            new = max([pred] + [RANK[lvl] for lvl, p, _thr in v["dropped"] if p >= floor])
            if new <= pred:
                continue
            c["items_raised"] += 1
            c["goemotions_raised"] += v["split"] == "goemotions"
            c["risk_items_raised_toward_gold"] += v["split"] != "goemotions" and gold > pred
            c["high_plus_reached"] += gold >= 3 > pred and new >= 3
            c["moderate_plus_reached"] += gold >= 2 > pred and new >= 2
            c["benign_raised_to_moderate_plus"] += is_lookalike(v["category"]) and new >= 2
            c["raised_past_gold"] += new > gold
        table[str(floor)] = dict(c)
    return {"items_with_dropped_asks": len(raw),
            "goemotions_with_dropped_asks": sum(v["split"] == "goemotions" for v in raw.values()),
            "by_probability_floor": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--from-raw", type=Path, help="summarise a raw file written by an earlier run")
    args = ap.parse_args()
    if args.from_raw:
        try:
            raw = json.loads(args.from_raw.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"{args.from_raw}: cannot read a raw file ({exc}); run without --from-raw first") from None
    else:
        raw = record()
        (OUT / "safety_context_hold_raw.json").write_text(json.dumps(raw, indent=0), encoding="utf-8")
    result = summarise(raw)
    print(f"items whose held learned asks were dropped: {result['items_with_dropped_asks']} "
          f"(GoEmotions dev: {result['goemotions_with_dropped_asks']})")
    cols = ("items_raised", "high_plus_reached", "moderate_plus_reached", "benign_raised_to_moderate_plus",
            "raised_past_gold", "goemotions_raised")
    print("floor  " + "  ".join(cols))
    for floor, c in result["by_probability_floor"].items():
        print(f"{floor:6} " + "  ".join(f"{c.get(k, 0):>{len(k)}}" for k in cols))
    (OUT / "safety_context_hold.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
