"""The data layer on the real public data: loaders, leakage guard, exports, fetch, and bad input."""

from __future__ import annotations

import collections
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from mentalens.data import (
    CSSRS_LEVELS,
    GOEMOTIONS_LABELS,
    LeakageGuard,
    load_cams_raw,
    load_counselchat,
    load_cssrs,
    load_goemotions,
    load_imhi,
    load_imhi_file,
    load_irf_raw,
    normalize_post,
    read_jsonl,
    to_dataset,
    to_messages,
    to_prompt_completion,
)
from mentalens.data import fetch as fetch_mod
from mentalens.errors import DataError, UnknownNameError
from mentalens.tasks import get_task

TEST_SIZES = {
    "CAMS": 625,
    "DR": 405,
    "Irf": 2113,
    "MultiWD": 2441,
    "SAD": 684,
    "dreaddit": 414,
    "loneliness": 528,
    "t-sid": 959,
}


@pytest.fixture(scope="session")
def imhi_test(data_dir):
    return load_imhi(data_dir, split="test", fmt="instruction")


@pytest.fixture(scope="session")
def guard(data_dir):
    return LeakageGuard.from_data_dir(data_dir)


def test_imhi_test_sets_have_the_documented_sizes(imhi_test, data_dir):
    counts = collections.Counter(r.set_name for r in imhi_test)
    assert counts == TEST_SIZES
    complete = load_imhi(data_dir, split="test", fmt="complete")
    assert collections.Counter(r.set_name for r in complete) == TEST_SIZES


def test_imhi_records_carry_post_question_task_label_explanation(imhi_test):
    # one gold answer in the release ("Yes, the post shows this risk. Reasoning: ") has no explanation
    assert sum(not r.explanation for r in imhi_test) == 1
    for r in imhi_test:
        task = get_task(r.task)
        assert r.post and r.question
        assert r.label in task.labels
        assert r.query.startswith("Consider this post:")
        assert r.post in r.query and r.question in r.query
        if task.aspects:
            assert r.aspect in task.aspects, r.question
        else:
            assert r.aspect is None and r.question == task.question()


def test_completion_format_posts_match_instruction_posts(data_dir):
    inst = load_imhi(data_dir, split="test", fmt="instruction", sets=["DR"])
    comp = load_imhi(data_dir, split="test", fmt="complete", sets=["DR"])
    # the two formats truncate long posts at different points: one is always a prefix of the other
    for a, b in zip(inst, comp, strict=True):
        x, y = normalize_post(a.post), normalize_post(b.post)
        assert x.startswith(y) or y.startswith(x)
    assert [r.label for r in inst] == [r.label for r in comp]


def test_train_and_val_files_and_completion_training_layout(data_dir):
    train = load_imhi(data_dir, split="train", fmt="complete", sets=["SAD"])
    assert len(train) == 5547 and all(r.split == "train" and r.fmt == "complete" for r in train)
    assert not train[0].post.startswith("Post:") and train[0].label is not None
    val = load_imhi(data_dir, split="val", sets=["Irf"])
    assert {r.fmt for r in val} == {"instruction", "complete"} and all(r.split == "val" for r in val)


def test_query_only_files_load_without_gold(tmp_path):
    f = tmp_path / "dreaddit.csv"
    f.write_text(
        'query\n"Consider this post: ""Deadlines everywhere."" Question: Does the poster suffer from stress?"\n'
    )
    (rec,) = load_imhi_file(f)
    assert rec.post == "Deadlines everywhere." and rec.label is None and rec.answer == ""


