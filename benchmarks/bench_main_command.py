"""How long the README's main command takes on a fresh machine (cold).

    python benchmarks/bench_main_command.py [--target italian] [--encoder NAME] [--keep] [--corpus-from HOME]

Runs ``xlbench run --method pseudolabel --target italian`` in a subprocess with an empty,
temporary XLBENCH_HOME and MLflow off, so everything is done from scratch: generating the
synthetic corpus, extracting the features, and pseudolabel plus both bounds for three seeds.
Prints the wall time (the goal is at most 60 s on 2 CPU cores) and the machine's load, which
matters on a shared machine. ``--encoder`` adds ``--encoder NAME`` to the command, to time the
candidates for ``--encoder auto`` (docs/performance.md). ``--corpus-from HOME`` hard-links the
generated corpus of another data home into the empty one first, so that everything but the
corpus generation (the longest and most variable part, the same in every commit since it was
written) is timed: for comparing two commits with less noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="italian")
    parser.add_argument("--encoder", default=None, help="pass --encoder NAME (default: the command's own auto)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary XLBENCH_HOME and print its path")
    parser.add_argument("--corpus-from", type=Path, default=None,
                        help="a data home whose generated corpus (synthetic/) is linked in first: not timed")
    args = parser.parse_args()

    xlbench = shutil.which("xlbench") or str(Path(sys.executable).with_name("xlbench"))
    home = Path(tempfile.mkdtemp(prefix="xlbench-bench-main-"))
    env = {**os.environ, "XLBENCH_HOME": str(home), "XLBENCH_MLFLOW": "0", "XLBENCH_PROGRESS": "0"}
    env.pop("XLBENCH_RESULTS", None)  # results go under the temporary home too
    if args.corpus_from is not None:
        source = args.corpus_from / "synthetic"
        if not source.is_dir():
            raise SystemExit(f"error: {source} is not a generated corpus (no synthetic/ folder)")
        shutil.copytree(source, home / "synthetic", copy_function=os.link)
    cmd = [xlbench, "run", "--method", "pseudolabel", "--target", args.target]
    if args.encoder:
        cmd += ["--encoder", args.encoder]
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"the command failed with exit status {proc.returncode}")
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(proc.stdout.rstrip())
    print()
    cold = "corpus linked in, nothing else" if args.corpus_from else "cold: empty XLBENCH_HOME"
    print(f"$ xlbench {' '.join(cmd[1:])}  ({cold}, MLflow off)")
    # RUSAGE_CHILDREN counts the processes the command waited for: not the method workers, which
    # are children of its fork server
    print(f"wall time: {wall:.1f} s  (goal <= 60 s); CPU time of the command and the processes it waited for: "
          f"{cpu:.1f} s (not the method workers)")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs"
          + (f", load average {load_before[0]:.2f} before / {load_after[0]:.2f} after" if load_before else ""))
    if args.keep:
        print(f"XLBENCH_HOME kept at {home}")


if __name__ == "__main__":
    main()
