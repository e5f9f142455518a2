"""How long generating the synthetic corpus takes.

    python benchmarks/bench_synth.py [--workers N] [--no-per-language]

Generates all five languages into a temporary folder (timed as a whole), then each language
alone, and prints wall time, utterances per second and seconds of audio produced. Nothing is
kept.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from xlbench.synth.generate import default_workers, espeak_version, generate, read_stamp
from xlbench.synth.spec import SYNTH_LANGUAGES


def _run(out: Path, languages: list[str] | None, workers: int) -> tuple[float, int, float]:
    started = time.perf_counter()
    generate(out, languages=languages, workers=workers)
    wall = time.perf_counter() - started
    stamp = read_stamp(out) or {}
    count = sum(v["utterances"] for v in stamp.get("languages", {}).values())
    return wall, count, float(stamp.get("audio_seconds", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--no-per-language", action="store_true", help="time only the full corpus")
    args = parser.parse_args()

    print(f"espeak-ng {espeak_version()}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"{args.workers} worker process(es)")
    with tempfile.TemporaryDirectory(prefix="xlbench-bench-synth-") as tmp:
        wall, count, audio = _run(Path(tmp) / "all", None, args.workers)
        print(f"all five languages: {wall:6.2f} s wall, {count} utterances, {count / wall:6.1f} utt/s, "
              f"{audio:7.1f} s of audio ({audio / count:.2f} s per utterance, "
              f"{audio / wall:.0f}x real time)")
        if not args.no_per_language:
            total = 0.0
            for lang in SYNTH_LANGUAGES.values():
                wall, count, audio = _run(Path(tmp) / lang.code, [lang.name], args.workers)
                total += wall
                print(f"  {lang.name:<8} {wall:6.2f} s wall, {count} utterances, {count / wall:6.1f} utt/s, "
                      f"{audio:7.1f} s of audio")
            print(f"  (sum of the per-language runs: {total:.2f} s; each pays its own process start-up)")


if __name__ == "__main__":
    main()
