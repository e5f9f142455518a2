"""`xlbench data download` against archives in each corpus's native layout, served on 127.0.0.1.

The official URLs are replaced with ``--mirror`` (the server serves ``/<archive name>``); every
check the official source gets (published md5, recorded size and sha256) applies unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests import corpus_fixtures as fx
from tests.loopback import LoopbackServer
from xlbench.archives import extract
from xlbench.cli import main
from xlbench.download import Checksum, fetch_file
from xlbench.errors import DataError
from xlbench.manifest import load_manifest
from xlbench.protocol import EMOTIONS_5, REAL_CORPORA
from xlbench.sources import SOURCES


def one_line_error(res: Result, *fragments: str) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, res.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def zip_tree(root: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """A zip of every file under ``root`` (paths relative to it), plus ``extra`` members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def emodb_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # the release's layout: wav/ plus other folders and text files the loader ignores
    root = fx.make_full_emodb(tmp_path_factory.mktemp("emodb"))
    return zip_tree(root, {"erkennung.txt": b"a listening test\n", "lablaut/03a01Fa.lablaut": b"labels\n"})


@pytest.fixture(scope="module")
def emovo_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return zip_tree(fx.make_emovo(tmp_path_factory.mktemp("emovo")).parent)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "XLBENCH_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    with LoopbackServer() as srv:
        yield srv


def download(server: LoopbackServer, corpus: str, *extra: str) -> Result:
    return CliRunner().invoke(
        main, ["data", "download", "--corpus", corpus, "--accept-licence", "--mirror", server.url, *extra]
    )


def leftovers(home: Path, corpus: str) -> list[str]:
    """Anything a failed download left in the corpora folder (staging folders or the corpus)."""
    folder = home / "corpora"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((f".{corpus}.", corpus)))


def test_download_resumes_checks_unpacks_and_prepares(server: LoopbackServer, emodb_zip: bytes, private_home: Path):
    server.files["/emodb-download.zip"] = emodb_zip
    half = len(emodb_zip) // 2
    server.cut["/emodb-download.zip"] = half
    part = private_home / "downloads" / "emodb" / "emodb-download.zip.part"

    res = download(server, "emodb")
    one_line_error(res, f"interrupted after {half} of {len(emodb_zip)} bytes", "run the same command again to resume")
    assert part.stat().st_size == half and leftovers(private_home, "emodb") == []
    assert "CC BY 4.0" in res.output  # the licence was shown

    res = download(server, "emodb")
    assert res.exit_code == 0, res.output
    gets = [h.get("Range") for m, p, h in server.log if m == "GET"]
    assert gets == [None, f"bytes={half}-"]
    root = private_home / "corpora" / "emodb"
    assert len(list((root / "wav").glob("*.wav"))) == 535
    assert not part.exists() and not (private_home / "downloads" / "emodb" / "emodb-download.zip").exists()
    # the validation table of `data prepare`: every expected count found
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in res.output.splitlines() if ln.startswith("| ")]
    validation = {r[0]: r[1:] for r in rows if r[0] in ("anger", "fear", "happiness", "neutral", "sadness", "total")}
    assert len(validation) == 6 and all(diff == "ok" for *_, diff in validation.values())
    assert validation["total"] == ["408", "408", "ok"]
    manifest = load_manifest("emodb")
    assert manifest is not None and len(manifest.utterances) == 408 and Path(manifest.root) == root.resolve()
    (archive,) = manifest.source["archives"]
    assert archive["sha256"] == hashlib.sha256(emodb_zip).hexdigest() and archive["size"] == len(emodb_zip)
    assert archive["md5"] == hashlib.md5(emodb_zip).hexdigest()
    log = json.loads((private_home / "downloads" / "checksums.json").read_text())
    assert log[f"{server.url}/emodb-download.zip"]["sha256"] == archive["sha256"]

    # the source now serves other bytes: refused against the recorded sha256, the corpus untouched
    other = emodb_zip[:-1] + bytes([emodb_zip[-1] ^ 1])
    server.files["/emodb-download.zip"] = other
    res = download(server, "emodb")
    one_line_error(res, "fails its sha256 check (recorded at the first download", archive["sha256"])
    assert len(list((root / "wav").glob("*.wav"))) == 535 and leftovers(private_home, "emodb") == ["emodb"]
    assert not part.exists()

    # ... unless told the owners published a new release (the zip comment changed: same files)
    buf = io.BytesIO(emodb_zip)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = b"release 2"
    server.files["/emodb-download.zip"] = buf.getvalue()
    res = download(server, "emodb", "--forget-checksums")
    assert res.exit_code == 0, res.output
    assert load_manifest("emodb").source["archives"][0]["sha256"] == hashlib.sha256(buf.getvalue()).hexdigest()


def test_a_corpus_in_two_archives(server: LoopbackServer, tmp_path: Path, private_home: Path) -> None:
    root = fx.make_shemo(tmp_path / "shemo")
    server.files["/female.zip"] = _zip_folder(root / "female", "female")
    server.files["/male.zip"] = _zip_folder(root / "male", "male")
    res = download(server, "shemo")
    assert res.exit_code == 0, res.output
    manifest = load_manifest("shemo")
    assert len(manifest.utterances) == len(fx.SHEMO_SMALL) - 2  # the two surprise files are dropped
    assert [a["file"] for a in manifest.source["archives"]] == ["female.zip", "male.zip"]


