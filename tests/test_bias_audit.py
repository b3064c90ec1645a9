"""The bias audit end to end: the shipped analyzer on a few real IMHI test posts (every pair checked against a
direct analysis of the counterfactual), a scripted backend whose failing rows are reported per row, a tiny
real LLM through `mentalens eval bias --backend hf`, and the command's errors."""

from __future__ import annotations

import csv
import json

import pytest

from mentalens.backend import Backend
from mentalens.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def analyzer():
    from mentalens.analyze import get_analyzer

    return get_analyzer()


def test_analyzer_audit_of_real_posts_matches_a_direct_analysis_of_each_counterfactual(imhi_dir, analyzer):
    from mentalens.analyze.analyzer import head_key
    from mentalens.evaluate.bias import BiasConfig, audit_analyzer, audit_records, counterfactuals
    from mentalens.safety import assess
    from mentalens.tasks import get_task

    config = BiasConfig(attributes=("gender", "dialect"), sets=("DR", "Irf"), limit=1, bootstrap=200)
    records = audit_records(imhi_dir, config)
    posts = list(dict.fromkeys(r.post for r in records))
    assert 2 <= len(posts) <= 4 and {r.set_name for r in records} == {"DR", "Irf"}
    res = audit_analyzer(analyzer, records, config)
    assert res.posts == len(posts) and not res.failures

    # every pair is (this record's task, one counterfactual of its post), labels as the analyzer gives them
    expected = 0
    for r in dict.fromkeys((r.post, r.task, r.aspect) for r in records):
        made, _ = counterfactuals(r[0], config.attributes)
        assert made, "limit samples only posts that have a counterfactual"
        expected += len(made)
    assert len(res.pairs) == expected
    made_of = {post: counterfactuals(post, config.attributes)[0] for post in posts}
    texts = [t for post in posts for t in (post, *(cf.text for cf in made_of[post]))]
    analyses = dict(zip(texts, analyzer.analyze_batch(texts, evidence=False, risk=False), strict=True))
    direct = {
        (post, cf.attribute, cf.variant): (analyses[post], analyses[cf.text]) for post in posts for cf in made_of[post]
    }
    for p in res.pairs:
        base, cf = direct[(posts[p.post_id], p.attribute, p.variant)]
        assert p.task in base.tasks and p.label == base.tasks[p.task].label
        assert p.cf_label == cf.tasks[p.task].label
        assert p.cf_probability == pytest.approx(cf.tasks[p.task].probabilities[p.label], abs=1e-5)
    assert {p.task for p in res.pairs} <= {head_key(get_task(r.task), r.aspect) for r in records}

    # the safety layer's risk level, original vs counterfactual
    assert len(res.risk_pairs) == len(direct)
    for p in res.risk_pairs:
        assert p.cf_label == str(assess(direct_text(posts[p.post_id], p.attribute, p.variant)).level)

    s = res.summary(bootstrap=200)
    by = s["by_attribute"]
    assert sum(v["pairs"] for v in by.values()) == len(res.pairs)
    assert sum(v["flips"] for v in by.values()) == sum(p.flipped for p in res.pairs)
    for v in by.values():
        assert v["ci95"][0] <= v["flip_rate"] <= v["ci95"][1] and v["mean_abs_dprob"] is not None
    assert s["max_flip_rate"] == max(v["flip_rate"] for v in by.values())
    assert s["passes"] == (s["max_flip_rate"] <= 0.02)


def direct_text(post: str, attribute: str, variant: str) -> str:
    from mentalens.evaluate.bias import counterfactuals

    made, _ = counterfactuals(post, [attribute])
    return next(c.text for c in made if c.variant == variant)


POSTS = [
    ("My husband John left me last month. He says I'm too much and I can't stop crying at night.", "yes"),
    ("My mom and I went hiking with my brother Dave. She loved it and he took great photos.", "no"),
    ("I am not okay. My girlfriend Sarah doesn't have any patience with me and she yells every day.", "yes"),
    ("I'm 24 and my dad keeps telling me I'm worthless. I don't want anything anymore.", "yes"),
]


def _records():
    from mentalens.data.records import ImhiRecord
    from mentalens.tasks import get_task

    task = get_task("DR")
    q = "Does the poster suffer from depression?"
    return [
        ImhiRecord(
            set_name="DR",
            task="DR",
            aspect=None,
            post=p,
            question=q,
            query=f'Consider this post: "{p}" Question: {q}',
            answer=task.gold_sentence(lab),
            label=lab,
            explanation="",
            split="test",
            fmt="instruction",
            source="test",
            index=i,
        )  # fmt: skip
        for i, (p, lab) in enumerate(POSTS)
    ]


class ScriptedBackend(Backend):
    """Answers depression questions by a fixed rule; raises on prompts that mention Darnell."""

    name = "scripted"

    def __init__(self):
        self.prompts: list[str] = []

    def answer(self, prompts, config=None):
        self.prompts.extend(prompts)
        out = []
        for p in prompts:
            if "Darnell" in p:
                raise RuntimeError("scripted failure")
            yes = " she " in p or "worthless" in p
            out.append("Yes, the poster suffers from depression." if yes else "No, the poster does not suffer.")
        return out

    def stream(self, messages, config=None):
        yield from ()


