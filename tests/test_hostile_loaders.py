"""Hostile files (hypothesis): every data loader given arbitrary bytes, or a table with the right header and
arbitrary cells, returns records that keep the loader's invariants or raises one DataError. Never another
exception, never a label outside the label set.

The checks are plain functions over one generated file, reused with far more examples by
`tests/reliability/test_hostile_deep.py`.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mentalens.data import (
    GOEMOTIONS_LABELS,
    load_cams_raw,
    load_counselchat,
    load_cssrs,
    load_goemotions,
    load_imhi,
    load_irf_raw,
    read_jsonl,
)
from mentalens.data.imhi import load_imhi_file
from mentalens.data.raw import CAMS_CAUSES, CSSRS_LEVELS
from mentalens.errors import DataError
from mentalens.tasks import get_task

FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# -- strategies -------------------------------------------------------------------------------------------------
CELL_WORDS = ("", " ", "0", "1", "-1", "27", "28", "5", "nan", "inf", "-inf", "1e400", "1.5", "yes", "no", "None",
              "[", "]", "[[[[", "['a', 'b']", "'x'", "{}", "{'a': 1}", "()", "7", "Supportive", "Attempt", "1,2",
              "0,-1", "Reasoning:", "\"", '""', "\\", "\r", "\x00", "é", "\ufeff", "Post: I am sad. Question: x")
cells = st.one_of(st.sampled_from(CELL_WORDS), st.text(max_size=30),
                  st.lists(st.sampled_from(CELL_WORDS), max_size=4).map(" ".join))
raw_bytes = st.one_of(st.binary(max_size=400), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      st.binary(max_size=200).map(lambda b: b"\xef\xbb\xbf" + b))  # BOM + junk


def table(columns: tuple[str, ...], sep: str = ","):
    """A file with the given header and arbitrary cells (ragged rows included), as bytes in some encoding."""

    def render(rows: list[list[str]], header: bool, encoding: str) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=sep, lineterminator="\n")
        if header:
            w.writerow(columns)
        for r in rows:
            w.writerow(r)
        return buf.getvalue().encode(encoding, errors="replace")

    n = len(columns)
    row = st.one_of(st.lists(cells, min_size=n, max_size=n), st.lists(cells, min_size=max(1, n - 1), max_size=n + 1))
    return st.builds(render, st.lists(row, max_size=6), st.booleans().map(lambda b: b or sep == ","),
                     st.sampled_from(["utf-8", "utf-8", "cp1252", "latin-1", "utf-16"]))


def file_contents(columns: tuple[str, ...], sep: str = ","):
    return st.one_of(raw_bytes, table(columns, sep))


# -- the loaders, each writing the bytes where it looks for its file --------------------------------------------
def _in(tmp: Path, rel: str, data: bytes) -> Path:
    p = tmp / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _imhi(tmp: Path, data: bytes) -> list:
    _in(tmp, "test_data/test_instruction/DR.csv", data)
    return load_imhi(tmp)


def _imhi_unknown_set(tmp: Path, data: bytes) -> list:  # the set must be detected from the question
    return load_imhi_file(_in(tmp, "mystery.csv", data))


def _counselchat(tmp: Path, data: bytes) -> list:
    return load_counselchat(_in(tmp, "counsel.csv", data))


def _goemotions(tmp: Path, data: bytes) -> list:
    _in(tmp, "train.tsv", data)
    return load_goemotions(tmp, "train")


def _irf(tmp: Path, data: bytes) -> list:
    _in(tmp, "train_data.csv", data)
    return load_irf_raw(tmp, "train")


def _cams(tmp: Path, data: bytes) -> list:
    _in(tmp, "added_CAMS_data.csv", data)
    return load_cams_raw(tmp)


def _cssrs(tmp: Path, data: bytes) -> list:
    _in(tmp, "500_Reddit_users_posts_labels.csv", data)
    return load_cssrs(tmp)


def _jsonl(tmp: Path, data: bytes) -> list:
    return read_jsonl(_in(tmp, "rows.jsonl", data))


def _imhi_ok(records: list) -> None:
    dr = get_task("DR")
    for r in records:
        assert isinstance(r.post, str) and isinstance(r.query, str)
        assert r.label is None or r.label in get_task(r.task).labels
        assert r.set_name != "DR" or r.task == dr.name


def _counsel_ok(records: list) -> None:
    for r in records:
        assert r.answer.strip() and isinstance(r.upvotes, int) and r.split in ("train", "val", "test") or r.split


def _goemotions_ok(records: list) -> None:
    for r in records:
        assert set(r.labels) <= set(GOEMOTIONS_LABELS), r.labels


def _irf_ok(records: list) -> None:
    for r in records:
        assert r.labels["belong"] in (0, 1) and r.labels["burden"] in (0, 1), r.labels


def _cams_ok(records: list) -> None:
    for r in records:
        assert r.labels["cause"] in CAMS_CAUSES and r.text.strip()


def _cssrs_ok(records: list) -> None:
    for r in records:
        assert r.labels["cssrs"] in CSSRS_LEVELS and all(isinstance(p, str) for p in r.posts)


def _jsonl_ok(rows: list) -> None:
    assert all(isinstance(r, dict) for r in rows)


LOADERS: dict[str, tuple[Callable[[Path, bytes], list], Callable[[list], None], object]] = {
    "imhi": (_imhi, _imhi_ok, file_contents(("query", "gpt-3.5-turbo"))),
    "imhi_detect": (_imhi_unknown_set, _imhi_ok, file_contents(("post", "question", "response"))),
    "counselchat": (_counselchat, _counsel_ok, file_contents(("questionID", "questionTitle", "questionText", "topic",
                                                              "answerText", "upvotes", "split"))),
    "goemotions": (_goemotions, _goemotions_ok, file_contents(("text", "labels", "id"), sep="\t")),
    "irf": (_irf, _irf_ok, file_contents(("text", "belong", "burden", "belong_exp", "burden_exp"))),
    "cams": (_cams, _cams_ok, file_contents(("selftext", "cause", "inference"))),
    "cssrs": (_cssrs, _cssrs_ok, file_contents(("User", "Post", "Label"))),
    "jsonl": (_jsonl, _jsonl_ok, st.one_of(raw_bytes, st.lists(cells).map(lambda c: "\n".join(c).encode()))),
}


def check_loader(name: str, data: bytes) -> None:
    """Records that keep the invariants, or one DataError with a one-line message; nothing else."""
    load, ok, _ = LOADERS[name]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            records = load(Path(tmp), data)
        except DataError as exc:
            message = str(exc)
            assert message and "\n" not in message and "Traceback" not in message, message
            return
        ok(records)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_a_loader_given_any_file_returns_records_or_one_data_error(name):
    @FAST
    @given(LOADERS[name][2])
    def run(data):
        check_loader(name, data)

    run()


REGRESSIONS = [  # (loader, file, what must come out: "error" = one DataError, or the number of records)
    ("goemotions", b"hello\t-1\tx1\n", "error"),  # -1 once indexed the last label ("neutral")
    ("irf", b"text,belong,burden\nsad,inf,0\n", "error"),  # OverflowError
    ("irf", b"text,belong,burden\nsad,7,0\n", "error"),  # 7 was kept as a 0/1 label
    ("cams", b"selftext,cause\nsad,-1\nglad,1\n", 1),  # -1 once became "alienation"
    ("cams", b"selftext,cause\nsad,1e400\n", 0),  # OverflowError
    ("cssrs", b"User,Post,Label\nu1,5,Attempt\n", 1),  # TypeError: 'int' object is not iterable
    ("cssrs", b"User,Post,Label\nu1,\"{'a': 1}\",Attempt\n", 1),  # a dict's keys became the posts
    ("cssrs", b"User,Post,Label\nu1," + b"[" * 400 + b",Attempt\n", 1),
    ("counselchat", b"questionID,questionTitle,questionText,topic,answerText,upvotes\n1,t,q,x,an answer,1e400\n", 1),
]


@pytest.mark.parametrize(("name", "data", "expected"), REGRESSIONS)
def test_cells_that_once_broke_a_loader(name, data, expected, tmp_path):
    check_loader(name, data)
    load, _, _ = LOADERS[name]
    if expected == "error":
        with pytest.raises(DataError):
            load(tmp_path, data)
    else:
        records = load(tmp_path, data)
        assert len(records) == expected
        if name == "cssrs":
            assert records[0].posts == (data.split(b",", 3)[3].rsplit(b",", 1)[0].decode().strip('"'),)
