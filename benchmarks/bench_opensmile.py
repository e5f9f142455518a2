"""Hand-crafted features against the built-in default: UA and wall time on the generated corpus.

    python benchmarks/bench_opensmile.py [--method crosslingual] [--seeds 0,1,2]
                                         [--targets french,german,italian,persian]
                                         [--configs logmel-stats:linear,opensmile-compare:mlp,...]

English -> each target with a frozen encoder, through the harness's own runner (the records are
the ones `xlbench run` writes), in a temporary XLBENCH_HOME so that every extraction is cold:

- **extract s**: encoding every utterance of the five languages once (the feature cache, cold);
- **train s**: fitting and scoring ``--method`` for all seeds and targets from the cache;
- target UA % per target, mean ± std over seeds, and the mean over targets.

A config is ``encoder:head[:key=value...]``; extra keys are method options (``--set``), e.g.
``logmel-stats:linear:crop_seconds=60`` trains on whole utterances instead of 2 s crops. The
synthetic corpus is generated first (not timed). The default method, crosslingual, trains on
English alone: the job of issue 16 (300 training, 200 validation and 100 test utterances).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("XLBENCH_PROGRESS", "0")
os.environ.setdefault("XLBENCH_MLFLOW", "0")

DEFAULT_CONFIGS = (
    "logmel-stats:linear,logmel-stats:linear:crop_seconds=60,logmel-stats:mlp,"
    "opensmile-egemaps:linear,opensmile-egemaps:mlp,opensmile-compare:linear,opensmile-compare:mlp"
)
LANGUAGES = ("english", "french", "german", "italian", "persian")


def parse_config(text: str) -> tuple[str, str, dict[str, object]]:
    encoder, head, *rest = text.split(":")
    sets: dict[str, object] = {"head_type": head}
    for item in rest:
        key, _, value = item.partition("=")
        sets[key] = float(value) if value.replace(".", "", 1).isdigit() else value
    return encoder, head, sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="crosslingual")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--targets", default="french,german,italian,persian")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    targets = args.targets.split(",")

    home = Path(tempfile.mkdtemp(prefix="xlbench-bench-opensmile-"))
    os.environ["XLBENCH_HOME"] = str(home)
    os.environ.pop("XLBENCH_RESULTS", None)
    from tabulate import tabulate
    from xlbench.datasets import load_language

    from xlbench.encoders import build_encoder
    from xlbench.features import FeatureCache
    from xlbench.runner import RunRequest, execute

    t0 = time.perf_counter()
    utts = [u for lang in LANGUAGES for part in load_language(lang, "synthetic").parts.values() for u in part]
    print(f"synthetic corpus: {len(utts)} utterances, {sum(u.duration for u in utts):.0f} s of audio "
          f"(generated in {time.perf_counter() - t0:.1f} s, not counted)", flush=True)

    extract_s: dict[str, float] = {}
    rows = []
    load_before = os.getloadavg()
    for config in args.configs.split(","):
        encoder, head, sets = parse_config(config)
        if encoder not in extract_s:
            t0 = time.perf_counter()
            FeatureCache(build_encoder(encoder)).get_or_compute(utts, device="cpu", progress=False)
            extract_s[encoder] = time.perf_counter() - t0
        uas: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for target in targets:
            req = RunRequest(method=args.method, target=target, encoder=encoder, seeds=seeds, data="synthetic",
                             device="cpu", overrides=tuple(sets.items()), results=home / "results",
                             show_progress=False)
            uas[target] = [100 * o.record.metrics["target"].ua for o in execute(req, on_note=lambda _: None)]
        train_s = time.perf_counter() - t0
        cells = [f"{statistics.mean(v):.1f} ± {statistics.stdev(v) if len(v) > 1 else 0:.1f}" for v in uas.values()]
        overall = statistics.mean(statistics.mean(v) for v in uas.values())
        label = " ".join(f"{k}={v}" for k, v in sets.items() if k != "head_type")
        rows.append([encoder + (f" ({label})" if label else ""), head, *cells, f"{overall:.1f}",
                     f"{extract_s[encoder]:.1f}", f"{train_s:.1f}"])
        print(f"  {config}: mean UA {overall:.1f}, train {train_s:.1f} s", flush=True)
    load_after = os.getloadavg()
    headers = ["encoder", "head", *[t.title() for t in targets], "mean UA", "extract s (5 langs)",
               f"train s ({len(targets)} targets x {len(seeds)} seeds)"]
    print()
    print(f"English -> target, {args.method}, frozen encoders, seeds {args.seeds}: target UA % (mean ± std over seeds)")
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print(f"{date.today()}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} before / {load_after[0]:.2f} after")
    print(f"records kept in {home / 'results'}")


if __name__ == "__main__":
    main()
