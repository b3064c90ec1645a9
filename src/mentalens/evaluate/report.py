"""Evaluation reports: Markdown and one self-contained HTML page from a scored run folder.

The page needs no network and no other file (plots are inline base64 PNGs drawn with matplotlib's Agg
backend): per-set tables beside the published anchors, bar charts, confusion matrices, and example answers
beside their gold explanations. Every number comes from scores.json; nothing is recomputed here.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from mentalens.evaluate.anchors import (
    ANCHOR_NOTES,
    BEST_DISCRIMINATIVE_WF1,
    MENTALLAMA_CHAT_13B_WF1,
    SEED_BARTSCORES,
)
from mentalens.evaluate.correctness import UNPARSEABLE
from mentalens.evaluate.score import load_scores

DISCLAIMER = (
    "mentalens is a research tool. These are benchmark scores of automatic analyses of public research posts; "
    "they are not diagnoses and say nothing about any individual."
)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _summary_rows(scores: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, s in scores["sets"].items():
        c = s["correctness"]
        bart = s.get("bartscore") or {}
        rouge = s.get("rouge") or {}
        rows.append(
            {
                "set": name,
                "n": c["n"],
                "failed": s.get("failed", 0),
                "unparseable": 100 * c["unparseable_rate"],
                "fallback": c["fallback"],
                "accuracy": c["accuracy"]["value"],
                "wf1": c["weighted_f1"]["value"],
                "wf1_low": c["weighted_f1"]["low"],
                "wf1_high": c["weighted_f1"]["high"],
                "macro_f1": c["macro_f1"],
                "mentallama": MENTALLAMA_CHAT_13B_WF1.get(name),
                "discriminative": BEST_DISCRIMINATIVE_WF1.get(name),
                "rouge1": rouge.get("rouge1"),
                "rouge2": rouge.get("rouge2"),
                "rougeL": rouge.get("rougeL"),
                "bart_hyp_ref": bart.get("hyp_ref"),
                "bart_f": bart.get("f_avg"),
                "bertscore": (s.get("bertscore") or {}).get("f1"),
            }
        )
    return rows


# -------------------------------------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _f1_chart(rows: list[dict[str, Any]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["set"] for r in rows]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 3.6))
    ours = [r["wf1"] for r in rows]
    err = [[r["wf1"] - r["wf1_low"] for r in rows], [r["wf1_high"] - r["wf1"] for r in rows]]
    ax.bar(x - 0.27, ours, 0.27, yerr=err, capsize=3, label="this run (95% CI)", color="#3b6ea8")
    ax.bar(x, [r["mentallama"] or 0 for r in rows], 0.27, label="MentaLLaMA-chat-13B", color="#d9a441")
    ax.bar(x + 0.27, [r["discriminative"] or 0 for r in rows], 0.27, label="best discriminative", color="#8c8c8c")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylabel("weighted F1 (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _rouge_chart(rows: list[dict[str, Any]]) -> str | None:
    if not any(r["rouge1"] is not None for r in rows):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 3.2))
    for off, key, color in ((-0.27, "rouge1", "#3b6ea8"), (0, "rouge2", "#7fa7d1"), (0.27, "rougeL", "#b9cfe6")):
        ax.bar(x + off, [r[key] or 0 for r in rows], 0.27, label=key.replace("rouge", "ROUGE-"), color=color)
    ax.set_xticks(x, [r["set"] for r in rows], rotation=20)
    ax.set_ylabel("F-measure (%)")
    ax.set_ylim(0, max(10.0, *(r[k] or 0 for r in rows for k in ("rouge1", "rouge2", "rougeL"))) * 1.1)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _bart_chart(rows: list[dict[str, Any]]) -> str | None:
    """BARTScore h->r per set beside the seed project's numbers (dashed lines)."""
    if not any(r["bart_hyp_ref"] is not None for r in rows):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 3.2))
    ax.bar(range(len(rows)), [r["bart_hyp_ref"] or 0 for r in rows], 0.5, color="#3b6ea8", label="this run (h->r)")
    for (name, value), color in zip(
        SEED_BARTSCORES.items(), ("#d9a441", "#b5651d", "#8c8c8c", "#5b6b7b", "#c0392b"), strict=False
    ):
        ax.axhline(value, ls="--", lw=1, color=color, label=name)
    ax.set_xticks(range(len(rows)), [r["set"] for r in rows], rotation=20)
    ax.set_ylabel("BARTScore (higher is better)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _confusion_chart(name: str, labels: list[str], matrix: list[list[int]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [*labels, UNPARSEABLE]
    m = np.array(matrix)
    keep = [j for j in range(len(cols)) if j < len(labels) or m[:, j].sum() > 0]
    m = m[:, keep]
    size = 1.4 + 0.55 * max(len(labels), len(keep))
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if m[i, j] > m.max() / 2 else "black",
            )
    ax.set_xticks(range(len(keep)), [cols[j] for j in keep], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(name, fontsize=9)
    return _png(fig)


# -------------------------------------------------------------------------------------------- markdown


def to_markdown(scores: dict[str, Any], title: str = "IMHI evaluation", examples: bool = True) -> str:
    rows = _summary_rows(scores)
    run = scores.get("meta", {}).get("run", {})
    meta = scores.get("meta", {})
    lines = [f"# {title}", "", f"_{DISCLAIMER}_", ""]
    lines += [
        f"- backend: `{json.dumps(_backend_brief(run.get('backend')))}` (full description in run.json)",
        f"- data: `{run.get('data')}`; limit per set: {run.get('limit') or 'all rows'}; seed: {run.get('seed')}",
        f"- label fallback: {json.dumps(meta.get('fallback'))}; bootstrap resamples: {meta.get('resamples')}",
        f"- BARTScore: {json.dumps(meta.get('bartscore')) if meta.get('bartscore') else 'not computed'}",
        "",
        "## Correctness (weighted F1, %)",
        "",
        "| set | n | failed | unparseable % | accuracy | weighted F1 [95% CI] | macro F1 "
        "| MentaLLaMA-chat-13B | best discriminative |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['n']} | {r['failed']} | {_fmt(r['unparseable'], 1)} | {_fmt(r['accuracy'])} | "
            f"{_fmt(r['wf1'])} [{_fmt(r['wf1_low'])}, {_fmt(r['wf1_high'])}] | {_fmt(r['macro_f1'])} | "
            f"{_fmt(r['mentallama'])} | {_fmt(r['discriminative'])} |"
        )
    aspect_lines = []
    for name, s in scores["sets"].items():
        for aspect, a in s["correctness"].get("per_aspect", {}).items():
            aspect_lines.append(
                f"| {name} | {aspect} | {a['n']} | {_fmt(a['accuracy']['value'])} | "
                f"{_fmt(a['weighted_f1']['value'])} "
                f"[{_fmt(a['weighted_f1']['low'])}, {_fmt(a['weighted_f1']['high'])}] |"
            )
    if aspect_lines:
        lines += [
            "",
            "### Per aspect (IRF, MultiWD)",
            "",
            "| set | aspect | n | accuracy | weighted F1 [95% CI] |",
            "|---|---|---:|---:|---|",
            *aspect_lines,
        ]
    lines += [
        "",
        "## Explanation quality",
        "",
        "| set | ROUGE-1 | ROUGE-2 | ROUGE-L | BARTScore h->r | BARTScore F | BERTScore F1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {_fmt(r['rouge1'])} | {_fmt(r['rouge2'])} | {_fmt(r['rougeL'])} | "
            f"{_fmt(r['bart_hyp_ref'], 3)} | {_fmt(r['bart_f'], 3)} | {_fmt(r['bertscore'])} |"
        )
    lines += [
        "",
        "Seed project's BARTScores (for reference): " + ", ".join(f"{k} {v:.2f}" for k, v in SEED_BARTSCORES.items()),
        "",
        f"_{ANCHOR_NOTES}_",
        "",
    ]
    lines += ["## Example answers", ""] if examples else []
    for name, s in scores["sets"].items() if examples else ():
        for ex in s.get("examples", []):
            lines += [
                f"**{name} #{ex['index']}** ({ex['kind']}; gold: {ex['gold_label']}, predicted: "
                f"{ex['label'] or UNPARSEABLE} via {ex['label_source']})",
                "",
                f"> generated: {_one_line(ex['generated'])}",
                ">",
                f"> gold: {_one_line(ex['gold'])}",
                "",
            ]
    return "\n".join(lines) + "\n"


_BRIEF_KEYS = ("backend", "model", "adapter", "artefact", "base_url", "alpha")


def _backend_brief(desc: Any) -> Any:
    """The few keys that say which model answered (the full description stays in run.json)."""
    if not isinstance(desc, dict):
        return desc
    brief = {k: desc[k] for k in _BRIEF_KEYS if desc.get(k) is not None}
    members = desc.get("members")
    if isinstance(members, list):
        brief["members"] = [m.get("name") if isinstance(m, dict) else m for m in members]
    return brief


def _bart_meta(meta: dict[str, Any]) -> str:
    return json.dumps(meta["bartscore"]) if meta.get("bartscore") else "not computed"


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(empty)"


# -------------------------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2733;line-height:1.45}
h1,h2,h3{color:#17324d}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #d5dde6;padding:.3em .6em;text-align:right}th{background:#eef3f8}
td:first-child,th:first-child{text-align:left}.note{color:#5b6b7b;font-size:.88em}
.grid{display:flex;flex-wrap:wrap;gap:1em}.ex{border:1px solid #d5dde6;border-radius:6px;padding:.6em 1em;margin:.8em 0}
.ex .k{font-weight:600}.ex pre{white-space:pre-wrap;font-family:inherit;margin:.3em 0;background:#f7f9fb;padding:.4em}
img{max-width:100%}
"""


def _table(headers: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def to_html(scores: dict[str, Any], title: str = "IMHI evaluation", examples: bool = True) -> str:
    rows = _summary_rows(scores)
    run = scores.get("meta", {}).get("run", {})
    meta = scores.get("meta", {})
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p class='note'>{html.escape(DISCLAIMER)}</p>",
        "<ul>"
        f"<li>backend: <code>{html.escape(json.dumps(_backend_brief(run.get('backend'))))}</code> "
        f"<details><summary>full description</summary><pre>{html.escape(json.dumps(run.get('backend'), indent=1))}"
        "</pre></details></li>"
        f"<li>data: <code>{html.escape(str(run.get('data')))}</code>; limit per set: "
        f"{html.escape(str(run.get('limit') or 'all rows'))}; seed: {html.escape(str(run.get('seed')))}</li>"
        f"<li>label fallback: {html.escape(json.dumps(meta.get('fallback')))}; bootstrap resamples: "
        f"{html.escape(str(meta.get('resamples')))}</li>"
        f"<li>BARTScore: {html.escape(_bart_meta(meta))}</li>"
        "</ul>",
        "<h2>Correctness</h2>",
        _table(
            [
                "set",
                "n",
                "failed",
                "unparseable %",
                "accuracy",
                "weighted F1",
                "95% CI",
                "macro F1",
                "MentaLLaMA-chat-13B",
                "best discriminative",
            ],
            [
                [
                    r["set"],
                    str(r["n"]),
                    str(r["failed"]),
                    _fmt(r["unparseable"], 1),
                    _fmt(r["accuracy"]),
                    _fmt(r["wf1"]),
                    f"[{_fmt(r['wf1_low'])}, {_fmt(r['wf1_high'])}]",
                    _fmt(r["macro_f1"]),
                    _fmt(r["mentallama"]),
                    _fmt(r["discriminative"]),
                ]
                for r in rows
            ],
        ),
        f"<img alt='weighted F1 per set beside the published anchors' src='data:image/png;base64,{_f1_chart(rows)}'>",
    ]
    aspect_rows = [
        [
            name,
            aspect,
            str(a["n"]),
            _fmt(a["accuracy"]["value"]),
            _fmt(a["weighted_f1"]["value"]),
            f"[{_fmt(a['weighted_f1']['low'])}, {_fmt(a['weighted_f1']['high'])}]",
        ]
        for name, s in scores["sets"].items()
        for aspect, a in s["correctness"].get("per_aspect", {}).items()
    ]
    if aspect_rows:
        parts += [
            "<h3>Per aspect (IRF, MultiWD)</h3>",
            _table(["set", "aspect", "n", "accuracy", "weighted F1", "95% CI"], aspect_rows),
        ]
    parts += [
        "<h2>Explanation quality</h2>",
        _table(
            ["set", "ROUGE-1", "ROUGE-2", "ROUGE-L", "BARTScore h->r", "BARTScore F", "BERTScore F1"],
            [
                [
                    r["set"],
                    _fmt(r["rouge1"]),
                    _fmt(r["rouge2"]),
                    _fmt(r["rougeL"]),
                    _fmt(r["bart_hyp_ref"], 3),
                    _fmt(r["bart_f"], 3),
                    _fmt(r["bertscore"]),
                ]
                for r in rows
            ],
        ),
    ]
    chart = _rouge_chart(rows)
    if chart:
        parts.append(f"<img alt='ROUGE per set' src='data:image/png;base64,{chart}'>")
    chart = _bart_chart(rows)
    if chart:
        parts.append(f"<img alt='BARTScore per set beside the seed project' src='data:image/png;base64,{chart}'>")
    parts += [
        "<h3>Seed project's BARTScores</h3>",
        _table(["model", "BARTScore"], [[k, f"{v:.2f}"] for k, v in SEED_BARTSCORES.items()]),
        f"<p class='note'>{html.escape(ANCHOR_NOTES)}</p>",
        "<h2>Confusion matrices</h2><div class='grid'>",
    ]
    for name, s in scores["sets"].items():
        c = s["correctness"]
        if c["n"]:
            img = _confusion_chart(name, c["labels"], c["confusion"])
            parts.append(f"<img alt='confusion matrix {html.escape(name)}' src='data:image/png;base64,{img}'>")
    parts.append("</div>" + ("<h2>Example answers</h2>" if examples else ""))
    for name, s in scores["sets"].items() if examples else ():
        for ex in s.get("examples", []):
            parts.append(
                "<div class='ex'>"
                f"<div class='k'>{html.escape(name)} #{ex['index']} - {html.escape(ex['kind'])} "
                f"(gold: {html.escape(str(ex['gold_label']))}; predicted: "
                f"{html.escape(str(ex['label'] or UNPARSEABLE))} via {html.escape(ex['label_source'])}"
                f"{'; aspect: ' + html.escape(ex['aspect']) if ex.get('aspect') else ''})</div>"
                + (f"<div>post</div><pre>{html.escape(ex['post'])}</pre>" if ex.get("post") else "")
                + f"<div>generated</div><pre>{html.escape(ex['generated'] or '(empty)')}</pre>"
                f"<div>gold</div><pre>{html.escape(ex['gold'])}</pre></div>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def summary(scores: dict[str, Any], command: str | None = None) -> dict[str, Any]:
    """Headline figures of a scored run (what bench/results/eval_*.json keep), beside the anchors."""
    sets = {}
    for r in _summary_rows(scores):
        sets[r["set"]] = {
            "n": r["n"],
            "failed": r["failed"],
            "unparseable_pct": round(r["unparseable"], 2),
            "accuracy": round(r["accuracy"], 2),
            "weighted_f1": round(r["wf1"], 2),
            "weighted_f1_ci95": [round(r["wf1_low"], 2), round(r["wf1_high"], 2)],
            "macro_f1": round(r["macro_f1"], 2),
            "rouge": {k: None if r[k] is None else round(r[k], 2) for k in ("rouge1", "rouge2", "rougeL")},
            "bartscore_hyp_ref": None if r["bart_hyp_ref"] is None else round(r["bart_hyp_ref"], 4),
            "anchor_mentallama_chat_13b_wf1": r["mentallama"],
            "anchor_best_discriminative_wf1": r["discriminative"],
        }
    wf1 = [v["weighted_f1"] for v in sets.values()]
    meta = scores.get("meta", {})
    return {
        "command": command,
        "backend": meta.get("run", {}).get("backend"),
        "data": meta.get("run", {}).get("data"),
        "limit": meta.get("run", {}).get("limit"),
        "seed": meta.get("run", {}).get("seed"),
        "fallback": meta.get("fallback"),
        "bartscore": meta.get("bartscore"),
        "mean_weighted_f1": round(sum(wf1) / len(wf1), 2) if wf1 else None,
        "sets": sets,
    }


def write_report(
    run_dir: str | Path, title: str | None = None, *, examples: bool = True, out: str | Path | None = None
) -> tuple[Path, Path]:
    """report.md and report.html (in out, default RUN_DIR) from RUN_DIR/scores.json.

    examples=False leaves out the example posts and answers (for reports published where the IMHI text
    itself may not be copied).
    """
    from mentalens.data import atomic_write

    root = Path(run_dir).expanduser()
    scores = load_scores(root)
    name = title or f"IMHI evaluation: {root.name}"
    dest = Path(out).expanduser() if out else root
    md, page = dest / "report.md", dest / "report.html"
    with atomic_write(md) as f:
        f.write(to_markdown(scores, name, examples))
    with atomic_write(page) as f:
        f.write(to_html(scores, name, examples))
    return md, page


__all__ = ["summary", "to_html", "to_markdown", "write_report"]
