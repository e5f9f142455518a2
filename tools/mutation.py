"""Mutation testing of the modules that carry guarantees (docs/testing.md). Run through tools/mutation.sh.

For each module: copy the checkout (tracked and untracked, not ignored files) to a scratch folder,
point mutmut 3 at that one module and the tests that guard it ([tool.xlbench-mutation] in
pyproject.toml), run it, and print generated / killed / survived / timeout / other and the wall
time (``MUTATION_NAMES="name ..."`` re-checks only the mutants named). Survivors' diffs go to
``$MUTATION_OUT/<module>.survivors.txt`` (default /tmp/xlbench-mutation). The checkout itself is
never written to.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATUS = {1: "killed", 3: "killed", 0: "survived", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout",
          255: "timeout", 33: "no tests", 5: "no tests", 37: "killed"}


def toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def scratch_copy(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith("mutants/"):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def configure(work: Path, module: str, tests: list[str]) -> None:
    """Rewrite the scratch copy's [tool.mutmut] for one module."""
    source = module.split("/")[0]
    text = (work / "pyproject.toml").read_text()
    start = text.index("[tool.mutmut]")
    end = text.index("\n[", start + 1)
    section = "\n".join([
        "[tool.mutmut]",
        f"source_paths = {toml_list([source])}",
        f"only_mutate = {toml_list([module])}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]',
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}",
        # everything else the tests read (tools/, methods/, docs/ ...) goes along into mutants/
        f"also_copy = {toml_list(sorted(p.name for p in work.iterdir() if p.name not in (source, 'mutants')))}",
        "use_git_change_detection = false",
        "timeout_multiplier = 5.0",
        "",
    ])
    (work / "pyproject.toml").write_text(text[:start] + section + text[end:])


def import_root_layout(work: Path, module: str) -> str:
    """The module's path as mutmut must see it. mutmut 3 imports mutated code from ``mutants/``
    (its root on sys.path) and names mutants after the file's path, so a package that lives
    under an import root that is not itself a package (``methods/xlbench_methods``) is moved to
    the scratch copy's top: ``methods/xlbench_methods/pseudolabel.py`` -> ``xlbench_methods/pseudolabel.py``."""
    top, _, rest = module.partition("/")
    if "/" not in rest or (work / top / "__init__.py").exists():  # a package at the top, or no package
        return module
    package = rest.split("/")[0]
    shutil.move(work / top / package, work / package)
    return rest


def mutant_pattern(module: str, function: str) -> str:
    dotted = module.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return f"{dotted}.{function}"


def survivor_diffs(mutated: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's diff against the original function, read from mutmut's trampolined copy
    (as ``mutmut show`` prints it, without starting mutmut once per mutant)."""
    source = mutated.read_text()
    lines = source.splitlines()
    functions = {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    out = {}
    for name in names:
        fn = name.rsplit(".", 1)[-1]
        orig = functions.get(fn.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "").splitlines()[1:]
        new = functions.get(fn, "").splitlines()[1:]
        out[name] = "\n".join(ln for ln in difflib.unified_diff(orig, new, lineterm="", n=0) if ln[:1] in "-+"
                              and not ln.startswith(("---", "+++")))
    return out


def run_module(module: str, spec: dict, out: Path, children: int) -> dict:
    tests = spec["tests"]
    slug = module.replace("/", "_").removesuffix(".py")
    with tempfile.TemporaryDirectory(prefix="xlbench-mutation-") as tmp:
        work = Path(tmp)
        scratch_copy(work)
        mutated = import_root_layout(work, module)
        patterns = [mutant_pattern(mutated, f) for f in spec.get("functions", [])]
        if os.environ.get("MUTATION_NAMES"):  # re-check given mutants only (e.g. last run's survivors)
            patterns = os.environ["MUTATION_NAMES"].split()
        configure(work, mutated, tests)
        # one thread: mutmut's time limit is CPU time, which a torch thread pool spends faster than
        # wall time (mutants then "time out" that merely ran multi-threaded)
        env = dict(os.environ, XLBENCH_PROGRESS="0", XLBENCH_MLFLOW="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        started = time.monotonic()
        with open(out / f"{slug}.log", "w") as log:
            proc = subprocess.run(
                ["mutmut", "run", "--max-children", str(children), *patterns],
                cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        wall = time.monotonic() - started
        meta = work / "mutants" / (mutated + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        if patterns:
            codes = {k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, p) for p in patterns)}
        counts = Counter(STATUS.get(c, "not run" if c is None else f"exit {c}") for c in codes.values())
        survivors = sorted(k for k, c in codes.items() if c == 0)
        timeouts = sorted(k for k, c in codes.items() if STATUS.get(c) == "timeout")
        diffs = survivor_diffs(work / "mutants" / mutated, survivors + timeouts)
        (out / f"{slug}.survivors.txt").write_text(
            "".join(f"## {n}\n{diffs[n]}\n" for n in survivors)
            + "".join(f"## timeout: {n}\n{diffs[n]}\n" for n in timeouts)
        )
    return {"module": module, "generated": len(codes), **counts, "wall_s": round(wall), "rc": proc.returncode}


def main(argv: list[str]) -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["xlbench-mutation"]["modules"]
    wanted = argv or list(config)
    unknown = [m for m in wanted if m not in config]
    if unknown:
        print(f"no mutation configuration for {', '.join(unknown)} (known: {', '.join(config)})", file=sys.stderr)
        return 2
    if shutil.which("mutmut") is None:
        print("mutmut is not installed: uv pip install -e '.[dev]'", file=sys.stderr)
        return 2
    out = Path(os.environ.get("MUTATION_OUT", "/tmp/xlbench-mutation"))
    out.mkdir(parents=True, exist_ok=True)
    children = int(os.environ.get("MUTATION_CHILDREN", os.cpu_count() or 2))
    print(f"{'module':<40} {'generated':>9} {'killed':>7} {'survived':>8} {'timeout':>7} {'other':>6} {'wall':>7}")
    worst = 0
    for module in wanted:
        r = run_module(module, config[module], out, children)
        other = r["generated"] - r.get("killed", 0) - r.get("survived", 0) - r.get("timeout", 0)
        print(f"{module:<40} {r['generated']:>9} {r.get('killed', 0):>7} {r.get('survived', 0):>8} "
              f"{r.get('timeout', 0):>7} {other:>6} {r['wall_s']:>6}s", flush=True)
        if r["rc"] != 0 or not r["generated"]:
            print(f"  mutmut exited {r['rc']}; see {out}/{module.replace('/', '_').removesuffix('.py')}.log")
            worst = 1
    print(f"survivors' diffs: {out}/<module>.survivors.txt")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
