"""How long the README's main command takes on a fresh machine (cold).

    python benchmarks/bench_main_command.py [--target italian] [--keep]

Runs ``xlbench run --method pseudolabel --target italian`` in a subprocess with an empty,
temporary XLBENCH_HOME and MLflow off, so everything is done from scratch: generating the
synthetic corpus, extracting the features, and pseudolabel plus both bounds for three seeds.
Prints the wall time (the goal is at most 2 minutes on 2 CPU cores) and the machine's load,
which matters on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="italian")
    parser.add_argument("--keep", action="store_true", help="keep the temporary XLBENCH_HOME and print its path")
    args = parser.parse_args()

    xlbench = shutil.which("xlbench") or str(Path(sys.executable).with_name("xlbench"))
    home = Path(tempfile.mkdtemp(prefix="xlbench-bench-main-"))
    env = {**os.environ, "XLBENCH_HOME": str(home), "XLBENCH_MLFLOW": "0", "XLBENCH_PROGRESS": "0"}
    env.pop("XLBENCH_RESULTS", None)  # results go under the temporary home too
    cmd = [xlbench, "run", "--method", "pseudolabel", "--target", args.target]
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
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
    print(proc.stdout.rstrip())
    print()
    print(f"$ xlbench {' '.join(cmd[1:])}  (cold: empty XLBENCH_HOME, MLflow off)")
    print(f"wall time: {wall:.1f} s  (goal <= 120 s)")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs"
          + (f", load average {load_before[0]:.2f} before / {load_after[0]:.2f} after" if load_before else ""))
    if args.keep:
        print(f"XLBENCH_HOME kept at {home}")


if __name__ == "__main__":
    main()
