"""`mentalens risk ...`, `mentalens safety ...` and `mentalens train risk`: the safety layer from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mentalens.cli.app import app, console, print_json, sub_app

safety_app = sub_app("safety", "Crisis helplines, the output guard and PII redaction.")


def _train_group() -> typer.Typer:
    """The shared `mentalens train` group (created here only if no other module made it)."""
    for info in app.registered_groups:
        if info.name == "train" and info.typer_instance is not None:
            return info.typer_instance
    return sub_app("train", "Rebuild mentalens's own small models from the public data.")


train_app = _train_group()

_COLORS = {"none": "green", "low": "yellow", "moderate": "dark_orange", "high": "red", "imminent": "bold red"}


def _read_lines(path: Path) -> list[str]:
    from mentalens.errors import DataError

    if not path.is_file():
        raise DataError(f"{path}: file not found: pass a text file with one message per line")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text: save it as UTF-8 (one message per line)") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{path}: no messages found: write one message per line")
    return lines


def _show(a, text_label: str | None = None) -> None:
    from rich.table import Table

    from mentalens.safety import escalation_text

    lvl = a.level.value
    title = f"risk: [{_COLORS[lvl]}]{lvl}[/]" + (f"  ({text_label})" if text_label else "")
    if a.classifier_probability is not None:
        title += f"  classifier p={a.classifier_probability:.2f}"
    if a.review:
        title += "  [yellow]review suggested[/]"
    console.print(title)
    flags = [k for k, v in a.flags.items() if v]
    if flags:
        console.print("flags: " + ", ".join(flags))
    if a.cues:
        t = Table("construct", "text", "span", "msg", "counts", "note", show_header=True, header_style="bold")
        for c in a.cues:
            t.add_row(c.construct, c.text, f"{c.start}-{c.end}", str(c.message_index), "yes" if c.weight > 0 else "no",
                      c.note or "")
        console.print(t)
    esc = escalation_text(a)
    if esc:
        console.print(f"\n[bold]What mentalens shows:[/] {esc}")
    for r in a.resources:
        console.print(f"  - {r.contact()}" + (f"  <{r.url}>" if r.url and r.phone else ""))


@app.command("risk")
def risk(
    text: str = typer.Argument(None, help="The message to assess (or use --file)."),
    file: Path = typer.Option(None, "--file", "-f", help="A UTF-8 text file with one message per line."),
    conversation: bool = typer.Option(False, "--conversation", help="Treat the lines of --file as one conversation."),
    locale: str = typer.Option(None, "--locale", "-l", help="e.g. US, en-GB, es_MX (default $MENTALENS_LOCALE)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    no_classifier: bool = typer.Option(False, "--no-classifier", help="Rules only."),
    no_semantic: bool = typer.Option(False, "--no-semantic", help="Without the sentence-prototype layer."),
) -> None:
    """Assess suicide/self-harm risk (C-SSRS-style level, flags, cues, resources). Not a diagnosis."""
    from mentalens.errors import DataError
    from mentalens.safety import assess, escalation_text

    if (text is None) == (file is None):
        raise DataError("pass either a message or --file FILE (one message per line)")
    use = False if no_classifier else None
    if file is None:
        items = [("message", [text])]
    elif conversation:
        items = [("conversation", _read_lines(file))]
    else:
        items = [(f"line {i}", [ln]) for i, ln in enumerate(_read_lines(file), 1)]
    results = []
    for label, msgs in items:
        a = assess(msgs if len(msgs) > 1 else msgs[0], locale=locale, use_classifier=use,
                   semantic=False if (no_semantic or no_classifier) else None)
        if as_json:
            d = a.to_dict()
            d["escalation_text"] = escalation_text(a)
            if file is not None and not conversation:
                d["line"] = int(label.split()[1])
            results.append(d)
        else:
            _show(a, label if file is not None else None)
    if as_json:
        print_json(results[0] if (file is None or conversation) else results)


@safety_app.command("helplines")
def helplines(
    locale: str = typer.Option(None, "--locale", "-l", help="e.g. US, en-GB, es_MX; omit for the global fallback."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    all_countries: bool = typer.Option(False, "--all", help="List every country in the table."),
) -> None:
    """Show the crisis lines and emergency number for a locale (numbers must be re-checked periodically)."""
    from mentalens.safety import countries, resources_for
    from mentalens.safety.helplines import load_helplines

    if all_countries:
        if as_json:
            print_json(countries())
        else:
            for code, name in countries().items():
                console.print(f"{code}  {name}")
        return
    res = resources_for(locale)
    if as_json:
        print_json({"locale": locale, "resources": [r.to_dict() for r in res]})
        return
    for r in res:
        url = f"  <{r.url}>" if r.url and (r.phone or r.sms) else ""
        console.print(f"[bold]{r.kind}[/]  {r.contact()}{url}  (checked {r.checked}; source {r.source or '-'})")
    console.print(f"\n[dim]{load_helplines().notice}[/]")


@safety_app.command("guard")
def guard(
    reply: str = typer.Argument(..., help="A generated reply to check."),
    message: str = typer.Option(None, "--message", "-m", help="The user's message it answers (for risk checks)."),
    locale: str = typer.Option(None, "--locale", "-l"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run the output guard on a reply: violations and the text mentalens would show instead."""
    from mentalens.safety import assess, guard_reply

    a = assess(message, locale=locale) if message else None
    res = guard_reply(reply, a)
    if as_json:
        print_json(res.to_dict())
        return
    console.print("[green]ok[/]" if res.ok else "[red]withheld[/]: " + ", ".join(res.violations))
    if not res.ok:
        console.print(res.reply)


