"""How long `xlbench data prepare` takes on a full-size corpus tree.

Builds complete EMOVO (588 files, 3.1 s each at 48 kHz, as the real corpus's average) and
EMO-DB (535 files, 2.8 s at 16 kHz) trees of synthetic tone-plus-noise audio in a temporary
folder, then times the two stages of preparation: scanning the file names, and reading,
checking and hashing every kept file into the manifest. Prints files/s and audio-s/s.

    python benchmarks/bench_prepare.py [--keep]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import corpus_fixtures as fx
from xlbench.corpora import get_corpus
from xlbench.manifest import build_manifest


def bench(name: str, make, root: Path) -> None:
    t0 = time.perf_counter()
    folder = make(root / name)
    t_build = time.perf_counter() - t0
    loader = get_corpus(name)
    t0 = time.perf_counter()
    scan = loader.scan(folder)
    t_scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    manifest = build_manifest(loader.spec, scan)
    t_read = time.perf_counter() - t0
    audio = sum(u.duration for u in manifest.utterances)
    size = sum(p.stat().st_size for p in folder.rglob("*.wav")) / 2**20
    print(
        f"{name:7s} {scan.files_seen:5d} files ({size:6.1f} MiB, tree built in {t_build:5.1f} s): "
        f"scan {t_scan:5.2f} s, read+check+hash {len(manifest.utterances)} kept files {t_read:6.2f} s "
        f"= {len(manifest.utterances) / t_read:6.0f} files/s, {audio / t_read:7.0f} audio-s/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the generated trees")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="xlbench-bench-prepare-"))
    print(f"{os.cpu_count()} CPUs; trees under {root}")
    bench("emovo", lambda r: fx.make_emovo(r, fx.EMOVO_SPEAKERS, fx.EMOVO_SENTENCES, seconds=3.1), root)
    bench("emodb", lambda r: fx.make_emodb(r, fx.original_stems(), seconds=2.8), root)
    if not args.keep:
        import shutil

        shutil.rmtree(root)


if __name__ == "__main__":
    main()
