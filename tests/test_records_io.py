"""Run records on disk (xlbench.records): where a record goes, that it reads back equal, that a
corrupt or unreadable one is reported in one line (and yielded, not raised, when iterating), and
how a run id prefix finds a record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.fake_records import make_record
from xlbench.records import (
    SCHEMA_VERSION,
    CorruptRecord,
    RunRecord,
    find_record,
    iter_records,
    read_record,
    recompute_run_id,
    record_path,
    write_record,
)


def test_a_record_goes_to_method_slash_run_id_and_reads_back_equal(tmp_path: Path) -> None:
    rec = make_record("dann", seed=1)
    path = write_record(rec, tmp_path)
    assert path == tmp_path / "dann" / f"{rec.run_id}.json" == record_path(rec.run_id, "dann", tmp_path)
    text = path.read_text()
    assert text.endswith("}\n") and "\n" not in text[:-1]  # compact, one line
    assert read_record(path) == rec
    assert recompute_run_id(read_record(path)) == rec.run_id
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name]  # no temporary file left
    assert rec.schema_version == SCHEMA_VERSION == json.loads(text)["schema_version"]


def test_record_path_defaults_to_the_results_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XLBENCH_HOME", str(tmp_path))
    from xlbench.home import results_dir

    assert record_path("abc", "dann") == results_dir() / "dann" / "abc.json"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{", "is corrupt or of another schema"),
        ('{"schema_version": 2}', "is corrupt or of another schema"),
        (b"\xff\xfe", "is corrupt or of another schema"),
    ],
)
def test_a_corrupt_record_is_one_line(tmp_path: Path, content: str | bytes, reason: str) -> None:
    path = tmp_path / "dann" / "x.json"
    path.parent.mkdir()
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(CorruptRecord) as err:
        read_record(path)
    message = str(err.value)
    assert message.startswith(f"record {path} {reason} (") and "\n" not in message
    if content == "{":  # the parser's first line, not its second
        assert message == f"record {path} {reason} (1 validation error for RunRecord)"


def test_an_unreadable_record_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "dann" / "x.json"
    folder.mkdir(parents=True)  # a folder where a file should be
    with pytest.raises(CorruptRecord, match=r"cannot be read \(") as err:
        read_record(folder)
    assert str(err.value) == f"record {folder} cannot be read (Is a directory)"


def test_iterating_yields_corrupt_records_as_errors(tmp_path: Path) -> None:
    good = [write_record(make_record("dann", seed=s), tmp_path) for s in (0, 1)]
    bad = tmp_path / "crosslingual" / "broken.json"
    bad.parent.mkdir()
    bad.write_text("{")
    (tmp_path / "notes.json").write_text("{}")  # not <method>/<id>.json: not a record
    seen = list(iter_records(tmp_path))
    assert [p for p, _ in seen] == sorted([*good, bad])
    kinds = {p: type(r) for p, r in seen}
    assert kinds[bad] is CorruptRecord and all(kinds[p] is RunRecord for p in good)


def test_a_run_id_prefix_finds_one_record(tmp_path: Path) -> None:
    recs = [make_record("dann", seed=s) for s in range(6)]
    paths = {r.run_id: write_record(r, tmp_path) for r in recs}
    rid = recs[0].run_id
    assert find_record(rid, tmp_path) == paths[rid]
    assert find_record(rid[:12], tmp_path) == paths[rid]
    assert find_record("", tmp_path) is None  # every record matches: ambiguous
    assert find_record("zz", tmp_path) is None