@safety_app.command("redact")
def redact_cmd(
    text: str = typer.Argument(None, help="Text to redact (or use --file)."),
    file: Path = typer.Option(None, "--file", "-f", help="A UTF-8 text file to redact (written to stdout)."),
) -> None:
    """Replace emails, phones, URLs, handles, addresses and detectable names with placeholders."""
    import sys

    from mentalens.errors import DataError
    from mentalens.safety import redact

    if (text is None) == (file is None):
        raise DataError("pass either text or --file FILE")
    if file is not None:
        if not file.is_file():
            raise DataError(f"{file}: file not found: pass a UTF-8 text file")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise DataError(f"{file}: not UTF-8 text: save it as UTF-8") from None
    sys.stdout.write(redact(text) + ("" if text.endswith("\n") else "\n"))


@train_app.command("risk")
def train_risk(
    data: Path = typer.Option(None, "--data", help="The mentalens data folder (default $MENTALENS_DATA)."),
    out: Path = typer.Option(None, "--out", help="Where to write the artefact (default: the packaged one)."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
) -> None:
    """Rebuild the small risk classifier deterministically (leakage-guarded) from the public data."""
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mentalens.safety.classifier import default_path, train_classifier

    target = out or default_path()
    t0 = time.time()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("risk classifier", total=None)
        clf, report = train_classifier(data, progress=lambda msg: progress.update(task, description=msg))
    path = clf.save(target)
    report = {**report, "artefact": str(path), "bytes": path.stat().st_size, "seconds": round(time.time() - t0, 1)}
    if as_json:
        print_json(report)
    else:
        console.print(f"risk classifier written to {path} ({path.stat().st_size / 1024:.0f} KB, "
                      f"{report['features']} features, thresholds {report['thresholds']})")


def _build_safety_artefact(name: str, build: Any, save_to: Path, eval_set: Path | None,
                           data: Path | None) -> tuple[Path, dict[str, Any]]:
    """Shared by the semantic layer's two builders: find the labelled set, build with a spinner, save, reload."""
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from mentalens.errors import DataError
    from mentalens.safety import semantic

    if eval_set is None:
        eval_set = Path(__file__).resolve().parents[3] / "bench" / "data" / "safety_eval.jsonl"
    if not eval_set.is_file():
        raise DataError(f"{eval_set}: labelled safety set not found: pass --eval-set bench/data/safety_eval.jsonl "
                        "from a mentalens source checkout")
    t0 = time.time()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task(name, total=None)
        artefact, report = build(eval_set, data, progress=lambda msg: progress.update(task, description=msg))
    path = artefact.save(save_to)
    semantic.reset()
    return path, {**report, "artefact": str(path), "bytes": path.stat().st_size, "seconds": round(time.time() - t0, 1)}


@train_app.command("risk-semantic")
def train_risk_semantic(
    eval_set: Path = typer.Option(None, "--eval-set", help="The labelled safety set (default: "
                                  "bench/data/safety_eval.jsonl of the source tree); only its dev and dev2 "
                                  "splits tune."),
    data: Path = typer.Option(None, "--data", help="The mentalens data folder for GoEmotions dev comments "
                              "(default $MENTALENS_DATA)."),
    out: Path = typer.Option(None, "--out", help="Where to write the bank (default: the packaged one)."),
    set_: list[str] = typer.Option(None, "--set", help="SemanticBuildConfig override key=value, repeatable (e.g. "
                                   "language_tune_splits= for one threshold in every language)."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Build the semantic risk layer's prototype bank (drops prototypes near held-out sentences, tunes on dev; the
    per-language thresholds on the whole system's decisions over the tuning splits)."""
    import functools

    from mentalens.config import load_config
    from mentalens.safety import semantic

    cfg = load_config(semantic.SemanticBuildConfig, None, list(set_ or []))
    if set_ and out is None:
        raise typer.BadParameter("a bank built with --set is not the shipped one: pass --out PATH (then "
                                 "MENTALENS_SEMANTIC_BANK=PATH uses it)", param_hint="--out")
    path, report = _build_safety_artefact("semantic risk bank", functools.partial(semantic.build_bank, cfg=cfg),
                                          out or semantic.default_path(), eval_set, data)  # fmt: skip
    if as_json:
        print_json(report)
    else:
        console.print(f"semantic risk bank written to {path} ({path.stat().st_size / 1024:.0f} KB): "
                      f"{report['kept']}/{report['prototypes']} prototypes kept "
                      f"({len(report['dropped_near_duplicates_of_held_out'])} dropped as near-duplicates of held-out "
                      f"sentences), threshold {report['threshold']}, margin {report['margin']} (chosen on dev), "
                      f"per language {report['language_thresholds'] or 'none'} (chosen on the whole system)")


# the options the two learned readers' builders share (each has its own --set: its config class)
_READER_EVAL_SET = typer.Option(None, "--eval-set", help="The labelled safety set (default: "
                                "bench/data/safety_eval.jsonl of the source tree); only the reader's tuning splits "
                                "(its config's tune_splits) train and tune.")
_READER_DATA = typer.Option(None, "--data", help="The mentalens data folder (GoEmotions train/dev; default "
                            "$MENTALENS_DATA).")
_READER_OUT = typer.Option(None, "--out", help="Where to write the model (default: the packaged one).")
_READER_JSON = typer.Option(False, "--json", help="Print the build report as JSON.")


def _train_reader(name: str, config_cls: Any, builder: Any, default: Path, env: str, set_: list[str] | None,
                  out: Path | None, eval_set: Path | None, data: Path | None, as_json: bool,
                  trained_on: Any) -> None:
    """Shared by the two learned readers' builders: overrides, the --out rule, build, and a one-line summary."""
    import functools

    from mentalens.config import load_config

    cfg = load_config(config_cls, None, list(set_ or []))
    if set_ and out is None:
        raise typer.BadParameter(f"a model built with --set is not the shipped one: pass --out PATH (then {env}=PATH "
                                 "uses it)", param_hint="--out")
    path, report = _build_safety_artefact(name, functools.partial(builder, cfg=cfg), out or default, eval_set, data)
    if as_json:
        print_json(report)
        return
    oof = report["out_of_fold_at_thresholds"]
    console.print(f"{name} written to {path} ({path.stat().st_size / 1024:.0f} KB): thresholds {report['thresholds']} "
                  f"(low, moderate, high, imminent; chosen out of fold on {trained_on(report)}); out of fold: recall "
                  f"high+ {oof['recall_high_plus']:.3f}, moderate+ {oof['recall_moderate_plus']:.3f}, benign raised "
                  f"{oof['benign_raised_rate']:.4f}, GoEmotions dev raised {oof['everyday_raised_rate']:.4f}")


@train_app.command("risk-message")
def train_risk_message(
    eval_set: Path = _READER_EVAL_SET,
    data: Path = _READER_DATA,
    out: Path = _READER_OUT,
    set_: list[str] = typer.Option(None, "--set", help="MessageReaderConfig override key=value, repeatable (e.g. "
                                   "validation_splits=dev55,dev56 max_everyday_rate=0.0002)."),
    as_json: bool = _READER_JSON,
) -> None:
    """Build the message-level risk reader (the last few user messages as one text; thresholds out of fold)."""
    from mentalens.safety import message_reader as mr

    _train_reader("message risk reader", mr.MessageReaderConfig, mr.build_message_reader, mr.default_path(),
                  "MENTALENS_MESSAGE_READER_MODEL", set_, out, eval_set, data, as_json,
                  lambda r: f"{r['data']['tuning_items']} items; the reader alone, under its gate")
    mr.reset()


@train_app.command("risk-learned")
def train_risk_learned(
    eval_set: Path = _READER_EVAL_SET,
    data: Path = _READER_DATA,
    out: Path = _READER_OUT,
    set_: list[str] = typer.Option(None, "--set", help="LearnedBuildConfig override key=value, repeatable (e.g. "
                                   "features=minilm+gemma3-270m:L9 gate=prototype tune_splits=dev,dev2)."),
    as_json: bool = _READER_JSON,
) -> None:
    """Build the semantic layer's learned sentence classifier (deterministic; thresholds chosen out of fold)."""
    from mentalens.safety import learned

    _train_reader("learned risk classifier", learned.LearnedBuildConfig, learned.build_learned, learned.default_path(),
                  "MENTALENS_LEARNED_RISK_MODEL", set_, out, eval_set, data, as_json,
                  lambda r: ", ".join(r["tune_splits"]))


