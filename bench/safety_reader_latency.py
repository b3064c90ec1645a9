"""What a learned risk reader costs per message: `assess()` latency with each reader, side by side in one process.

    python bench/safety_reader_latency.py --load C3=DIR/C3.json.gz --load L3=DIR/L3.json.gz [--n 300]
    python bench/safety_reader_latency.py --message M31=DIR/M31.json.gz     # another message reader

Why: a reader on an LM's hidden states (`mentalens.safety.lm_features`) runs the LM on what its gate lets
through; gated, that is rarely anything, ungated it is every English sentence. The shipped reader is always
measured beside the candidates (same comments, same process, the sentence encoder's cache cleared before each
arm, two interleaved rounds), so the ratios hold on a noisy machine. Comments: GoEmotions test (everyday text,
not used to build or tune any reader). Writes bench/results/safety_reader_latency.json. A `--message` arm keeps the
shipped sentence readers and swaps the message reader (`mentalens.safety.message_reader`), which reads every English
window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


class Arm(NamedTuple):
    """One side of the comparison: the sentence readers, and the message reader's artefact (None: the packaged one)."""

    readers: Any
    message_path: str | None = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", action="append", default=[], help="NAME=PATH of a reader artefact (repeat)")
    ap.add_argument("--message", action="append", default=[], help="NAME=PATH of a message reader artefact (repeat)")
    ap.add_argument("--n", type=int, default=300, help="GoEmotions test comments")
    ap.add_argument("--output", default=str(ROOT / "bench" / "results" / "safety_reader_latency.json"))
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from mentalens.data import load_goemotions
    from mentalens.data.io import write_json
    from mentalens.safety import assess, message_reader, semantic
    from mentalens.safety import sentence_encoder as se
    from mentalens.safety.learned import load_readers, model_spec

    shipped = load_readers(model_spec())  # every shipped reader (a union since round 12)
    arms: dict[str, Arm] = {"shipped": Arm(shipped)}
    for flag, specs in (("--load", args.load), ("--message", args.message)):
        for spec in specs:
            name, _, path = spec.partition("=")
            if not path:
                raise SystemExit(f"{flag} {spec!r}: use NAME=PATH")
            # several --load paths joined by os.pathsep: a union of readers
            arms[name] = Arm(load_readers(path)) if flag == "--load" else Arm(shipped, path)

    def use(arm: Arm) -> None:
        semantic._STATE.learned = arm.readers
        if arm.message_path:
            os.environ["MENTALENS_MESSAGE_READER_MODEL"] = arm.message_path
        else:
            os.environ.pop("MENTALENS_MESSAGE_READER_MODEL", None)
        if message_reader.get_reader() is None:  # loaded before timing (once per path)
            raise SystemExit(f"message reader {message_reader.model_path()}: not found")
    texts = [r.text for r in sorted(load_goemotions(split="test"), key=lambda r: r.id)[: args.n]]
    for arm in arms.values():  # every model (and its LM) loaded before timing
        use(arm)
        assess("warm up the encoder and the reader", semantic=True)
    times: dict[str, list[float]] = {name: [] for name in arms}
    for rnd in range(2):
        for name, arm in arms.items():
            use(arm)
            getattr(se.get_encoder(), "_cache", {}).clear()
            for text in texts[rnd::2]:
                t0 = time.perf_counter()
                assess(text, semantic=True)
                times[name].append(time.perf_counter() - t0)
    semantic._STATE.learned = None
    os.environ.pop("MENTALENS_MESSAGE_READER_MODEL", None)
    base = statistics.median(times["shipped"])
    result = {}
    table = Table(title=f"assess() per GoEmotions test comment ({len(texts)}), 2 interleaved rounds")
    for col in ("reader", "features", "gate", "message reader", "p50 ms", "p95 ms", "p50 / shipped"):
        table.add_column(col)
    for name, ts in times.items():
        ts.sort()
        members = arms[name].readers.members
        features, gate = " + ".join(m.features for m in members), " + ".join(m.gate for m in members)
        message = Path(arms[name].message_path).name if arms[name].message_path else "packaged"
        result[name] = {"features": features, "gate": gate, "message_reader": message,
                        "p50_ms": round(1000 * statistics.median(ts), 1),
                        "p95_ms": round(1000 * ts[int(0.95 * len(ts))], 1),
                        "p50_ratio_to_shipped": round(statistics.median(ts) / base, 2)}
        r = result[name]
        table.add_row(name, features, gate, message, f"{r['p50_ms']}", f"{r['p95_ms']}", f"{r['p50_ratio_to_shipped']}")
    Console().print(table)
    write_json({"comments": len(texts), "readers": result,
                "note": "2 shared CPU cores; one process, encoder cache cleared per arm"}, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
