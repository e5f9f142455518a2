"""``xlbench data download``: a corpus from its owners' official source into the data home.

For a corpus whose owners publish a direct download (xlbench.sources): download each archive
(resumable, with a progress bar) into ``<data home>/downloads/<corpus>/``, check it (the
source's own md5 where it publishes one, else the size and sha256 recorded at the first
download), unpack it into a staging folder, check that the files are this corpus (its loader
must read their names), and install the folder atomically as ``<data home>/corpora/<corpus>``
(xlbench.corpus_store). The archives are deleted once installed; their sizes and checksums stay
in the provenance file and in the checksum log. Corpora that need registration raise a one-line
error saying where to register and which folder to fill. The licence prompt is the caller's.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from xlbench import archives, corpus_store
from xlbench.corpora import get_corpus
from xlbench.download import Checksum, ChecksumLog, Downloaded, fetch_file
from xlbench.errors import ConfigError, DataError
from xlbench.home import downloads_dir
from xlbench.sources import CorpusSource, source


class ManualCorpus(DataError):
    """The corpus cannot be downloaded by xlbench (registration); the message says what to do."""


@dataclass(frozen=True)
class Fetched:
    corpus: str
    root: Path
    archives: tuple[Downloaded, ...]


def manual_instructions(src: CorpusSource) -> str:
    folder = corpus_store.corpus_folder(src.corpus)
    return (
        f"{src.corpus} cannot be downloaded automatically: {src.obtain}; then put its files in {folder} "
        f"(as {src.layout}) and run `xlbench data prepare --corpus {src.corpus} --root {folder}`"
    )


def archive_url(url: str, filename: str, mirror: str | None) -> str:
    return f"{mirror.rstrip('/')}/{filename}" if mirror else url


def download_corpus(name: str, *, mirror: str | None = None, show_progress: bool = True) -> Fetched:
    """Download, check, unpack and install ``name``; returns where it now lives."""
    loader = get_corpus(name)
    spec = loader.spec
    if spec.synthetic:
        raise ConfigError(f"{spec.name} is generated, not downloaded: use `xlbench data generate`")
    src = source(spec.name)
    if src.how != "download":
        raise ManualCorpus(manual_instructions(src))

    log = ChecksumLog()
    got: list[tuple[str, bool, Downloaded]] = []
    for a in src.archives:
        url = archive_url(a.url, a.filename, mirror)
        checks = [Checksum("md5", a.md5, f"published by {src.publisher}")] if a.md5 else []
        size = a.size
        if a.stable:
            recorded_size, recorded = log.expected(url)
            checks += recorded
            size = size or recorded_size
        dest = downloads_dir() / spec.name / a.filename
        got.append((url, a.stable, fetch_file(url, dest, what=f"{spec.name} {a.filename}", checksums=checks, size=size,
                                             show_progress=show_progress)))

    with corpus_store.staging(spec.name) as folder:
        for _, _, d in got:
            try:
                archives.extract(d.path, folder)
            except DataError:
                with contextlib.suppress(OSError):  # a damaged archive is of no use for resuming either
                    d.path.unlink()
                raise
        try:
            loader.scan(folder)
        except DataError as exc:
            names = ", ".join(d.path.name for _, _, d in got)
            why = str(exc).replace(str(folder.resolve()), names).replace(str(folder), names)
            raise DataError(f"the download is not {spec.title} ({why}); nothing was unpacked") from None
        provenance = {
            "kind": "download",
            "corpus": spec.name,
            "page": src.page,
            "licence": src.licence,
            "downloaded": datetime.now(UTC).isoformat(timespec="seconds"),
            "archives": [
                {"url": url, "file": d.path.name, "size": d.size, "sha256": d.sha256, "md5": d.md5}
                for url, _, d in got
            ],
        }
        root = corpus_store.install(folder, spec.name, provenance)
    for url, stable, d in got:
        if stable:
            log.record(url, d)
        with contextlib.suppress(OSError):
            d.path.unlink()
    return Fetched(spec.name, root, tuple(d for _, _, d in got))