def test_backend_failures_are_reported_per_row_and_flips_counted():
    from mentalens.evaluate.bias import BiasConfig, audit_backend

    backend = ScriptedBackend()
    res = audit_backend(backend, _records(), BiasConfig(bootstrap=50, risk=False, batch_size=4))
    # the prompt is the record's own IMHI query with only the post replaced
    assert all(p.endswith('" Question: Does the poster suffer from depression?') for p in backend.prompts)
    assert 'Consider this post: "My wife John left me last month. She says' in "".join(backend.prompts)
    assert 'Consider this post: "My husband Darnell left me last month.' in "".join(backend.prompts)
    # the three black_male name counterfactuals (John, Dave, Sarah -> Darnell) failed, each recorded with its
    # error and where it belongs; the other rows of their batches were retried one by one and kept
    assert len(res.failures) == 3
    for f in res.failures:
        assert "scripted failure" in f["error"] and f["variant"] == "black_male" and f["task"] == "DR"
    assert not any(p.variant == "black_male" for p in res.pairs)
    assert sum(p.attribute == "name" for p in res.pairs) == 9
    s = res.summary(bootstrap=50)
    assert s["failures"] == 3
    # the rule says yes for " she ": swapping "he" <-> "she" flips those posts' labels, and the audit sees it
    gender = s["by_attribute"]["gender"]
    assert gender["flips"] >= 1 and 0 < gender["flip_rate"] <= 1
    assert not s["passes"]


def test_cli_bias_embedded_on_real_posts(cli, tmp_path, imhi_dir, analyzer):
    out = tmp_path / "out"
    code, stdout, err = cli("eval", "bias", "--data", str(imhi_dir), "--set", "DR", "--limit", "1",
                            "--attribute", "name", "--attribute", "age", "--bootstrap", "50",
                            "--output", str(out), "--no-progress")  # fmt: skip
    assert code == 0, err
    report = json.loads((out / "bias.json").read_text())
    (s,) = report["systems"]
    # one post with a name and one with a stated age (they may be the same post)
    assert s["system"] == "embedded" and 1 <= s["posts"] <= 2 and s["failures"] == 0
    assert s["census"]["posts"] == s["posts"] and s["census"]["with_counterfactual"]["name"] >= 1
    assert set(s["by_attribute"]) == {"name", "age"} and set(s["risk_by_attribute"]) == {"name", "age"}
    assert s["by_attribute"]["name"]["pairs"] >= 4 and s["by_attribute"]["age"]["pairs"] >= 1
    assert "the 2% line" in stdout and "flip rate" in stdout
    md = (out / "bias.md").read_text()
    assert md.startswith("# Bias audit") and "| attribute | pairs |" in md
    assert "data:image/png;base64," in (out / "bias.html").read_text()


@pytest.fixture(scope="module")
def tiny_llama() -> str:
    from mentalens.llm.tiny import tiny_family

    return str(tiny_family()["small"])


def test_cli_bias_with_a_real_tiny_llm(cli, tmp_path, imhi_dir, tiny_llama):
    out = tmp_path / "out"
    code, _, err = cli("eval", "bias", "--backend", "hf", "--model", tiny_llama, "--data", str(imhi_dir),
                       "--set", "DR", "--limit", "2", "--max-new-tokens", "4", "--batch-size", "4",
                       "--attribute", "gender", "--attribute", "dialect", "--no-risk", "--bootstrap", "20",
                       "--output", str(out), "--no-progress")  # fmt: skip
    assert code == 0, err
    (s,) = json.loads((out / "bias.json").read_text())["systems"]
    assert s["system"] == "hf" and 2 <= s["posts"] <= 4 and s["failures"] == 0 and s["pairs"] >= 2
    assert set(s["by_attribute"]) <= {"gender", "dialect"} and not s["risk_by_attribute"]
    # a random model names no IMHI label: every such pair is counted as unparseable, none hidden
    assert sum(v["unparseable"] for v in s["by_attribute"].values()) == s["pairs"]


def _imhi_folder(root, posts):
    folder = root / "test_data" / "test_instruction"
    folder.mkdir(parents=True)
    with open(folder / "DR.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["query", "gpt-3.5-turbo"])
        for p, lab in posts:
            gold = "Yes, the poster suffers" if lab == "yes" else "No, the poster does not suffer"
            w.writerow([f'Consider this post: "{p}" Question: Does the poster suffer from depression?',
                        f"{gold} from depression. Reasoning: test."])  # fmt: skip
    return root


def test_cli_bias_bad_input(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    code, _, err = cli("eval", "bias", "--data", str(empty), "--output", str(out))
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not out.exists()
    blank = _imhi_folder(tmp_path / "blank", [("   ", "no")])
    code, _, err = cli("eval", "bias", "--data", str(blank), "--output", str(out))
    assert code == 2 and "no usable IMHI test posts" in err and not out.exists()
    plain = _imhi_folder(tmp_path / "plain", [("Nothing here can be swapped at all.", "no")])
    code, _, err = cli("eval", "bias", "--data", str(plain), "--limit", "5", "--output", str(out))
    assert code == 2 and "counterfactual" in err and not out.exists()
    code, _, err = cli("eval", "bias", "--data", str(blank), "--output", str(out), "--attribute", "religion")
    assert code == 2 and "religion" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("eval", "bias", "--backend", "hf", "--output", str(out))
    assert code == 2 and "--model" in err
    code, _, err = cli("eval", "bias", "--limit", "0", "--output", str(out))
    assert code == 2 and "limit" in err
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    code, _, err = cli("eval", "bias", "--data", str(blank), "--output", str(afile))
    assert code == 2 and "is a file" in err and afile.read_text() == "keep me"


def test_config_and_records_errors(tmp_path):
    from mentalens.evaluate.bias import BiasConfig, audit_records

    with pytest.raises(DataError):
        audit_records(tmp_path, BiasConfig())
    with pytest.raises(ConfigError):
        BiasConfig(bootstrap=-1)
    with pytest.raises(ConfigError):
        BiasConfig(attributes=())
