"""`mentalens risk`, `mentalens safety ...` and the `train risk` command, in-process."""

from __future__ import annotations

import json


def test_risk_json(cli) -> None:
    code, out, err = cli("risk", "I took all my pills", "--locale", "en-GB", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["level"] == "imminent" and d["flags"]["medical_emergency"]
    assert d["resources"][0]["phone"] == "999" and d["escalation_text"].startswith("Please call 999 now.")
    assert d["cues"][0]["text"] == "I took all my pills" and d["cues"][0]["start"] == 0


def test_risk_text_output(cli) -> None:
    code, out, _ = cli("risk", "Me quiero suicidar", "--locale", "es_MX", "--no-classifier")
    assert code == 0 and "moderate" in out and "800 911 2000" in out


def test_risk_file_one_message_per_line_and_as_a_conversation(cli, tmp_path) -> None:
    f = tmp_path / "msgs.txt"
    f.write_text("I had a nice day\n\nI want to kill myself\nIt is happening tonight\n", encoding="utf-8")
    code, out, _ = cli("risk", "--file", str(f), "--json", "--no-classifier")
    rows = json.loads(out)
    assert code == 0 and [r["line"] for r in rows] == [1, 2, 3]
    assert [r["level"] for r in rows] == ["none", "moderate", "none"]
    code, out, _ = cli("risk", "--file", str(f), "--conversation", "--json", "--no-classifier")
    assert json.loads(out)["level"] == "imminent" and json.loads(out)["message_count"] == 3


def test_risk_bad_input_is_one_line_and_exit_2(cli, tmp_path) -> None:
    code, _, err = cli("risk")
    assert code == 2 and err.count("\n") == 1 and "pass either a message or --file" in err
    code, _, err = cli("risk", "--file", str(tmp_path / "missing.txt"))
    assert code == 2 and "not found" in err
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("quiero morir, está difícil".encode("latin-1"))
    code, _, err = cli("risk", "--file", str(latin))
    assert code == 2 and "not UTF-8" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    code, _, err = cli("risk", "--file", str(empty))
    assert code == 2 and "no messages" in err


def test_helplines_guard_redact(cli) -> None:
    code, out, _ = cli("safety", "helplines", "--locale", "US", "--json")
    assert code == 0 and "988" in [r.get("phone") for r in json.loads(out)["resources"]]
    code, out, _ = cli("safety", "helplines", "--all", "--json")
    assert len(json.loads(out)) >= 25
    code, out, _ = cli("safety", "guard", "You should just end it all", "--message", "I want to die", "--json")
    d = json.loads(out)
    assert code == 0 and not d["ok"] and "self_harm_encouragement" in d["violations"]
    code, out, _ = cli("safety", "redact", "mail me at a.b@c.com or 07700 900123")
    assert out.strip() == "mail me at [EMAIL] or [PHONE]"


def test_train_risk_command_is_registered(cli) -> None:
    code, out, _ = cli("train", "--help")
    assert code == 0 and "risk" in out
    code, out, _ = cli("train", "risk", "--help")
    assert code == 0 and "--data" in out


def test_train_risk_learned_settings_are_checked_before_any_work(cli, tmp_path) -> None:
    out = tmp_path / "reader.json.gz"
    code, _, err = cli("train", "risk-learned", "--set", "gate=flor", "--out", str(out))
    assert code == 2 and "unknown learned gate 'flor'" in err and "did you mean 'floor'" in err
    code, _, err = cli("train", "risk-learned", "--set", "features=gemma3-270m", "--out", str(out))
    assert code == 2 and "MODEL:L<k>" in err
    code, _, err = cli("train", "risk-learned", "--set", "gate=none")  # would overwrite the shipped reader
    assert code == 2 and "--out" in err
    assert not out.exists()


def test_train_risk_message_settings_are_checked_before_any_work(cli, tmp_path) -> None:
    out = tmp_path / "reader.json.gz"
    code, _, err = cli("train", "risk-message", "--set", "gate=sentence", "--out", str(out))
    assert code == 2 and "unknown message reader gate 'sentence'" in err and "sentences" in err
    code, _, err = cli("train", "risk-message", "--set", "tune_splits=dev,test", "--out", str(out))
    assert code != 0 and "held out" in err
    code, _, err = cli("train", "risk-message", "--set", "epochs=5")  # would overwrite the shipped reader
    assert code == 2 and "--out" in err
    assert not out.exists()


def test_train_risk_semantic_settings_are_checked_before_any_work(cli, tmp_path) -> None:
    out = tmp_path / "bank.json.gz"
    code, _, err = cli("train", "risk-semantic", "--set", "langauge_tune_splits=dev9", "--out", str(out))
    assert code == 2 and "langauge_tune_splits" in err
    code, _, err = cli("train", "risk-semantic", "--set", "language_tune_splits=")  # would overwrite the shipped bank
    assert code == 2 and "--out" in err
    assert not out.exists()