def test_single_csv_and_any_folder_of_imhi_csvs(tmp_path, imhi_dir):
    src = imhi_dir / "test_data" / "test_instruction"
    one = load_imhi(src / "dreaddit.csv")
    assert len(one) == 414 and one[0].set_name == "dreaddit"
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(src / "DR.csv", folder / "DR.csv")
    shutil.copy(src / "t-sid.csv", folder / "my_tsid_sample.csv")  # set recognised from its questions
    recs = load_imhi(folder)
    assert collections.Counter(r.set_name for r in recs) == {"DR": 405, "t-sid": 959}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"text,label\nhello,1\n", "expected a 'query' column"),
        (b'query,gpt-3.5-turbo\n"Consider this post: \xff\xfe bad" Question: x,y\n', "not valid UTF-8"),
        (b"query\n", "no rows"),
    ],
)
def test_bad_imhi_files_give_one_clear_error(tmp_path, content, message):
    f = tmp_path / "DR.csv"
    f.write_bytes(content)
    with pytest.raises(DataError) as exc:
        load_imhi_file(f)
    assert message in str(exc.value) and str(f) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_names_and_missing_folders(tmp_path, data_dir):
    with pytest.raises(UnknownNameError):
        load_imhi(data_dir, sets=["depresion"])
    with pytest.raises(UnknownNameError):
        load_imhi(data_dir, split="dev")
    with pytest.raises(DataError, match="not found"):
        load_imhi(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no IMHI CSV files"):
        load_imhi(tmp_path / "empty")


def test_counselchat_pairs_with_splits_and_no_therapist_identity(data_dir):
    recs = load_counselchat(data_dir)
    assert len(recs) == 2129
    assert collections.Counter(r.split for r in recs) == {"train": 1839, "val": 173, "test": 117}
    assert len({r.question_id for r in recs}) == 815 and len({r.topic for r in recs}) == 31
    fields = set(recs[0].to_dict())
    assert not {"therapistInfo", "therapistURL", "questionLink"} & fields
    assert all(r.context and r.answer for r in recs)
    assert len(load_counselchat(data_dir, split="test")) == 117


def test_goemotions_splits_and_labels(data_dir):
    sizes = {s: len(load_goemotions(data_dir, s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 43410, "dev": 5426, "test": 5427}
    dev = load_goemotions(data_dir, "dev")
    assert len(GOEMOTIONS_LABELS) == 28
    labels = collections.Counter(lab for r in dev for lab in r.labels)
    assert set(labels) == set(GOEMOTIONS_LABELS)
    assert labels.most_common(1)[0][0] == "neutral"


def test_raw_sets(data_dir):
    cams = load_cams_raw(data_dir)
    assert len(cams) > 3000 and {r.labels["cause"] for r in cams} >= {"none", "alienation", "relationship"}
    # the file mixes UTF-8 and Windows-1252: both decode to the same apostrophe
    assert any("It’s" in r.text for r in cams) and not any("â€™" in r.text for r in cams)
    irf = load_irf_raw(data_dir, "train")
    assert len(irf) == 1972 and {r.labels["belong"] for r in irf} == {0, 1}
    cssrs = load_cssrs(data_dir)
    assert len(cssrs) == 500
    assert {r.labels["cssrs"] for r in cssrs} == set(CSSRS_LEVELS)
    assert all(r.posts and isinstance(r.posts, tuple) for r in cssrs)


def test_normalize_post_ignores_case_punctuation_and_mojibake():
    assert normalize_post("It’s  over!!") == normalize_post("its over") == "itsover"
    assert normalize_post("itâ€™s over") == "itsover"


def test_leakage_guard_drops_every_imhi_test_post(guard, data_dir, imhi_test):
    assert all(guard.contains(r.post) for r in imhi_test)
    # raw CAMS holds every IMHI CAMS test post, some with different endings: none survives the guard
    cams = load_cams_raw(data_dir)
    kept, report = guard.filter(cams, lambda r: r.text, "cams")
    assert report.dropped >= 625 and report.kept == len(kept) == len(cams) - report.dropped
    test_prefixes = {normalize_post(r.post)[:100] for r in imhi_test if r.set_name == "CAMS"}
    assert not any(normalize_post(r.text)[:100] in test_prefixes for r in kept)
    # the raw IRF test split is the IMHI Irf test set
    irf_test = load_irf_raw(data_dir, "test")
    kept, report = guard.filter(irf_test, lambda r: r.text, "irf")
    assert kept == [] and report.dropped == len(irf_test)
    assert "dropped" in str(report)


def test_leakage_guard_keeps_unrelated_training_posts(guard, data_dir):
    train = load_imhi(data_dir, split="train", fmt="instruction", sets=["SAD"])
    kept, report = guard.filter(train)
    assert report.dropped <= 3 and len(kept) >= len(train) - 3
    assert not guard.contains("A brand new post about my cat that nobody has ever written before today.")


def test_exports(tmp_path, data_dir):
    rec = load_imhi(data_dir, split="val", fmt="instruction", sets=["DR"])[0]
    msg = to_messages(rec)["messages"]
    assert [m["role"] for m in msg] == ["user", "assistant"]
    assert msg[0]["content"] == rec.query and msg[1]["content"] == rec.answer
    pc = to_prompt_completion(rec)
    assert pc["prompt"] == rec.query and pc["completion"].strip() == rec.answer
    counsel = load_counselchat(data_dir, split="val")[:3]
    cm = to_messages(counsel[0])["messages"]
    assert cm[0]["role"] == "system" and cm[1]["content"] == counsel[0].context
    ds = to_dataset([rec, *counsel], fmt="prompt_completion")
    assert ds.column_names == ["prompt", "completion"] and len(ds) == 4


def test_cli_export_is_leakage_guarded_and_refuses_test_split(cli, tmp_path, data_dir):
    out = tmp_path / "train.jsonl"
    code, stdout, _ = cli("data", "export", str(out), "--data", str(data_dir), "--set", "dreaddit")
    assert code == 0, stdout
    rows = read_jsonl(out)
    assert len(rows) == 2837 - 2 and "dropped 2" in stdout.replace("\n", " ")
    code, _, err = cli("data", "export", str(tmp_path / "t.jsonl"), "--split", "test")
    assert code == 2 and "test posts are for evaluation only" in err
    assert not (tmp_path / "t.jsonl").exists()


def test_cli_stats_and_bad_paths(cli, tmp_path, data_dir):
    code, out, _ = cli("data", "stats", str(data_dir / "imhi" / "test_data" / "test_instruction"))
    assert code == 0 and "loneliness" in out and "528" in out
    code, _, err = cli("data", "stats", str(tmp_path / "missing"))
    assert code == 2 and err.count("\n") == 1 and "not found" in err


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support (like raw.githubusercontent.com)."""

    requests: list[str] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        _RangeHandler.requests.append(rng or "")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            body = data[start:]
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def file_server(data_dir):
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(data_dir), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _manifest_entry(path: str) -> fetch_mod.DataFile:
    return next(f for f in fetch_mod.manifest()[1] if f.path == path)


def test_fetch_downloads_resumes_and_verifies(tmp_path, file_server, data_dir):
    real = _manifest_entry("imhi/test_data/test_instruction/DR.csv")
    f = fetch_mod.DataFile(real.path, f"{file_server}/{real.path}", real.sha256, real.size)
    dest = tmp_path / "data"
    # an interrupted earlier download left half the file
    part = dest / (real.path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes((data_dir / real.path).read_bytes()[: real.size // 2])
    _RangeHandler.requests.clear()
    assert fetch_mod.download(f, dest) == "ok"
    assert _RangeHandler.requests == [f"bytes={real.size // 2}-"]
    assert (dest / real.path).read_bytes() == (data_dir / real.path).read_bytes()
    assert not part.exists()
    assert fetch_mod.download(f, dest) == "present"
    # a corrupted source never lands under the real name
    bad = fetch_mod.DataFile("imhi/x.csv", f"{file_server}/{real.path}", "0" * 64, real.size)
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch_mod.download(bad, dest)
    assert not (dest / "imhi/x.csv").exists() and not (dest / "imhi/x.csv.part").exists()


def test_fetch_from_local_folder_and_manifest_covers_the_data(cli, tmp_path, data_dir):
    sources, files = fetch_mod.manifest()
    assert set(sources) == {"imhi", "goemotions", "counselchat", "raw/irf", "raw/cams", "raw/cssrs", "hotlines"}
    assert all(f.url.startswith("https://raw.githubusercontent.com/") and len(f.sha256) == 64 for f in files)
    dest = tmp_path / "copy"
    code, out, err = cli(
        "data", "fetch", str(dest), "--from", str(data_dir), "--only", "raw/cssrs", "--only", "hotlines"
    )
    assert code == 0, err
    assert (dest / "raw/cssrs/500_Reddit_users_posts_labels.csv").is_file()
    assert "SOURCES.md" in {p.name for p in dest.iterdir()}
    assert len(load_cssrs(dest)) == 500
    code, _, err = cli("data", "fetch", str(dest), "--only", "nonsense")
    assert code == 2 and "unknown data group" in err


def test_manifest_checksums_match_the_local_copy(data_dir):
    _, files = fetch_mod.manifest()
    for f in files:
        p = data_dir / f.path
        assert p.is_file(), f.path
        assert p.stat().st_size == f.size
    sample = [f for f in files if f.path.endswith(("DR.csv", "labels.txt"))]
    assert all(fetch_mod.sha256_of(data_dir / f.path) == f.sha256 for f in sample)
    assert json.loads((data_dir / "hotlines/suicide-hotlines.json").read_text())  # real JSON


def test_write_json_is_whole_or_leaves_the_old_file(tmp_path) -> None:
    from mentalens.data.io import write_json

    out = tmp_path / "results" / "bench.json"
    write_json({"b": 1, "a": [1, 2]}, out, sort_keys=True)
    text = out.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"') and json.loads(text) == {"a": [1, 2], "b": 1}
    with pytest.raises(TypeError):
        write_json({"a": object()}, out)  # cannot be serialised half way: the earlier file stays as it was
    assert out.read_text(encoding="utf-8") == text and [p.name for p in out.parent.iterdir()] == ["bench.json"]
