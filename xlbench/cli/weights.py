"""`xlbench weights ...`: download encoder weights now, and list what is on this machine."""

from __future__ import annotations

import click
from tabulate import tabulate

from xlbench.cli import offline_option


@click.group()
def weights() -> None:
    """Encoder weights: HuBERT and hf: models (Hugging Face cache), BYOL-S (data home)."""


def _size(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:,.1f} MB"


@weights.command()
@click.argument("name")
@click.option("--revision", default=None, help="Branch, tag or commit of a Hub model (default: main).")
@offline_option
def fetch(name: str, revision: str | None) -> None:
    """Download NAME (hubert, byols or hf:<model id>) and pin its revision.

    Runs download missing weights on first use anyway; this does it ahead of time (for example
    before going offline) and checks the files load.
    """
    from xlbench.weights import fetch as fetch_weights

    entry = fetch_weights(name, revision)
    click.echo(f"{entry.name}: {entry.source} at {entry.revision} ({_size(entry.size)}) in {entry.location}")


@weights.command(name="list")
def list_() -> None:
    """What is on this machine: name, revision, size and place (nothing is downloaded)."""
    from xlbench import hub
    from xlbench.weights import list_weights

    rows = []
    for e in list_weights():
        state = "present" if e.present else f"missing: `xlbench weights fetch {e.name}`"
        rows.append([e.name, e.source, state, e.revision or "", _size(e.size), e.location or ""])
    click.echo(f"Hugging Face cache: {hub.cache_dir()}" + ("  (offline)" if hub.offline() else ""))
    click.echo(tabulate(rows, headers=["name", "source", "state", "revision", "size", "where"], tablefmt="github"))
