"""`xlbench doctor`: check the environment and say how to fix each problem."""

from __future__ import annotations

import click
from tabulate import tabulate


@click.command()
def doctor() -> None:
    """Check torch and its device, the data home (write access, free disk), the Hugging Face cache,
    encoder weights, the MLflow store, the synthetic-corpus generator and the corpora.

    Prints one row per check with a fix for each problem; exits 1 when a check fails. Nothing is
    changed and nothing is downloaded.
    """
    from xlbench.doctor import run_checks

    rows = run_checks()
    marks = {"ok": "ok", "warn": "warning", "fail": "PROBLEM"}
    click.echo(
        tabulate(
            [[r.name, marks[r.status], r.detail, r.fix] for r in rows],
            headers=["check", "status", "detail", "fix"],
            tablefmt="github",
        )
    )
    failed = [r.name for r in rows if r.status == "fail"]
    if failed:
        click.secho(f"\n{len(failed)} problem(s): {', '.join(failed)}", fg="red", err=True)
        raise SystemExit(1)
