"""The fork server that starts every method worker (``xlbench.isolation``): what it preloads,
and starting it early.

Light on purpose (no torch, no other xlbench module): the command line starts the server before
it imports the harness, so the server imports torch on one core while the harness process
imports its own on the other (the two imports take about 3 s each on 2 CPU cores; run one after
the other they made the main command about 10 % slower, docs/performance.md). The server holds
no data whenever it starts: every worker it forks gets its job through a pipe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context

#: modules the fork server imports before it forks any worker; the first makes it die with the
#: harness, torch._dynamo is what every optimizer's first step would import in each worker
PRELOAD = ["xlbench.parent_guard", "torch", "torch.optim", "torch._dynamo", "xlbench.isolation", "xlbench.training",
           "xlbench.view"]


def context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context workers start from: the fork server where the platform has one."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def warm_up() -> None:
    """Start the fork server now, in the background, so the first worker does not wait for it
    (a no-op once it runs)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        context()
        with contextlib.suppress(Exception):
            forkserver.ensure_running()
