"""How long the hidden-label invariance audit takes for each built-in method (goal: <= 30 s each
on 2 CPU cores), and what the method's worker costs per run.

    python benchmarks/bench_audit.py [--methods crosslingual,pseudolabel] [--repeat 2]

Uses a temporary XLBENCH_HOME: the synthetic corpus is generated first (not timed). The first
audit of the process also starts the worker fork server (timed separately on its own line).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="crosslingual,multilingual,pseudolabel,dann,nnpm")
    parser.add_argument("--repeat", type=int, default=2, help="audits per method (the best is reported)")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="xlbench-bench-audit-")
    os.environ.update(XLBENCH_HOME=home, XLBENCH_PROGRESS="0", XLBENCH_MLFLOW="0")

    from tabulate import tabulate

    from xlbench.audit import run_audit
    from xlbench.method import get_method
    from xlbench.synth import ensure_synthetic
    from xlbench.worker_server import warm_up

    for lang in ("english", "italian"):
        ensure_synthetic(lang)
    t = time.perf_counter()
    warm_up()
    first = run_audit(get_method("crosslingual"), get_method("crosslingual").Config().model_dump(mode="json"))
    print(f"first audit of the process (fork server start + features of the slice): {time.perf_counter() - t:.1f} s"
          f" ({first.verdict})")
    rows = []
    for name in args.methods.split(","):
        cls = get_method(name)
        times, verdict = [], ""
        for _ in range(args.repeat):
            t = time.perf_counter()
            res = run_audit(cls, cls.Config().model_dump(mode="json"))
            times.append(time.perf_counter() - t)
            verdict = res.verdict
        rows.append([name, verdict, f"{min(times):.2f}", f"{max(times):.2f}"])
    print(tabulate(rows, headers=["method", "verdict", "best s", "worst s"], tablefmt="github"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs"
          + (f", load average {load[0]:.2f}" if load else ""))


if __name__ == "__main__":
    main()
