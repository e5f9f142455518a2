"""`xlbench data import`: parquet copies built here (audio bytes + original names), read locally
and through a Hub file API on 127.0.0.1."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from tests import corpus_fixtures as fx
from tests.loopback import LoopbackServer
from xlbench.cli import main
from xlbench.manifest import Manifest, load_manifest

datasets = pytest.importorskip("datasets")
datasets.disable_progress_bars()


def one_line_error(res: Result, *fragments: str) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, res.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def write_parquet(folder: Path, rows: list[dict], *, shards: int = 2) -> list[Path]:
    """``rows`` as a Hub-style parquet data set (audio feature in the schema), in ``shards`` files."""
    out = []
    for k in range(shards):
        part = rows[k::shards]
        columns = {key: [r[key] for r in part] for key in part[0]}
        ds = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio())
        path = folder / "data" / f"train-{k:05d}-of-{shards:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(path))
        out.append(path)
    return out


def emodb_rows(root: Path, *, name: str = "path", flac: bool = False) -> list[dict]:
    """One row per file of an EMO-DB tree: the audio bytes and, as Hub copies do, labels in columns."""
    rows = []
    for wav in sorted((root / "wav").glob("*.wav")):
        data = wav.read_bytes()
        if flac:
            samples, rate = sf.read(wav, dtype="int16")
            buf = io.BytesIO()
            sf.write(buf, samples, rate, format="FLAC", subtype="PCM_16")
            data = buf.getvalue()
        path = f"/home/uploader/emodb/wav/{wav.stem}.{'flac' if flac else 'wav'}" if name == "path" else None
        row = {"audio": {"bytes": data, "path": path}, "emotion": wav.stem[5], "speaker_id": wav.stem[:2]}
        if name == "column":
            row["file"] = wav.name
        rows.append(row)
    return rows


def same_utterances(a: Manifest, b: Manifest) -> None:
    def key(m: Manifest) -> list[dict]:
        return [u.model_dump(exclude={"path"}) for u in sorted(m.utterances, key=lambda u: u.id)]

    assert key(a) == key(b)
    assert (a.files_seen, a.dropped, a.excluded) == (b.files_seen, b.dropped, b.excluded)


@pytest.fixture(scope="module")
def emodb_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_emodb(tmp_path_factory.mktemp("emodb"), speakers=("03", "08", "09"))


def prepared_directly(root: Path) -> Manifest:
    """The manifest of the same files prepared from a folder (the import writes them flat, by name)."""
    res = CliRunner().invoke(main, ["data", "prepare", "--corpus", "emodb", "--root", str(root / "wav")])
    assert res.exit_code == 0, res.output
    return load_manifest("emodb")


@pytest.mark.parametrize("name", ["path", "column"])
def test_import_then_prepare_gives_the_manifest_of_the_folder(
    emodb_tree: Path, tmp_path: Path, private_home: Path, name: str
) -> None:
    direct = prepared_directly(emodb_tree)
    write_parquet(tmp_path / "copy", emodb_rows(emodb_tree, name=name))
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", str(tmp_path / "copy")])
    assert res.exit_code == 0, res.output
    imported = load_manifest("emodb")
    assert Path(imported.root) == (private_home / "corpora" / "emodb").resolve()
    same_utterances(direct, imported)  # same ids, speakers, labels, durations and content hashes
    assert imported.source["kind"] == "hub" and imported.source["revision"] is None
    assert imported.source["name_column"] == ("audio.path" if name == "path" else "file")
    assert "| total" in res.output  # the validation table of `data prepare`


def test_flac_copies_are_decoded_with_soundfile(emodb_tree: Path, tmp_path: Path, private_home: Path) -> None:
    write_parquet(tmp_path / "copy", emodb_rows(emodb_tree, flac=True), shards=1)
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", str(tmp_path / "copy")])
    assert res.exit_code == 0, res.output
    imported = load_manifest("emodb")
    originals = sorted((emodb_tree / "wav").glob("*.wav"))
    assert len(list((private_home / "corpora" / "emodb").glob("*.wav"))) == len(originals)
    for wav in originals[:20]:
        a, ra = sf.read(wav, dtype="int16")
        b, rb = sf.read(private_home / "corpora" / "emodb" / wav.name, dtype="int16")
        assert ra == rb and np.array_equal(a, b)
    assert len(imported.utterances) == len(prepared_directly(emodb_tree).utterances)


def test_a_copy_without_file_names_is_refused(emodb_tree: Path, tmp_path: Path, private_home: Path) -> None:
    rows = emodb_rows(emodb_tree)
    for i, r in enumerate(rows):  # what many Hub copies do: numbered files, labels in a column
        r["audio"]["path"] = f"emodb_{i:04d}.wav"
    write_parquet(tmp_path / "anonymous", rows)
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", str(tmp_path / "anonymous")])
    one_line_error(
        res,
        "keeps no original EMO-DB",
        "'emodb_0000.wav' is not a file name of EMO-DB",
        "speaker-independent splits are impossible",
    )
    assert not (private_home / "corpora").exists() or list((private_home / "corpora").iterdir()) == []
    assert load_manifest("emodb") is None


def test_a_copy_of_another_corpus_is_refused(tmp_path: Path, private_home: Path) -> None:
    root = fx.make_emovo(tmp_path / "emovo")
    rows = [{"audio": {"bytes": p.read_bytes(), "path": p.name}} for p in sorted(root.rglob("*.wav"))]
    write_parquet(tmp_path / "copy", rows, shards=1)
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", str(tmp_path / "copy")])
    one_line_error(res, "keeps no original EMO-DB file names", "dis-f1-b1.wav")
    assert load_manifest("emodb") is None


@pytest.fixture
def hub_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XLBENCH_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    with LoopbackServer() as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        yield srv


def test_import_from_the_hub_pins_the_revision(
    hub_server: LoopbackServer, emodb_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shards = write_parquet(tmp_path / "copy", emodb_rows(emodb_tree))
    files = {f"data/{p.name}": p.read_bytes() for p in shards} | {"README.md": b"# EMO-DB copy\n"}
    commit = hub_server.add_commit("someone/emodb", files, kind="datasets")
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", "someone/emodb"])
    assert res.exit_code == 0, res.output
    manifest = load_manifest("emodb")
    assert manifest.source["repo"] == "someone/emodb" and manifest.source["revision"] == commit
    assert f"at revision {commit}" in res.output
    fetched = [p for p in hub_server.requests_to("/datasets/someone/emodb/resolve/") if p.startswith("GET")]
    assert sorted(p.rsplit("/", 1)[-1] for p in fetched) == sorted(p.name for p in shards)  # no README

    # again, offline: from the cache, nothing asked of the server
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub_server.log)
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", "someone/emodb"])
    assert res.exit_code == 0, res.output
    assert len(hub_server.log) == before and load_manifest("emodb").source["revision"] == commit


def test_hub_repositories_without_parquet_or_unknown_are_one_line(hub_server: LoopbackServer) -> None:
    hub_server.add_commit("someone/scripted", {"scripted.py": b"# a loading script\n"}, kind="datasets")
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", "someone/scripted"])
    one_line_error(res, "has no parquet files", "script-based loader")
    assert hub_server.requests_to("/datasets/") == []  # refused before downloading anything
    res = CliRunner().invoke(main, ["data", "import", "--corpus", "emodb", "--hub", "someone/nothing"])
    one_line_error(res, "no dataset 'someone/nothing'")
    res = CliRunner().invoke(main, ["--offline", "data", "import", "--corpus", "emodb", "--hub", "someone/other"])
    one_line_error(res, "xlbench is offline (--offline)")
