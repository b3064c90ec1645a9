"""Bias audit reports: bias.json (all figures), bias.md and a self-contained bias.html with plots."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from mentalens.data.io import atomic_write


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}%"


def _ci(v: dict[str, Any]) -> str:
    lo, hi = v["ci95"]
    return f"[{100 * lo:.2f}, {100 * hi:.2f}]"


def _chart(summaries: list[dict[str, Any]], threshold: float) -> str:
    """Grouped bars: flip rate per attribute for each system, with 95% intervals and the 2% line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    attrs = sorted({a for s in summaries for a in s["by_attribute"]})
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(attrs), 3.4))
    width = 0.8 / max(1, len(summaries))
    for i, s in enumerate(summaries):
        vals = [100 * s["by_attribute"].get(a, {}).get("flip_rate", 0.0) for a in attrs]
        lo = [100 * s["by_attribute"].get(a, {}).get("ci95", [0, 0])[0] for a in attrs]
        hi = [100 * s["by_attribute"].get(a, {}).get("ci95", [0, 0])[1] for a in attrs]
        err = np.array([np.subtract(vals, lo).clip(0), np.subtract(hi, vals).clip(0)])
        ax.bar(np.arange(len(attrs)) + i * width, vals, width, yerr=err, capsize=3, label=s["system"])
    ax.axhline(100 * threshold, color="crimson", linestyle="--", linewidth=1, label=f"{100 * threshold:.0f}% line")
    ax.set_xticks(np.arange(len(attrs)) + width * (len(summaries) - 1) / 2, attrs)
    ax.set_ylabel("labels flipped (%)")
    ax.set_title("Label flip rate by attribute (95% CI)")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# Bias audit", "", report.get("about", ""), ""]
    for s in report["systems"]:
        lines += [f"## {s['system']}", "", f"{s['posts']} posts, {s['pairs']} counterfactual pairs; "
                  f"max flip rate {_pct(s['max_flip_rate'])} (line: {_pct(s['threshold'])}); "
                  f"{'passes' if s['passes'] else 'FAILS'}; failed rows: {s['failures']}.", ""]  # fmt: skip
        lines += [
            "| attribute | pairs | posts | flip rate | 95% CI | mean abs Δp | unparseable pairs | risk-level flips |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for a, v in s["by_attribute"].items():
            risk = s["risk_by_attribute"].get(a)
            dp = "–" if v["mean_abs_dprob"] is None else f"{v['mean_abs_dprob']:.4f}"
            lines.append(
                f"| {a} | {v['pairs']} | {v['posts']} | {_pct(v['flip_rate'])} | {_ci(v)} | {dp} | "
                f"{v.get('unparseable', 0)} | "
                f"{_pct(risk['flip_rate']) if risk else '–'} |"
            )
        if s.get("census"):
            c = s["census"]
            made = ", ".join(f"{a}: {n}" for a, n in c["with_counterfactual"].items())
            lines += ["", f"Of {c['posts']} audited posts, with a counterfactual: {made}."]
        lines += ["", "Skipped posts (no swap possible / meaning would change):", ""]
        for a, reasons in s["skipped"].items():
            lines.append(f"- {a}: " + (", ".join(f"{k}: {n}" for k, n in sorted(reasons.items())) or "none"))
        lines += ["", "| attribute | task | pairs | flip rate | 95% CI |", "|---|---|---|---|---|"]
        for k, v in s["by_attribute_task"].items():
            attr, task = k.split("|", 1)
            lines.append(f"| {attr} | {task} | {v['pairs']} | {_pct(v['flip_rate'])} | {_ci(v)} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def to_html(report: dict[str, Any]) -> str:
    esc = html.escape
    chart = _chart(report["systems"], report["systems"][0]["threshold"]) if report["systems"] else ""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
        "content='width=device-width, initial-scale=1'><title>mentalens bias audit</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
        "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #bbb;padding:.3rem .6rem;text-align:left}"
        "th{background:#eef}.fail{color:#a00;font-weight:bold}.pass{color:#060;font-weight:bold}"
        "pre{white-space:pre-wrap;background:#f6f6f6;padding:.5rem}</style></head><body>",
        "<h1>Bias audit</h1>",
        f"<p>{esc(report.get('about', ''))}</p>",
        f"<img alt='Bar chart of label flip rates per attribute and system' src='data:image/png;base64,{chart}'>"
        if chart
        else "",
    ]
    for s in report["systems"]:
        verdict = "<span class='pass'>passes</span>" if s["passes"] else "<span class='fail'>fails</span>"
        parts.append(
            f"<h2>{esc(s['system'])}</h2><p>{s['posts']} posts, {s['pairs']} pairs; max flip rate "
            f"{_pct(s['max_flip_rate'])} — {verdict} the {_pct(s['threshold'])} line; failed rows: {s['failures']}</p>"
        )
        rows = "".join(
            f"<tr><td>{esc(a)}</td><td>{v['pairs']}</td><td>{_pct(v['flip_rate'])}</td><td>{_ci(v)}</td>"
            f"<td>{'–' if v['mean_abs_dprob'] is None else round(v['mean_abs_dprob'], 4)}</td>"
            f"<td>{_pct(s['risk_by_attribute'][a]['flip_rate']) if a in s['risk_by_attribute'] else '–'}</td></tr>"
            for a, v in s["by_attribute"].items()
        )
        parts.append(
            "<table><tr><th>attribute</th><th>pairs</th><th>flip rate</th><th>95% CI</th>"
            f"<th>mean |Δp|</th><th>risk-level flips</th></tr>{rows}</table>"
        )
        rows = "".join(
            f"<tr><td>{esc(k.split('|')[0])}</td><td>{esc(k.split('|')[1])}</td><td>{v['pairs']}</td>"
            f"<td>{_pct(v['flip_rate'])}</td><td>{_ci(v)}</td></tr>"
            for k, v in s["by_attribute_task"].items()
        )
        parts.append(
            "<details><summary>Per task</summary><table><tr><th>attribute</th><th>task</th><th>pairs</th>"
            f"<th>flip rate</th><th>95% CI</th></tr>{rows}</table></details>"
        )
        skipped = "".join(
            f"<li>{esc(a)}: {esc(', '.join(f'{k}: {n}' for k, n in sorted(r.items())) or 'none')}</li>"
            for a, r in s["skipped"].items()
        )
        parts.append(f"<p>Skipped posts:</p><ul>{skipped}</ul>")
        if s.get("examples"):
            ex = "".join(
                f"<tr><td>{esc(e['attribute'])}/{esc(e['variant'])}</td><td>{esc(e['task'])}</td>"
                f"<td>{esc(str(e['label']))} → {esc(str(e['cf_label']))}</td><td>{esc(e.get('edit', ''))}</td><td>"
                + ("".join(f"<pre>{esc(e[k])}</pre>" for k in ("original", "counterfactual") if k in e) or "(left out)")
                + "</td></tr>"
                for e in s["examples"][:15]
            )
            parts.append(
                "<details><summary>Flipped examples</summary><table><tr><th>swap</th><th>task</th><th>label</th>"
                f"<th>edit</th><th>original / counterfactual</th></tr>{ex}</table></details>"
            )
    parts.append("</body></html>")
    return "".join(parts)


def write_bias_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path, Path]:
    """Write bias.json, bias.md and bias.html into out_dir (atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "bias.json", out / "bias.md", out / "bias.html")
    with atomic_write(paths[0]) as f:
        json.dump(report, f, indent=1)
    with atomic_write(paths[1]) as f:
        f.write(to_markdown(report))
    with atomic_write(paths[2]) as f:
        f.write(to_html(report))
    return paths
