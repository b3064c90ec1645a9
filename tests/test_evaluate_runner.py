"""The generation runner on the real IMHI test files: layout, stratified samples, resume, per-row failures."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import pandas as pd
import pytest

from mentalens.backend import Backend, GenerationConfig
from mentalens.errors import BackendError, ConfigError, DataError
from mentalens.evaluate import AnswerConfig, load_sets, run_answers
from mentalens.evaluate.runner import read_rows


class Scripted(Backend):
    """A backend whose answers come from a function of the prompt (testing the runner, not a model)."""

    name = "scripted"

    def __init__(self, fn: Callable[[str], str | None], tag: str = "v1"):
        self.fn, self.tag, self.calls, self.prompts = fn, tag, 0, []

    def answer(self, prompts: Sequence[str], config: GenerationConfig | None = None) -> list[str]:
        self.calls += 1
        self.prompts.extend(prompts)
        return [self.fn(p) for p in prompts]

    def stream(self, messages, config=None) -> Iterator[str]:
        yield ""

    def describe(self) -> dict:
        return {"backend": self.name, "model": self.tag}


def gold_of(imhi_dir):
    """The gold answer of each query (a perfect backend) for the sets used here."""
    table = {}
    for name in ("DR", "Irf", "t-sid"):
        df = pd.read_csv(imhi_dir / "test_data" / "test_instruction" / f"{name}.csv")
        table.update(dict(zip(df["query"], df["gpt-3.5-turbo"], strict=True)))
    return table


@pytest.fixture(scope="module")
def golds(imhi_dir):
    return gold_of(imhi_dir)


def cfg(imhi_dir, **kw) -> AnswerConfig:
    kw.setdefault("data", str(imhi_dir / "test_data" / "test_instruction"))
    kw.setdefault("sets", ("DR", "Irf"))
    kw.setdefault("limit", 10)
    kw.setdefault("batch_size", 4)
    return AnswerConfig(**kw)


def test_answers_in_mentallama_layout_with_jsonl_and_run_file(tmp_path, imhi_dir, golds):
    backend = Scripted(lambda q: golds[q])
    summary = run_answers(backend, cfg(imhi_dir), tmp_path, show_progress=False)
    assert [s.set_name for s in summary.sets] == ["DR", "Irf"]
    for name in ("DR", "Irf"):
        df = pd.read_csv(tmp_path / f"{name}.csv")
        assert list(df.columns) == ["goldens", "generated_text"]
        assert len(df) == 10
        assert (df["goldens"] == df["generated_text"]).all()
        rows = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        assert len(rows) == 10
        assert {"index", "query", "gold", "generated", "seconds", "error"} <= set(rows[0])
        assert all(r["error"] is None and r["seconds"] >= 0 for r in rows)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["backend"] == {"backend": "scripted", "model": "v1"}
    assert run["limit"] == 10 and run["seed"] == 0 and run["finished"]
    assert backend.calls == 6  # 10 rows in batches of 4, per set


def test_limit_is_stratified_and_the_same_every_time(imhi_dir):
    a = load_sets(cfg(imhi_dir, sets=("Irf", "t-sid"), limit=40))
    b = load_sets(cfg(imhi_dir, sets=("Irf", "t-sid"), limit=40))
    assert [r.index for r in a["t-sid"]] == [r.index for r in b["t-sid"]]
    full = load_sets(cfg(imhi_dir, sets=("t-sid",), limit=None))["t-sid"]
    share = Counter(r.label for r in full)
    got = Counter(r.label for r in a["t-sid"])
    assert sum(got.values()) == 40 and set(got) == set(share)  # every label kept, even the 5% PTSD class
    for label, n in share.items():
        assert abs(got[label] - 40 * n / len(full)) <= 1
    irf = Counter((r.label, r.aspect) for r in a["Irf"])
    assert len(irf) == 4  # both aspects x both labels
    other_seed = load_sets(cfg(imhi_dir, sets=("t-sid",), limit=40, seed=1))["t-sid"]
    assert [r.index for r in other_seed] != [r.index for r in a["t-sid"]]


class Crash(BaseException):
    """Stands for the process dying (kill, power loss): not an Exception the runner may catch."""


def test_resume_after_a_crash_redoes_nothing(tmp_path, imhi_dir, golds):
    def dying(q):
        if dying.n >= 12:
            raise Crash()
        dying.n += 1
        return golds[q]

    dying.n = 0
    with pytest.raises(Crash):
        run_answers(Scripted(dying), cfg(imhi_dir), tmp_path, show_progress=False)
    done_before = read_rows(tmp_path / "Irf.jsonl")
    assert len(read_rows(tmp_path / "DR.jsonl")) == 10 and len(done_before) == 0  # DR done; Irf's batch lost
    assert len(pd.read_csv(tmp_path / "DR.csv")) == 10

    second = Scripted(lambda q: golds[q])
    run_answers(second, cfg(imhi_dir), tmp_path, show_progress=False)
    assert len(second.prompts) == 10  # only Irf's rows were asked
    df = pd.read_csv(tmp_path / "Irf.csv")
    assert len(df) == 10 and (df["goldens"] == df["generated_text"]).all()
    lines = (tmp_path / "DR.jsonl").read_text().splitlines()
    assert len(lines) == 10  # nothing appended twice


def test_a_torn_last_line_is_redone(tmp_path, imhi_dir, golds):
    run_answers(Scripted(lambda q: golds[q]), cfg(imhi_dir, sets=("DR",)), tmp_path, show_progress=False)
    path = tmp_path / "DR.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # crash mid-write
    again = Scripted(lambda q: golds[q])
    run_answers(again, cfg(imhi_dir, sets=("DR",)), tmp_path, show_progress=False)
    assert len(again.prompts) == 1
    assert len(read_rows(path)) == 10 and len(pd.read_csv(tmp_path / "DR.csv")) == 10


def test_bad_rows_fail_alone_and_are_retried_next_run(tmp_path, imhi_dir, golds):
    selected = load_sets(cfg(imhi_dir, sets=("DR",)))["DR"]
    bad = {selected[1].query, selected[6].query}

    def flaky(q):
        if q in bad:
            raise RuntimeError("model crashed on this prompt")
        return golds[q]

    summary = run_answers(Scripted(flaky), cfg(imhi_dir, sets=("DR",)), tmp_path, show_progress=False)
    assert summary.sets[0].failed == 2 and summary.sets[0].done == 8
    rows = read_rows(tmp_path / "DR.jsonl")
    errors = {r["query"]: r["error"] for r in rows.values() if r["error"]}
    assert set(errors) == bad and all("model crashed" in e for e in errors.values())
    assert len(pd.read_csv(tmp_path / "DR.csv")) == 8
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["finished"] is None  # not complete while rows failed

    retry = Scripted(lambda q: golds[q])
    summary = run_answers(retry, cfg(imhi_dir, sets=("DR",)), tmp_path, show_progress=False)
    assert set(retry.prompts) == bad and summary.sets[0].failed == 0
    assert len(pd.read_csv(tmp_path / "DR.csv")) == 10


def test_a_backend_that_goes_down_stops_the_run_and_keeps_finished_rows(tmp_path, imhi_dir, golds):
    def down_after_5(q):
        down_after_5.n += 1
        if down_after_5.n > 5:
            raise BackendError("http://127.0.0.1:9/v1 unreachable after 3 retries: start the server")
        return golds[q]

    down_after_5.n = 0
    with pytest.raises(BackendError, match="Finished rows are kept"):
        run_answers(Scripted(down_after_5), cfg(imhi_dir, sets=("DR",), batch_size=2), tmp_path, show_progress=False)
    rows = read_rows(tmp_path / "DR.jsonl")
    ok = [r for r in rows.values() if r["error"] is None]
    assert len(ok) == 4  # the batch holding the 6th call failed as a whole
    assert len(pd.read_csv(tmp_path / "DR.csv")) == 4
    assert all("unreachable" in r["error"] or "not attempted" in r["error"] for r in rows.values() if r["error"])


def test_empty_and_missing_answers_are_reported_per_row(tmp_path, imhi_dir):
    summary = run_answers(
        Scripted(lambda q: None if "depression" in q and len(q) % 2 else ""),
        cfg(imhi_dir, sets=("DR",), max_consecutive_failures=100),
        tmp_path,
        show_progress=False,
    )
    s = summary.sets[0]
    rows = read_rows(tmp_path / "DR.jsonl").values()
    assert s.empty == sum(r["error"] is None for r in rows) and s.empty > 0
    assert s.failed == sum(r["error"] == "backend returned no text (None)" for r in rows) and s.failed > 0


def test_resuming_with_other_settings_or_backend_is_refused(tmp_path, imhi_dir, golds):
    run_answers(Scripted(lambda q: golds[q]), cfg(imhi_dir, sets=("DR",)), tmp_path, show_progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        run_answers(Scripted(lambda q: golds[q]), cfg(imhi_dir, sets=("DR",), limit=20), tmp_path, show_progress=False)
    with pytest.raises(ConfigError, match="another backend"):
        run_answers(Scripted(lambda q: "x", tag="v2"), cfg(imhi_dir, sets=("DR",)), tmp_path, show_progress=False)


def test_bad_folders_fail_before_any_work(tmp_path, imhi_dir):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no IMHI CSV files"):
        load_sets(AnswerConfig(data=str(tmp_path / "empty")))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "DR.csv").write_text("text,label\nhello,1\n")
    with pytest.raises(DataError, match="'query'"):
        load_sets(AnswerConfig(data=str(bad)))
    with pytest.raises(DataError, match="--format"):  # the IMHI root holds DR in both formats
        load_sets(AnswerConfig(data=str(imhi_dir / "test_data"), sets=("DR",)))
    both = load_sets(AnswerConfig(data=str(imhi_dir / "test_data"), sets=("DR",), fmt="complete"))
    assert both["DR"][0].query.startswith("Post:")


def test_cli_options_map_to_each_backend_constructor():
    import inspect

    from mentalens.backend import BACKENDS
    from mentalens.evaluate.backends import BackendOptions, backend_kwargs

    cases = {
        "proxy": BackendOptions(model="big", expert="tuned", anti_expert="small", alpha=0.5),
        "hf": BackendOptions(model="m", adapter="lora", device="cpu"),
        "openai": BackendOptions(base_url="http://127.0.0.1:8000/v1", model="m", timeout_s=5, max_retries=2),
        "embedded": BackendOptions(model="artefact-dir"),
    }
    assert backend_kwargs("proxy", cases["proxy"]) == {
        "base": "big",
        "expert": "tuned",
        "anti_expert": "small",
        "alpha": 0.5,
    }
    assert backend_kwargs("embedded", cases["embedded"]) == {"artefact": "artefact-dir"}
    for name, options in cases.items():  # every argument exists in the real constructor's signature
        params = inspect.signature(BACKENDS.get(name).__init__).parameters
        assert set(backend_kwargs(name, options)) <= set(params), name
    with pytest.raises(ConfigError, match="needs --expert"):
        backend_kwargs("proxy", BackendOptions(model="big"))
