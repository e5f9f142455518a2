"""`xlbench data ...`: download, import and prepare corpora, show what is ready, generate the synthetic corpus."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import click
from tabulate import tabulate

from xlbench import progress
from xlbench.cli import offline_option
from xlbench.corpora import CORPORA, get_corpus
from xlbench.errors import ConfigError, DataError
from xlbench.home import data_home
from xlbench.languages import resolve, synthetic_corpus_name
from xlbench.manifest import build_manifest, load_manifest, save_manifest, validation_rows
from xlbench.protocol import EMOTIONS_5, LANGUAGES, REAL_CORPORA, CorpusSpec
from xlbench.sources import source
from xlbench.splits import SPLITS, apply_split, load_split


@click.group()
def data() -> None:
    """Download, import or prepare corpora; see which languages are ready."""


def split_table(spec: CorpusSpec, utterances) -> tuple[str, list[str]]:
    parts = apply_split(utterances, spec.name)
    rows, problems = [], []
    for name in SPLITS:
        counts = Counter(u.emotion for u in parts[name])
        speakers = len({u.speaker for u in parts[name]})
        rows.append([name, speakers, *[counts.get(e, 0) for e in EMOTIONS_5], len(parts[name])])
        missing = [e.value for e in EMOTIONS_5 if counts.get(e, 0) == 0]
        if missing:
            problems.append(f"{name} has no {', '.join(missing)}")
    headers = ["split", "speakers", *[e.value for e in EMOTIONS_5], "total"]
    return tabulate(rows, headers=headers, tablefmt="github"), problems


@data.command()
@click.option("--corpus", "corpus_name", required=True, help=f"One of: {', '.join(REAL_CORPORA)}.")
@click.option(
    "--root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The corpus folder as you unpacked it.",
)
@click.option("--skip-bad", is_flag=True, help="Skip unreadable or unparseable files instead of stopping.")
def prepare(corpus_name: str, root: Path, skip_bad: bool) -> None:
    """Scan a corpus folder, check every file, and write its manifest.

    Prints the utterances found per emotion against the protocol's expected counts, and the
    fixed speaker split.
    """
    prepare_and_report(corpus_name, root, skip_bad)


def prepare_and_report(corpus_name: str, root: Path, skip_bad: bool = False) -> None:
    """What `data prepare` does (also run after `data download` and `data import`)."""
    loader = get_corpus(corpus_name)
    spec = loader.spec
    if spec.synthetic:
        raise DataError(f"{spec.name} is generated, not prepared from a folder: use `xlbench data generate`")
    scan = loader.scan(root)
    with progress.bar(f"reading {spec.name}", len(scan.entries)) as advance:
        manifest = build_manifest(spec, scan, skip_bad=skip_bad, progress=advance)
    table, problems = split_table(spec, manifest.utterances)  # refuses unknown speakers before saving
    path = save_manifest(manifest)

    rows = validation_rows(spec, manifest.counts())
    click.echo(f"{spec.title}: {len(manifest.utterances)} utterances kept of {scan.files_seen} audio files")
    click.echo(
        tabulate(
            [(e, exp, got, f"{d:+d}" if d else "ok") for e, exp, got, d in rows],
            headers=["emotion", "expected", "found", "difference"],
            tablefmt="github",
        )
    )
    if manifest.dropped:
        names = ", ".join(f"{spec.label_names.get(k, k)} {n}" for k, n in manifest.dropped.items())
        click.echo(f"dropped by the protocol: {names}")
    if manifest.excluded:
        reasons = Counter(b.reason for b in manifest.excluded)
        click.echo("left out: " + "; ".join(f"{n} × {r}" for r, n in reasons.items()))
    if manifest.skipped:
        click.secho(f"skipped {len(manifest.skipped)} bad file(s) (--skip-bad):", fg="yellow")
        for b in manifest.skipped[:20]:
            click.echo(f"  {b.path}: {b.reason}")
        if len(manifest.skipped) > 20:
            click.echo(f"  ... and {len(manifest.skipped) - 20} more (see the manifest)")
    click.echo(f"\nspeaker split v{load_split(spec.name).spec.version} ({load_split(spec.name).sha256[:12]}):")
    click.echo(table)
    for p in problems:
        click.secho(f"warning: {p}; UA on this split will not cover every emotion", fg="yellow")
    diffs = [r for r in rows if r[3] != 0]
    found = {e: n for e, n in manifest.counts().items() if n}
    if diffs and spec.release_counts is not None and found == {e: n for e, n in spec.release_counts.items() if n}:
        click.secho(
            "note: these counts match the file names of the public release, which differ from the "
            f"published table: {spec.notes[0] if spec.notes else ''}",
            fg="yellow",
        )
    elif diffs:
        click.secho(
            f"note: counts differ from the protocol's for {', '.join(r[0] for r in diffs)} "
            "(a partial or different release?)",
            fg="yellow",
        )
    click.echo(f"manifest: {path}")
    if manifest.source and manifest.source.get("kind") == "hub":
        click.echo(f"source: {manifest.source['repo']} at revision {manifest.source['revision']}")


def _accept_licence(corpus: str, accepted: bool) -> None:
    """Show the licence; go on only with --accept-licence or an interactive yes."""
    src = source(corpus)
    click.echo(f"{src.terms}.\nlicence: {src.licence}; official page: {src.page}")
    if accepted:
        return
    if not sys.stdin.isatty():
        raise ConfigError(
            f"downloading {corpus} requires accepting its licence ({src.licence}, see {src.page}): "
            "pass --accept-licence"
        )
    click.confirm("Do you accept this licence and want to download it?", abort=True)


@data.command()
@click.option("--corpus", "corpus_name", required=True, help=f"One of: {', '.join(REAL_CORPORA)}.")
@click.option("--accept-licence", is_flag=True, help="Accept the corpus licence (it is shown) without a prompt.")
@click.option(
    "--mirror",
    metavar="URL",
    default=None,
    help="Fetch each archive from URL/<archive name> instead of the official source (same checksums apply).",
)
@click.option(
    "--forget-checksums",
    is_flag=True,
    help="Forget the sizes and sha256 recorded at earlier downloads (after the owners publish a new release).",
)
@click.option("--skip-bad", is_flag=True, help="Prepare: skip unreadable or unparseable files instead of stopping.")
@offline_option
def download(
    corpus_name: str, accept_licence: bool, mirror: str | None, forget_checksums: bool, skip_bad: bool
) -> None:
    """Download a corpus from its owners' official source, unpack it into the data home and prepare it.

    Shows the licence and needs --accept-licence (or a yes at the prompt). Interrupted downloads
    resume; archives are checked (the source's md5 where it publishes one, else the size and
    sha256 recorded at the first download) and unpacked atomically into <data home>/corpora/NAME,
    then `data prepare` runs and prints its validation table. Corpora that need registration
    (SAVEE) say where to register and which folder to fill.
    """
    from xlbench.corpus_fetch import ManualCorpus, archive_url, download_corpus, manual_instructions
    from xlbench.download import ChecksumLog

    spec = get_corpus(corpus_name).spec
    if spec.synthetic:
        raise DataError(f"{spec.name} is generated, not downloaded: use `xlbench data generate`")
    src = source(spec.name)
    if src.how != "download":
        raise ManualCorpus(manual_instructions(src))
    _accept_licence(spec.name, accept_licence)
    if forget_checksums:
        log = ChecksumLog()
        for a in src.archives:
            log.forget(archive_url(a.url, a.filename, mirror))
    fetched = download_corpus(spec.name, mirror=mirror)
    click.echo(f"{spec.title}: unpacked into {fetched.root}\n")
    prepare_and_report(spec.name, fetched.root, skip_bad)


@data.command(name="import")
@click.option("--corpus", "corpus_name", required=True, help=f"One of: {', '.join(REAL_CORPORA)}.")
@click.option(
    "--hub", "hub_id", required=True, metavar="REPO_ID", help="Hub dataset id, or a local folder of its parquet files."
)
@click.option("--revision", default=None, help="Branch, tag or commit (default: main); the commit read is recorded.")
@click.option("--skip-bad", is_flag=True, help="Prepare: skip unreadable or unparseable files instead of stopping.")
@offline_option
def import_(corpus_name: str, hub_id: str, revision: str | None, skip_bad: bool) -> None:
    """Import a Hugging Face Hub copy of a corpus that keeps the original file names, then prepare it.

    Needs the `datasets` package (pip install 'xlbench[hub]'). The audio is written under its
    original names into <data home>/corpora/NAME (WAV bytes unchanged; other formats decoded with
    soundfile), so the shipped speaker splits apply; the repository and commit go into the
    manifest. Copies without file names are refused: their speakers are unknown.
    """
    from xlbench.hub_import import import_corpus

    spec = get_corpus(corpus_name).spec
    done = import_corpus(spec.name, hub_id, revision=revision)
    at = f" at commit {done.revision}" if done.revision else ""
    click.echo(f"{spec.title}: {done.files} files from {done.repo}{at} (names from {done.name_column}) in {done.root}")
    click.echo("")
    prepare_and_report(spec.name, done.root, skip_bad)


def _corpus_state(corpus: str) -> tuple[str, int | None, str]:
    """(state, utterances, how to get it) of one real corpus: real (prepared), downloaded or missing."""
    from xlbench.corpus_store import corpus_folder
    from xlbench.sources import get_command

    manifest = load_manifest(corpus)
    if manifest is not None:
        return "real: prepared", len(manifest.utterances), ""
    folder = corpus_folder(corpus)
    if folder.is_dir():
        return "downloaded, not prepared", None, f"xlbench data prepare --corpus {corpus} --root {folder}"
    return "missing", None, get_command(corpus)


@data.command()
def status() -> None:
    """Per language: which corpora are real, synthetic or missing, and the command that gets each.

    A corrupt manifest is a row saying so and what rebuilds it; the exit status is still 0."""
    rows: list[list] = []
    corrupt: list[str] = []
    for name in CORPORA.names():
        try:
            spec = get_corpus(name).spec
        except Exception as exc:  # a broken plugin is shown, not fatal
            rows.append([name, "?", "broken", "", "", str(exc)[:60]])
            continue
        kind = "synthetic" if spec.synthetic else "real"
        try:
            m = load_manifest(name)
        except DataError:  # shown, with what rebuilds it; the command goes on
            fix = f"xlbench data generate --language {spec.language}" if spec.synthetic else \
                f"xlbench data prepare --corpus {name} --root <folder>"
            rows.append([name, spec.language, "corrupt manifest", kind, "", f"rebuild: `{fix}`"])
            corrupt.append(name)
            continue
        if m is None:
            rows.append([name, spec.language, "not prepared", kind, "", ""])
        else:
            rows.append([name, spec.language, "ready", kind, len(m.utterances), m.root])
    click.echo(f"data home: {data_home()}\n")
    click.echo(
        tabulate(rows, headers=["corpus", "language", "status", "kind", "utterances", "root"], tablefmt="github")
    )
    click.echo("")
    lang_rows = []
    for lang in LANGUAGES.values():
        try:
            res = resolve(lang.name, "auto")
            uses = f"{'synthetic' if res.synthetic else 'real'} ({', '.join(res.corpora)})"
        except DataError:
            uses = "? (a corrupt manifest)"
        first = [lang.name, "source" if lang.source else "target", uses]
        for corpus in lang.corpora:
            try:
                state, n, how = _corpus_state(corpus)
            except DataError as exc:
                state, n, how = "corrupt manifest", None, str(exc)[:80]
            shown = f"`{how}`" if how.startswith("xlbench") else how
            lang_rows.append([*first, corpus, state, "" if n is None else n, shown])
            first = ["", "", ""]
        synth = synthetic_corpus_name(lang.name)
        try:
            generated = load_manifest(synth)
        except DataError:
            how = f"`xlbench data generate --language {lang.name}` (or any run) rebuilds it"
            lang_rows.append([*first, synth, "synthetic: corrupt manifest", "", how])
            continue
        if generated:
            lang_rows.append([*first, synth, "synthetic: generated", len(generated.utterances), ""])
        else:
            how = f"`xlbench data generate --language {lang.name}` (or any run, on first use)"
            lang_rows.append([*first, synth, "synthetic: not generated", "", how])
    click.echo(
        tabulate(
            lang_rows,
            headers=["language", "role", "runs use", "corpus", "state", "utterances", "get it with"],
            tablefmt="github",
        )
    )
    if corrupt:
        click.secho(f"warning: corrupt manifest(s): {', '.join(corrupt)} (rebuild as shown above)", fg="yellow",
                    err=True)


@data.command()
@click.option("--language", "languages", multiple=True, help="Only these languages (default: all five).")
def generate(languages: tuple[str, ...]) -> None:
    """Generate the built-in synthetic corpus (espeak-ng; nothing is downloaded).

    Synthetic speech: numbers on it only show that the machinery works.
    """
    from xlbench.protocol import language as lookup
    from xlbench.synth import ensure_synthetic

    names = [lookup(x).name for x in languages] or list(LANGUAGES)
    for lang in names:
        m = ensure_synthetic(lang)
        click.echo(f"{m.corpus}: {len(m.utterances)} synthetic utterances ({lang}) in {m.root}")
