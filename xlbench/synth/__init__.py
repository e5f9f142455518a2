"""The generated default corpus: synthetic emotional speech made on this machine with espeak-ng.

It is a stand-in so that every command works on a fresh machine with nothing downloaded
(PROTOCOL.md section 9). It is synthetic speech and not a real emotion corpus: numbers on it
say nothing about real emotion recognition. See docs/synthetic-corpus.md.

``ensure_synthetic(language)`` generates the corpus once (all five languages) under
``xlbench.home.synthetic_dir()`` and returns the language's manifest, building it when missing
or stale. Heavy modules (numpy, soxr, espeak-ng) are imported only when needed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xlbench.synth.spec import DEFAULT_SEED, GENERATOR_VERSION, NOTICE, SYNTH_LANGUAGES, SYNTH_SPECS

if TYPE_CHECKING:
    from xlbench.manifest import Manifest

__all__ = [
    "DEFAULT_SEED",
    "GENERATOR_VERSION",
    "NOTICE",
    "SYNTH_SPECS",
    "corpus_root",
    "ensure_synthetic",
    "is_generated",
    "stamp_copy",
]

#: (stage, done, total); stage is "generate" or "manifest"
EnsureProgress = Callable[[str, int, int], None]

# extra arguments ensure_synthetic passes to generate(): none = the full corpus, default workers
# (the tests shrink the corpus through limit_speakers / limit_sentences)
_GENERATE_KWARGS: dict[str, Any] = {}


def corpus_root() -> Path:
    """Where the default corpus of this generator version and seed lives."""
    from xlbench.home import synthetic_dir

    return synthetic_dir() / f"espeak-v{GENERATOR_VERSION}-seed{DEFAULT_SEED}"


def is_generated(root: Path) -> bool:
    """True when ``root`` holds a whole default corpus (all languages, this version and seed)."""
    from xlbench.synth.generate import read_stamp

    stamp = read_stamp(root)
    return bool(
        stamp
        and stamp.get("generator_version") == GENERATOR_VERSION
        and stamp.get("seed") == DEFAULT_SEED
        and all(stamp.get(k) == _GENERATE_KWARGS.get(k) for k in ("limit_speakers", "limit_sentences"))
        and set(stamp.get("languages", {})) == {lang.code for lang in SYNTH_LANGUAGES.values()}
        and all((root / lang.code).is_dir() for lang in SYNTH_LANGUAGES.values())
    )


def stamp_copy(root: Path, counts: dict[str, int]) -> None:
    """Mark ``root`` (a ``corpus_root()`` of another data home) as a whole generated corpus that
    holds ``counts`` files per language code; languages without files get empty folders.

    The hidden-label audit (xlbench.audit) writes private copies of a slice of the corpus this
    way, so that ``ensure_synthetic`` and the loaders index them exactly like the original.
    """
    from datetime import UTC, datetime

    from xlbench.home import atomic_write_json
    from xlbench.synth.generate import make_stamp
    from xlbench.synth.spec import STAMP_NAME

    langs = list(SYNTH_LANGUAGES.values())
    full = {lang.code: counts.get(lang.code, 0) for lang in langs}
    created = datetime.now(UTC).isoformat(timespec="seconds")
    limits = (_GENERATE_KWARGS.get("limit_speakers"), _GENERATE_KWARGS.get("limit_sentences"))
    for lang in langs:
        (root / lang.code).mkdir(parents=True, exist_ok=True)
        atomic_write_json(root / lang.code / STAMP_NAME, make_stamp(DEFAULT_SEED, created, [lang], full, *limits))
    atomic_write_json(root / STAMP_NAME, make_stamp(DEFAULT_SEED, created, langs, full, *limits))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock across processes (two commands started at once generate only once)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, generation is still atomic
        yield
        return
    try:
        f = open(folder / ".lock", "a+b")  # noqa: SIM115 - closed below
    except OSError:
        # a read-only data home: nobody can write here, so nothing to serialise; a corpus
        # already generated is served as is, and a write that is needed fails in one line
        yield
        return
    with f:
        with suppress(OSError):  # a file system without locks: generation is still atomic
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            with suppress(OSError):
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _expected_count(stamp: dict[str, Any], code: str) -> int | None:
    return stamp.get("languages", {}).get(code, {}).get("utterances")


def _stale(manifest: Manifest | None, lang_root: Path, stamp: dict[str, Any], code: str) -> bool:
    if manifest is None or not manifest.synthetic:
        return True
    if Path(manifest.root) != lang_root.resolve():  # the root names the version and seed
        return True
    return _expected_count(stamp, code) != len(manifest.utterances) or stamp.get("created", "") > manifest.created


def ensure_synthetic(language: str, *, progress: EnsureProgress | None = None) -> Manifest:
    """The manifest of the generated corpus of ``language`` (name or code), generating the
    corpus (all five languages, once) and building the manifest when missing or stale."""
    from xlbench.errors import DataError
    from xlbench.home import synthetic_dir
    from xlbench.manifest import build_manifest, load_manifest, save_manifest
    from xlbench.protocol import language as find_language
    from xlbench.synth.corpus import LOADERS
    from xlbench.synth.generate import generate, read_stamp

    lang = SYNTH_LANGUAGES[find_language(language).name]
    spec = SYNTH_SPECS[lang.name]
    folder = synthetic_dir()
    root = corpus_root()
    lang_root = root / lang.code

    def make_corpus() -> None:
        # leftovers of an interrupted run (only this function writes here, under the lock)
        for junk in folder.glob(f".{root.name}.*"):
            shutil.rmtree(junk, ignore_errors=True)
        gen_progress = (lambda d, t: progress("generate", d, t)) if progress else None
        generate(root, seed=DEFAULT_SEED, progress=gen_progress, **_GENERATE_KWARGS)

    with _locked(folder):
        if not is_generated(root):
            make_corpus()
        try:
            manifest = load_manifest(spec.name)
        except DataError:  # corrupt: ours to rebuild
            manifest = None
        if _stale(manifest, lang_root, read_stamp(root) or {}, lang.code):
            scan = LOADERS[lang.name]().scan(lang_root)
            if len(scan.entries) != _expected_count(read_stamp(root) or {}, lang.code) or scan.unknown:
                make_corpus()  # files deleted or added by hand: start again
                scan = LOADERS[lang.name]().scan(lang_root)
            total = len(scan.entries)
            counter = [0]
            if progress:
                progress("manifest", 0, total)

            def step(n: int) -> None:
                counter[0] += n
                if progress:
                    progress("manifest", counter[0], total)

            manifest = build_manifest(spec, scan, synthetic=True, progress=step)
            save_manifest(manifest)
    assert manifest is not None
    return manifest