def _zip_folder(folder: Path, prefix: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{prefix}/{path.name}")
    return buf.getvalue()


def test_a_published_size_or_checksum_that_does_not_match_is_refused(
    server: LoopbackServer, tmp_path: Path, private_home: Path
) -> None:
    # RAVDESS: Zenodo publishes size and md5; a small archive is refused before a byte is written
    server.files["/Audio_Speech_Actors_01-24.zip"] = zip_tree(fx.make_ravdess(tmp_path / "r"))
    res = download(server, "ravdess")
    one_line_error(res, "has 208468073: not the expected file")
    kept = private_home / "downloads" / "ravdess"
    assert [p.name for p in kept.iterdir() if not p.name.endswith(".lock")] == []  # no bytes written
    assert leftovers(private_home, "ravdess") == []


def test_fetch_file_checks_a_published_md5(server: LoopbackServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = data = b"0123456789" * 1000
    dest = tmp_path / "f.bin"
    with pytest.raises(DataError, match=r"fails its md5 check \(published by Zenodo: 0+, got "):
        fetch_file(f"{server.url}/f.bin", dest, what="f", checksums=[Checksum("md5", "0" * 32, "published by Zenodo")])
    assert not dest.exists() and not Path(f"{dest}.part").exists()
    got = fetch_file(
        f"{server.url}/f.bin", dest, what="f", checksums=[Checksum("md5", hashlib.md5(data).hexdigest(), "Zenodo")]
    )
    assert dest.read_bytes() == data and got.sha256 == hashlib.sha256(data).hexdigest() and got.resumed_from == 0


def test_truncated_archive_leaves_nothing(server: LoopbackServer, emodb_zip: bytes, private_home: Path) -> None:
    server.files["/CaFE_48k.zip"] = emodb_zip[: len(emodb_zip) * 2 // 3]  # complete transfer, broken zip
    res = download(server, "cafe")
    one_line_error(res, "CaFE_48k.zip is damaged or truncated")
    assert leftovers(private_home, "cafe") == []
    assert not (private_home / "downloads" / "cafe" / "CaFE_48k.zip").exists()
    assert not (private_home / "downloads" / "checksums.json").exists()  # nothing recorded for a bad file


def test_an_archive_of_another_corpus_is_refused(server: LoopbackServer, emovo_zip: bytes, private_home: Path):
    server.files["/emodb-download.zip"] = emovo_zip
    res = download(server, "emodb")
    one_line_error(res, "the download is not EMO-DB", "emodb-download.zip has a EMO-DB", "nothing was unpacked")
    assert leftovers(private_home, "emodb") == [] and load_manifest("emodb") is None


def test_unreachable_host_and_404_are_one_line(server: LoopbackServer, private_home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(
        main, ["data", "download", "--corpus", "emodb", "--accept-licence", "--mirror", f"http://127.0.0.1:{port}"]
    )
    one_line_error(res, f"cannot reach 127.0.0.1:{port}", "ConnectionError")
    res = download(server, "cafe")
    one_line_error(res, "CaFE_48k.zip was not found (HTTP 404)")
    assert leftovers(private_home, "cafe") == [] and leftovers(private_home, "emodb") == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_one_line_and_nothing_is_installed(
    server: LoopbackServer, emodb_zip: bytes, private_home: Path
) -> None:
    server.files["/emodb-download.zip"] = emodb_zip
    part = private_home / "downloads" / "emodb" / "emodb-download.zip.part"
    part.parent.mkdir(parents=True)
    part.symlink_to("/dev/full")  # every write to the partial file meets ENOSPC, as on a full disk
    res = download(server, "emodb")
    one_line_error(res, "the disk is full", "free space in")
    assert leftovers(private_home, "emodb") == [] and not (part.parent / "emodb-download.zip").exists()


def test_nothing_is_downloaded_without_accepting_the_licence(server: LoopbackServer, emodb_zip: bytes) -> None:
    server.files["/emodb-download.zip"] = emodb_zip
    res = CliRunner().invoke(main, ["data", "download", "--corpus", "emodb", "--mirror", server.url])
    one_line_error(res, "requires accepting its licence", "--accept-licence")
    res = CliRunner().invoke(
        main, ["data", "download", "--corpus", "emodb", "--accept-licence", "--mirror", server.url, "--offline"]
    )
    one_line_error(res, "xlbench is offline (--offline)")
    assert server.log == []


def test_savee_says_where_to_register_and_which_folder_to_fill(private_home: Path) -> None:
    res = CliRunner().invoke(main, ["data", "download", "--corpus", "savee", "--accept-licence"])
    line = one_line_error(res, "savee cannot be downloaded automatically", "Register.html")
    folder = private_home / "corpora" / "savee"
    assert f"put its files in {folder}" in line and f"--root {folder}`" in line and "AudioData/DC" in line


def test_extract_refuses_paths_that_leave_the_folder(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok/a.wav", b"x")
        zf.writestr("../escape.wav", b"x")
    archive = tmp_path / "evil.zip"
    archive.write_bytes(buf.getvalue())
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DataError, match=r"unsafe path '\.\./escape\.wav'"):
        extract(archive, dest)
    assert not (tmp_path / "escape.wav").exists() and list(dest.iterdir()) == []
    page = tmp_path / "page.zip"
    page.write_bytes(b"<!DOCTYPE html><html>moved</html>")
    with pytest.raises(DataError, match=r"page\.zip is a web page"):
        extract(page, dest)


def test_docs_name_every_source_licence_and_count() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "corpora.md").read_text("utf-8")
    for name, src in SOURCES.items():
        spec = REAL_CORPORA[name]
        row = next(ln for ln in text.splitlines() if ln.startswith(f"| {spec.title.split(' (')[0]} "))
        counts = " / ".join(str(spec.expected[e]) for e in EMOTIONS_5) + f" = {spec.expected_total}"
        assert src.page in row and f"| {src.licence} |" in row and f"| {spec.expected_files} |" in row, row
        assert counts in row and ("| download |" in row) == (src.how == "download"), row
        for a in src.archives:
            assert a.md5 is None or a.md5 in row
