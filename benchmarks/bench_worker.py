"""What running a method in its worker process costs per run, against running it in-process.

    python benchmarks/bench_worker.py [--methods pseudolabel,crosslingual,multilingual] [--repeat 4]

For each method: one English → Italian task (logmel-stats, seed 0, the method's default config),
its inputs built once, then ``fit_and_predict`` alternately in the worker (the real path: a
process forked from the fork server, handed the method's view) and in-process (tests only),
``--repeat`` times each after one warm-up of each. Prints the median seconds of each and the
difference: the worker's cost per run (the job's transfer, the process, its first touches).
Uses a temporary XLBENCH_HOME; the synthetic corpus is generated first (not timed), or linked
from ``--corpus-from HOME``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="pseudolabel,crosslingual,multilingual")
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--corpus-from", type=Path, default=None, help="a data home whose synthetic/ is linked in")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="xlbench-bench-worker-"))
    if args.corpus_from is not None:
        shutil.copytree(args.corpus_from / "synthetic", home / "synthetic", copy_function=os.link)
    os.environ.update(XLBENCH_HOME=str(home), XLBENCH_PROGRESS="0", XLBENCH_MLFLOW="0")

    from tabulate import tabulate

    from xlbench.fitting import fit_and_predict, input_parts
    from xlbench.runner import RunRequest, prepare
    from xlbench.tasks import build_task
    from xlbench.worker_server import warm_up

    warm_up()
    rows = []
    try:
        for name in args.methods.split(","):
            p = prepare(RunRequest(method=name, target="italian", encoder="logmel-stats", data="synthetic",
                                   show_progress=False))
            cfg = p.method_cls.Config(**p.config_dump)
            inputs = input_parts(p, getattr(cfg, "crop_seconds", 2.0), False)
            task, truth = build_task(p.source, p.target, classes=p.classes, n_labeled=p.n_labeled, seed=0,
                                     selection="paper", needs=p.method_cls.needs)
            times: dict[str, list[float]] = {"worker": [], "in-process": []}
            for i in range(args.repeat + 1):
                for isolation in ("worker", "in-process"):
                    t = time.perf_counter()
                    fit_and_predict(p, inputs, task, truth, show_progress=False, isolation=isolation)
                    if i:  # the first of each is a warm-up
                        times[isolation].append(time.perf_counter() - t)
            w, ip = statistics.median(times["worker"]), statistics.median(times["in-process"])
            rows.append([name, f"{w:.2f}", f"{ip:.2f}", f"{w - ip:+.2f}"])
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(tabulate(rows, headers=["method", "worker s", "in-process s", "worker cost s"], tablefmt="github"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"median of {args.repeat} runs each; python {platform.python_version()}, {os.cpu_count()} CPUs"
          + (f", load average {load[0]:.2f}" if load else ""))


if __name__ == "__main__":
    main()
