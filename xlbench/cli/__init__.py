"""The ``xlbench`` command line. Each command group lives in its own module of this package."""

from __future__ import annotations

import os
import sys

import click

from xlbench import __version__
from xlbench.errors import XLBenchError

# Nothing is ever downloaded at run time (DESIGN.md); set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class Group(click.Group):
    """A click group that turns user errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except XLBenchError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("interrupted: finished results are kept; run the same command again to resume", err=True)
            ctx.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="xlbench")
def main() -> None:
    """Cross-lingual speech emotion recognition benchmark (after Agarla et al. 2024).

    Point it at the corpora you have (`xlbench data prepare`), or let it use the built-in
    synthetic corpus, then `xlbench run --method pseudolabel --target italian`.
    """


def _register() -> None:
    from xlbench.cli import data

    main.add_command(data.data)
    for module_name in ("features", "runs", "methods", "leaderboard"):
        try:
            module = __import__(f"xlbench.cli.{module_name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name == f"xlbench.cli.{module_name}":
                continue  # not built yet
            raise
        module.register(main)


_register()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
