"""`xlbench features ...`: list encoders, extract frozen features once, clear the cache."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import click
from tabulate import tabulate

from xlbench.errors import ConfigError, DataError, unknown_name


@click.group()
def features() -> None:
    """Encoders and the feature cache (frozen encoders' frames, computed once)."""


def parse_options(items: Sequence[str]) -> dict[str, str]:
    """``key=value`` strings -> a dict; anything else is a ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--encoder-option {item!r}: expected KEY=VALUE, e.g. --encoder-option layer=9")
        out[key.strip()] = value.strip()
    return out


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _prepared_corpora() -> list[str]:
    from xlbench.home import manifests_dir

    return sorted(p.stem for p in manifests_dir().glob("*.json"))


@features.command()
@click.option(
    "--encoder", "-e", "encoder_name", required=True, help="A registered encoder, or hf:<model id or folder>."
)
@click.option(
    "--corpus",
    "-c",
    "corpora",
    multiple=True,
    help="A prepared corpus (repeatable); default: every corpus with a manifest.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--encoder-option",
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encoder option (repeatable).",
)
@click.option(
    "--batch-seconds",
    type=click.FloatRange(min=1.0, max=3600.0),
    default=None,
    help="Padded audio per batch, in seconds, 1-3600 (default 120).",
)
def extract(
    encoder_name: str,
    corpora: tuple[str, ...],
    device: str,
    options: tuple[str, ...],
    batch_seconds: float | None,
) -> None:
    """Encode prepared corpora with a frozen encoder and store the frames in the cache.

    Runs never need this (they extract what is missing), but doing it once up front, on a GPU,
    makes every later run start at once. Entries already cached are verified, not recomputed.
    """
    from xlbench.corpora import CORPORA
    from xlbench.encoders import build_encoder, encoder_class
    from xlbench.features import DEFAULT_BATCH_SECONDS, FeatureCache, FeatureCacheWarning, resolve_device
    from xlbench.manifest import load_manifest

    opts = parse_options(options)
    # options and device are checked before anything slow (reading manifests, loading weights)
    if encoder_name.strip().startswith("hf:"):
        from xlbench.encoders.hf import HFEncoder

        HFEncoder.parse_options(opts)
    else:
        encoder_class(encoder_name.strip()).parse_options(opts)
    dev = resolve_device(device)
    names = list(dict.fromkeys(c.strip().lower() for c in corpora)) or _prepared_corpora()
    if not names:
        raise DataError("no prepared corpus: run `xlbench data prepare` (or `xlbench data generate`) first")
    manifests = []
    for name in names:
        manifest = load_manifest(name)
        if manifest is None:
            if name not in CORPORA and name not in _prepared_corpora():
                raise unknown_name("corpus", name, set(CORPORA.names()) | set(_prepared_corpora()))
            raise DataError(f"corpus {name!r} has no manifest: run `xlbench data prepare --corpus {name}` first")
        manifests.append(manifest)

    encoder = build_encoder(encoder_name, opts)
    cache = FeatureCache(encoder)
    info = cache.info
    rate = f"{info.frame_dim}-d frames at {info.frame_rate:g}/s"
    if not info.frame_rate:  # utterance-level features (openSMILE functionals)
        rate = f"one {info.frame_dim}-d frame per utterance"
    click.echo(
        f"encoder {info.name}: {rate}, "
        f"{info.params:,} parameters; device {dev}; cache {cache.dir}"
    )
    rows = []
    for manifest in manifests:
        utts = manifest.utterances
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FeatureCacheWarning)
            try:
                before = cache.stored()  # reads the indexes: a damaged one is warned about here
                store = cache.get_or_compute(
                    utts, device=dev, batch_seconds=batch_seconds or DEFAULT_BATCH_SECONDS, progress=True
                )
            finally:  # cache warnings as one yellow line each, also when an error follows
                for w in caught:
                    if issubclass(w.category, FeatureCacheWarning):
                        click.secho(f"warning: {w.message}", fg="yellow", err=True)
                    else:
                        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        added = cache.stored() - before
        frames = sum(store.num_frames(u.sha) for u in utts)
        hours = sum(u.duration for u in utts) / 3600
        rows.append([manifest.corpus, len(utts), f"{hours:.2f}", added, len(utts) - added, f"{frames:,}"])
    click.echo(
        tabulate(
            rows,
            headers=["corpus", "utterances", "audio h", "computed", "already cached", "frames"],
            tablefmt="github",
        )
    )


@features.command("encoders")
def list_encoders() -> None:
    """List the registered encoders: dimension, parameters, whether their weights are here."""
    from xlbench.encoders import describe_encoders
    from xlbench.encoders.emotioncnn import PAPER_PARAMS

    rows = []
    cnn_params = None
    for r in describe_encoders():
        if r.name == "emotioncnn":
            cnn_params = r.params
        trained = "-" if r.frozen_ok is None else ("frozen ok" if r.frozen_ok else "end to end only")
        rows.append(
            [
                r.name,
                r.status if not r.error else f"{r.status}: {r.error}",
                r.dim if r.dim is not None else "?",
                f"{r.params:,}" if r.params is not None else "?",
                {True: "yes", False: "no", None: "?"}[r.pretrained],
                trained,
                r.weights,
            ]
        )
    click.echo(
        tabulate(
            rows,
            headers=["encoder", "status", "dim", "params", "pretrained", "training", "weights"],
            tablefmt="github",
        )
    )
    if cnn_params is not None:
        click.echo(f"EmotionCNN parameter_count() = {cnn_params:,} (paper Table 1: {PAPER_PARAMS:,})")
    click.echo("also: hf:<model id or folder> for any transformers wav2vec2 / HuBERT / WavLM / data2vec-audio model")


@features.command()
@click.option("--encoder", "-e", "encoder_name", default=None, help="Only this encoder (its name, e.g. hubert).")
def clear(encoder_name: str | None) -> None:
    """Delete cached frames (all of them, or one encoder's); they are recomputed when needed."""
    from xlbench.features import cached_encoders, clear_cache

    if encoder_name is not None:
        known = {name for row in cached_encoders() for name in row.names}
        if encoder_name not in known:
            click.echo(
                f"nothing cached for encoder {encoder_name!r}"
                + (f" (cached: {', '.join(sorted(known))})" if known else "")
            )
            return
    removed = clear_cache(encoder_name)
    if not removed:
        click.echo("the feature cache is already empty")
        return
    total = sum(r.bytes for r in removed)
    for r in removed:
        click.echo(f"removed {r.key} ({r.name}, {_human_bytes(r.bytes)})")
    click.echo(f"freed {_human_bytes(total)}")
