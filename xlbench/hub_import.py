"""``xlbench data import``: a Hugging Face Hub copy of a corpus, written out under its original names.

A Hub copy is usable only if it keeps what the protocol reads from file names: the speaker
(splits are by speaker) and the emotion. So the copy's rows must carry the original file names,
in a string column (``file``, ``path``, ``filename`` ...) or in the audio column's ``path``; the
column is chosen by how many of its values this corpus's loader can read, and a copy where none
can is refused in one line (speaker-independent splits would be impossible).

The repository is resolved to a commit and only its parquet files are downloaded (xlbench.hub;
``--revision refs/convert/parquet`` reads the Hub's own parquet conversion of other formats).
Rows are read in batches with pyarrow; ``datasets`` (the ``xlbench[hub]`` extra) tells which
columns are audio. Each audio file is checked with soundfile: WAV bytes are written unchanged
(so a copy of the original files gives the same content hashes as the original folder), other
formats soundfile reads (FLAC, OGG) are decoded and written as WAV with the same samples. The
files are assembled in a staging folder, checked with the corpus loader, installed atomically
as ``<data home>/corpora/<corpus>`` with the repository and commit in ``xlbench-source.json``,
and then prepared like any folder, so the shipped speaker splits and their hashes apply.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from xlbench import corpus_store, hub, progress
from xlbench.corpora import Corpus, get_corpus
from xlbench.corpora.base import Excluded, Unknown
from xlbench.errors import ConfigError, DataError

#: column names that usually hold the original file name, tried first
NAME_COLUMNS = ("file", "filename", "file_name", "path", "audio_path", "wav", "name", "id", "file_id", "utterance_id")
PARQUET = ["*.parquet"]
#: rows read to decide which column holds the file names
SAMPLE_ROWS = 256
#: the share of sampled names the loader must read for a column to count as file names
MIN_READABLE = 0.5


@dataclass(frozen=True)
class Imported:
    corpus: str
    root: Path
    repo: str
    revision: str | None  # the commit read; None for a local folder
    name_column: str
    files: int


def _require_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            "importing from the Hugging Face Hub needs the `datasets` package: pip install 'xlbench[hub]'"
        ) from None
    return datasets


def _no_parquet(what: str) -> ConfigError:
    return ConfigError(
        f"{what} has no parquet files: a script-based loader (which datasets >= 4 no longer runs) or a "
        "folder of audio; try --revision refs/convert/parquet, or `xlbench data download`"
    )


def _parquet_files(folder: Path, what: str) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.parquet") if p.is_file())
    if not files:
        raise _no_parquet(what)
    return files


def _audio_columns(files: list[Path], datasets: Any) -> list[str]:
    import pyarrow.parquet as pq

    schema = pq.read_schema(files[0])
    features = datasets.Features.from_arrow_schema(schema)
    cols = [name for name, f in features.items() if isinstance(f, datasets.Audio)]
    if not cols:  # a copy saved without feature metadata: the struct shape says it
        cols = [f.name for f in schema if {"bytes", "path"} <= set(getattr(f.type, "names", None) or ())]
    return cols


def _rows(files: list[Path], columns: list[str]) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for path in files:
        parquet = pq.ParquetFile(path)
        present = [c for c in columns if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=64, columns=present):
            yield from batch.to_pylist()


def _candidates(row: dict[str, Any], audio: str) -> list[str]:
    names = [f"{audio}.path"]
    strings = [k for k, v in row.items() if k != audio and isinstance(v, str)]
    names += sorted(strings, key=lambda k: (k.lower() not in NAME_COLUMNS, k))
    return names


def _value(row: dict[str, Any], column: str, audio: str) -> str | None:
    if column == f"{audio}.path":
        cell = row.get(audio)
        return cell.get("path") if isinstance(cell, dict) else None
    value = row.get(column)
    return value if isinstance(value, str) else None


def relative_name(loader: Corpus, value: str | None) -> str | None:
    """The path a row's file gets in the corpus folder, if the loader can read the name; else None.

    Only the file name is kept (Hub copies often store a path on the uploader's machine), or the
    last folder and the name where the corpus needs the folder (SAVEE's speaker folders).
    """
    if not value:
        return None
    parts = [p for p in PurePosixPath(value.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    if not parts:
        return None
    root = Path("/corpus")
    stem = PurePosixPath(parts[-1]).stem
    for tail in ([f"{stem}.wav"], [*parts[-2:-1], f"{stem}.wav"]):
        try:
            loader.parse(root.joinpath(*tail), root)
        except Unknown:
            continue
        except Excluded:
            pass
        return "/".join(tail)
    return None


def _choose_column(loader: Corpus, sample: list[dict[str, Any]], audio: str, what: str) -> str:
    candidates = _candidates(sample[0], audio)
    scores = {c: sum(relative_name(loader, _value(r, c, audio)) is not None for r in sample) for c in candidates}
    best = max(candidates, key=lambda c: scores[c])
    if scores[best] < MIN_READABLE * len(sample):
        title = loader.spec.title.split(" (")[0]
        example = next((v for c in candidates for r in sample[:1] if (v := _value(r, c, audio))), None)
        shown = f" (e.g. {example!r} is not a file name of {title})" if example else ""
        raise DataError(
            f"{what} keeps no original {title} file names in {', '.join(candidates)}{shown}: without "
            "them the speakers are unknown and speaker-independent splits are impossible; use a copy that keeps "
            "the file names, or download the corpus"
        )
    return best


def _audio_bytes(cell: Any, where: str) -> bytes:
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return bytes(cell["bytes"])
        path = cell.get("path")
        if path and Path(path).is_file():
            return Path(path).read_bytes()
    raise DataError(f"{where}: the row holds no audio bytes (and no readable local file)")


def _write_audio(data: bytes, target: Path, where: str) -> None:
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        if info.format == "WAV":
            out = data
        else:  # FLAC, OGG ...: the same samples, as WAV
            samples, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
            subtype = info.subtype if info.subtype in ("PCM_16", "PCM_24", "PCM_32", "PCM_U8", "FLOAT") else "FLOAT"
            buf = io.BytesIO()
            sf.write(buf, samples, rate, subtype=subtype, format="WAV")
            out = buf.getvalue()
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise DataError(f"{where}: soundfile cannot decode the audio ({first})") from None
    if target.exists():
        if target.read_bytes() != out:
            raise DataError(f"{where}: two rows are named {target.name} but hold different audio")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.write_bytes(out)
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc}") from None


def import_corpus(name: str, hub_id: str, *, revision: str | None = None, show_progress: bool = True) -> Imported:
    """Materialise a Hub copy (or a local folder of its parquet files) as ``<data home>/corpora/<name>``."""
    import pyarrow.parquet as pq

    loader = get_corpus(name)
    spec = loader.spec
    if spec.synthetic:
        raise ConfigError(f"{spec.name} is generated, not imported: use `xlbench data generate`")
    datasets = _require_datasets()
    local = Path(hub_id).expanduser()
    if local.exists():
        if revision:
            raise ConfigError(f"--revision applies to Hub repositories; {local} is a local folder")
        folder, commit, repo = local, None, str(local.resolve())
        what = str(local)
    else:
        what = f"{hub_id}" + (f" at {revision}" if revision else "")

        def parquet_only(names: Sequence[str]) -> list[str]:
            chosen = [n for n in names if n.endswith(".parquet")]
            if not chosen:  # refused before anything is downloaded
                raise _no_parquet(what)
            return chosen

        snap = hub.dataset_snapshot(
            hub_id, revision=revision, choose=parquet_only, patterns=PARQUET, show_progress=show_progress,
            fetch_command=f"xlbench data import --corpus {spec.name} --hub {hub_id}",
        )
        folder, commit, repo = snap.folder, snap.commit, hub_id
        what = f"{hub_id}@{commit[:12]}"
    files = _parquet_files(folder, what)
    audio_cols = _audio_columns(files, datasets)
    if not audio_cols:
        raise DataError(f"{what} has no audio column")
    audio = audio_cols[0]
    columns = list(dict.fromkeys([audio, *pq.read_schema(files[0]).names]))
    sample = [r for _, r in zip(range(SAMPLE_ROWS), _rows(files, columns), strict=False)]
    if not sample:
        raise DataError(f"{what} has no rows")
    column = _choose_column(loader, sample, audio, what)
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)

    with corpus_store.staging(spec.name) as staging:
        written = 0
        with progress.bar(f"importing {spec.name}", total, show_progress) as advance:
            by_path = column == f"{audio}.path"
            for i, row in enumerate(_rows(files, [audio] if by_path else [audio, column])):
                value = _value(row, column, audio)
                rel = relative_name(loader, value)
                where = f"{what} row {i} ({value})"
                if rel is None:
                    raise DataError(f"{where}: not a {spec.title} file name; this copy mixes named and unnamed rows")
                target = staging.joinpath(*rel.split("/"))
                existed = target.exists()
                _write_audio(_audio_bytes(row.get(audio), where), target, where)
                written += not existed
                advance(1)
        try:
            loader.scan(staging)
        except DataError as exc:
            raise DataError(f"{what} is not {spec.title}: {str(exc).replace(str(staging.resolve()), what)}") from None
        provenance = {
            "kind": "hub",
            "corpus": spec.name,
            "repo": repo,
            "revision": commit,
            "name_column": column,
            "rows": total,
            "files": written,
            "imported": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        root = corpus_store.install(staging, spec.name, provenance)
    return Imported(spec.name, root, repo, commit, column, written)
