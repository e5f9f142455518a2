"""The ``xlbench`` command line. Each command lives in a module of this package and is
imported only when used, so `xlbench --help` and `xlbench data status` start quickly."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any, NoReturn, TypeVar

import click

from xlbench import __version__
from xlbench.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    XLBenchError,
    memory_error_line,
    os_error_line,
)

F = TypeVar("F", bound=Any)

# What a user names (an encoder, a corpus) is downloaded on first use; `--offline` or
# HF_HUB_OFFLINE=1 forbids it (xlbench.hub). The main command never downloads either way.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

#: command name -> "module:attribute" (imported on first use)
COMMANDS = {
    "data": "xlbench.cli.data:data",
    "features": "xlbench.cli.features:features",
    "run": "xlbench.cli.runs:run",
    "runs": "xlbench.cli.runs:runs",
    "methods": "xlbench.cli.methods:methods",
    "check-method": "xlbench.cli.methods:check_method",
    "audit": "xlbench.cli.methods:audit",
    "leaderboard": "xlbench.cli.leaderboard:leaderboard",
    "reproduce": "xlbench.cli.leaderboard:reproduce",
    "grid": "xlbench.cli.leaderboard:grid",
    "weights": "xlbench.cli.weights:weights",
    "doctor": "xlbench.cli.doctor:doctor",
}
SHORT_HELP = {
    "data": "Download, import or prepare corpora; see which languages are ready.",
    "features": "Extract and manage cached encoder features.",
    "run": "Run a method on one target language for several seeds.",
    "runs": "List and show run records; copy missing ones to MLflow.",
    "methods": "Registered methods (entry-point group xlbench.methods).",
    "check-method": "Run the method contract on the synthetic corpus in seconds.",
    "audit": "Prove a method's outputs ignore hidden labels (hidden-label invariance).",
    "leaderboard": "Render, check and validate the leaderboard.",
    "reproduce": "Run the paper's grids and put our numbers beside the paper's.",
    "grid": "Run methods × targets × N_k × seeds, locally or on Slurm.",
    "weights": "Download and list encoder weights (Hugging Face cache, BYOL-S).",
    "doctor": "Check the environment and say how to fix each problem.",
}


#: commands that run methods in worker processes in this process (a grid's pool workers start their own)
STARTS_WORKERS = frozenset({"run", "audit", "check-method"})


class LazyGroup(click.Group):
    """Imports a command's module only when the command is used; turns user errors into one
    line and a non-zero exit, and Ctrl-C into a short note."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None or not self._available(name):
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.list_commands(ctx):
            from xlbench.errors import did_you_mean

            ctx.fail(f"no such command {name!r}{did_you_mean(name, self.list_commands(ctx))}")
        if name in STARTS_WORKERS and not {"--help", "-h"} & set(args[1:]):
            # before the command's module imports the harness: the fork server imports torch on
            # the other core meanwhile (xlbench.worker_server)
            from xlbench.worker_server import warm_up

            warm_up()
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        """The one error path: every failure a user can cause is one line and a non-zero exit."""
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # click would print usage, a hint and the error: three lines
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            fail(ctx, f"{exc.format_message().rstrip('.')} (see '{where} --help')", exc.exit_code)
        except XLBenchError as exc:
            fail(ctx, str(exc), exc.exit_code)
        except OSError as exc:  # a full or read-only disk, a permission, a path that is a file
            fail(ctx, os_error_line(exc), EXIT_ERROR)
        except MemoryError as exc:
            fail(ctx, memory_error_line(exc), EXIT_ERROR)
        except KeyboardInterrupt:
            resumable = ctx.invoked_subcommand in RESUMABLE
            note = ": records finished so far are kept; run the same command again to resume" if resumable else ""
            click.secho(f"\ninterrupted{note}", err=True)
            ctx.exit(EXIT_INTERRUPTED)


#: commands that skip what earlier runs finished, so running them again resumes
RESUMABLE = ("run", "grid", "reproduce")


def fail(ctx: click.Context, line: str, code: int) -> NoReturn:
    """Print ``error: <line>`` (one line) on stderr and exit with ``code``."""
    click.secho(f"error: {' '.join(line.split())}", fg="red", err=True)
    ctx.exit(code)


def _go_offline(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        from xlbench.hub import set_offline

        set_offline()
    return value


def offline_option(func: F) -> F:
    """``--offline`` on a command: nothing is downloaded (same as ``xlbench --offline`` or HF_HUB_OFFLINE=1)."""
    return click.option(
        "--offline",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_go_offline,
        help="Never touch the network (as HF_HUB_OFFLINE=1): use only what is on this machine.",
    )(func)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="xlbench")
@offline_option
def main() -> None:
    """Cross-lingual speech emotion recognition benchmark (after Agarla et al. 2024).

    Point it at the corpora you have (`xlbench data prepare`), or let it use the built-in
    synthetic corpus, then `xlbench run --method pseudolabel --target italian`.
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
