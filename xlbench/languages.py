"""Which corpora stand for a language, and their utterances divided by the fixed splits.

A language is served by its real corpora when they are prepared, else by the generated
synthetic corpus (said in one line). English merges whichever of RAVDESS, SAVEE and TESS are
prepared (PROTOCOL.md section 3: the union of the corpora's splits).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from xlbench.errors import ConfigError, DataError
from xlbench.manifest import Manifest, Utterance, load_manifest
from xlbench.protocol import Emotion, language
from xlbench.splits import SPLITS, Split, apply_split, combined_hash, load_split

DataChoice = Literal["auto", "real", "synthetic"]
DATA_CHOICES: tuple[str, ...] = ("auto", "real", "synthetic")


def synthetic_corpus_name(lang: str) -> str:
    return f"synth_{language(lang).code}"


@dataclass(frozen=True)
class Resolution:
    language: str
    corpora: tuple[str, ...]
    synthetic: bool
    note: str | None = None  # one line for the user when something was substituted or is missing


def resolve(lang: str, data: DataChoice = "auto", corpora: tuple[str, ...] | None = None) -> Resolution:
    """Decide which corpora serve ``lang`` without reading audio.

    ``corpora`` names the corpora explicitly (e.g. English from RAVDESS alone); each must be one
    of the language's corpora (its synthetic stand-in included) and prepared or generatable.
    """
    if data not in DATA_CHOICES:
        raise ConfigError(f"--data must be one of {', '.join(DATA_CHOICES)}, not {data!r}")
    spec = language(lang)
    synthetic_name = synthetic_corpus_name(spec.name)
    if corpora:
        known = (*spec.corpora, synthetic_name)
        unknown = [c for c in corpora if c not in known]
        if unknown:
            raise ConfigError(f"{unknown[0]!r} is not a {spec.name} corpus; {spec.name} corpora: {', '.join(known)}")
        chosen = tuple(dict.fromkeys(corpora))
        if synthetic_name in chosen:
            if len(chosen) > 1:
                raise ConfigError(f"the synthetic {synthetic_name} cannot be mixed with real {spec.name} corpora")
            return Resolution(spec.name, chosen, True)
        unprepared = [c for c in chosen if load_manifest(c) is None]
        if unprepared:
            name = unprepared[0]
            raise DataError(f"corpus {name!r} is not prepared; run `xlbench data prepare --corpus {name} --root PATH`")
        return Resolution(spec.name, chosen, False)
    if data != "synthetic":
        prepared = tuple(c for c in spec.corpora if load_manifest(c) is not None)
        if prepared:
            missing = [c for c in spec.corpora if c not in prepared]
            note = f"{spec.name}: using {', '.join(prepared)} ({', '.join(missing)} not prepared)" if missing else None
            return Resolution(spec.name, prepared, False, note)
        if data == "real":
            raise DataError(
                f"no {spec.name} corpus is prepared ({', '.join(spec.corpora)}); run "
                f"`xlbench data prepare --corpus {spec.corpora[0]} --root PATH`"
            )
    note = None
    if data == "auto":
        note = f"{spec.name}: no real corpus prepared; using the generated synthetic corpus ({synthetic_name})"
    return Resolution(spec.name, (synthetic_name,), True, note)


def _synthetic_manifest(corpus: str) -> Manifest:
    """Generate (once) and index the synthetic corpus, with a progress bar while it works."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from xlbench import progress as prog
    from xlbench.synth import ensure_synthetic
    from xlbench.synth.spec import SYNTH_SPECS

    lang = next(s.language for s in SYNTH_SPECS.values() if s.name == corpus)
    if not prog.globally_enabled() or not prog.console.is_terminal:
        return ensure_synthetic(lang)
    labels = {"generate": "generating the synthetic corpus (espeak-ng, once)", "manifest": f"indexing {corpus}"}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=prog.console,
        transient=True,
    ) as bars:
        tasks: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(labels.get(stage, stage), total=total)
            bars.update(tasks[stage], completed=done, total=total)

        return ensure_synthetic(lang, progress=report)


def ensure_manifest(corpus: str) -> Manifest:
    """The manifest of a corpus: generated on demand for the synthetic ones, else as prepared."""
    if corpus.startswith("synth_"):
        return _synthetic_manifest(corpus)
    manifest = load_manifest(corpus)
    if manifest is None:
        raise DataError(f"corpus {corpus!r} is not prepared; run `xlbench data prepare --corpus {corpus} --root PATH`")
    return manifest


@dataclass
class LanguageData:
    """One language's utterances in train/val/test, with provenance for the run record."""

    language: str
    corpora: tuple[str, ...]
    synthetic: bool
    parts: dict[Split, list[Utterance]]
    split_hashes: dict[str, str] = field(default_factory=dict)
    note: str | None = None

    @property
    def split_hash(self) -> str:
        return combined_hash(self.split_hashes)

    def counts(self, part: Split) -> Counter[Emotion]:
        return Counter(u.emotion for u in self.parts[part])


def load_language(lang: str, data: DataChoice = "auto", corpora: tuple[str, ...] | None = None) -> LanguageData:
    """Manifests of the language's corpora, divided by their split files and merged."""
    res = resolve(lang, data, corpora)
    parts: dict[Split, list[Utterance]] = {s: [] for s in SPLITS}
    hashes = {}
    for corpus in res.corpora:
        manifest = ensure_manifest(corpus)
        for name, utts in apply_split(manifest.utterances, corpus).items():
            parts[name].extend(utts)
        hashes[corpus] = load_split(corpus).sha256
    for name in SPLITS:
        parts[name].sort(key=lambda u: u.id)
    return LanguageData(res.language, res.corpora, res.synthetic, parts, hashes, res.note)
