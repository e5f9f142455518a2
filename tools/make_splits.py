"""Make the shipped speaker-split files (xlbench/splits/v<version>/<corpus>.json). Run once per
split version; the outputs are committed and never regenerated silently.

Rule (PROTOCOL.md section 3): per corpus, by speaker, n_val = n_test = max(1, round(0.2 n))
and the rest train (RAVDESS 14/5/5, SAVEE 2/1/1, CaFE 8/2/2, EMO-DB 6/2/2, EMOVO 4/1/1,
ShEMO 53/17/17). Among the assignments that keep each split's gender mix as close as possible
to the corpus's and every class present in every split, a seeded random search picks the one
whose per-class shares are closest to 60/20/20. TESS (two speakers): OAF trains, YAF is divided
by word between validation and test.

    python tools/make_splits.py [--version 1] [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from xlbench.protocol import EMOTIONS_5, REAL_CORPORA, CorpusSpec, Emotion

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "xlbench" / "corpora" / "data"
TARGET = {"train": 0.6, "val": 0.2, "test": 0.2}


def balanced(spec: CorpusSpec, per_speaker: dict[Emotion, int]) -> dict[str, Counter]:
    return {s: Counter(per_speaker) for s in spec.speakers}


def counts_from_ids(spec: CorpusSpec, ids: list[str], parse) -> dict[str, Counter]:
    out: dict[str, Counter] = {s: Counter() for s in spec.speakers}
    for stem in ids:
        speaker, code = parse(stem)
        emo = spec.label_map[code]
        if emo is not None:
            out[speaker][emo] += 1
    return out


def speaker_counts(name: str) -> dict[str, Counter] | None:
    spec = REAL_CORPORA.get(name)
    A, F, H, N, S = EMOTIONS_5
    if name == "ravdess":
        return balanced(spec, {A: 8, F: 8, H: 8, N: 4, S: 8})
    if name == "savee":
        return balanced(spec, {A: 15, F: 15, H: 15, N: 30, S: 15})
    if name == "cafe":
        return balanced(spec, {A: 12, F: 12, H: 12, N: 6, S: 12})
    if name == "emovo":
        return balanced(spec, {e: 14 for e in EMOTIONS_5})
    if name == "emodb":
        ids = (DATA / "emodb_535.txt").read_text().split()
        return counts_from_ids(spec, ids, lambda s: (s[0:2], s[5]))
    if name == "shemo":
        ids = (DATA / "shemo_ids.txt").read_text().split()
        return counts_from_ids(spec, ids, lambda s: (s[0:3], s[3]))
    return None


def synth_specs() -> dict[str, CorpusSpec]:
    from xlbench.synth.spec import SYNTH_SPECS

    return {spec.name: spec for spec in SYNTH_SPECS.values()}


def synth_counts(spec: CorpusSpec) -> dict[str, Counter]:
    per = {e: n // len(spec.speakers) for e, n in spec.expected.items()}
    return balanced(spec, per)


def sizes(n: int) -> dict[str, int]:
    k = max(1, round(0.2 * n))
    return {"train": n - 2 * k, "val": k, "test": k}


def gender_quota(speakers: dict[str, str], size: dict[str, int]) -> dict[str, dict[str, int]]:
    """Females per split, as close as possible to the corpus's share (largest remainder)."""
    n_f = sum(g == "female" for g in speakers.values())
    share = n_f / len(speakers)
    ideal = {s: share * k for s, k in size.items()}
    quota = {s: int(np.floor(v)) for s, v in ideal.items()}
    left = n_f - sum(quota.values())
    for s in sorted(ideal, key=lambda s: ideal[s] - quota[s], reverse=True)[:left]:
        quota[s] += 1
    return {s: {"female": quota[s], "male": size[s] - quota[s]} for s in size}


def score(assign: dict[str, str], counts: dict[str, Counter]) -> float:
    total = Counter()
    per = {s: Counter() for s in TARGET}
    for spk, where in assign.items():
        per[where].update(counts[spk])
        total.update(counts[spk])
    loss = 0.0
    for e, n in total.items():
        if n == 0:
            continue
        for s, want in TARGET.items():
            got = per[s][e]
            if got == 0:
                return float("inf")  # every class in every split
            loss += (got / n - want) ** 2
    return loss


def search(spec: CorpusSpec, counts: dict[str, Counter], seed: int = 0, tries: int = 20000) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    size = sizes(len(spec.speakers))
    quota = gender_quota(dict(spec.speakers), size)
    by_gender = {g: sorted(s for s, gg in spec.speakers.items() if gg == g) for g in ("female", "male")}
    best, best_score = None, float("inf")
    for _ in range(tries):
        assign = {}
        for g, spk in by_gender.items():
            order = list(rng.permutation(spk))
            for s in ("train", "val", "test"):
                for _ in range(quota[s][g]):
                    assign[order.pop()] = s
        sc = score(assign, counts)
        if sc < best_score:
            best, best_score = assign, sc
    if best is None:
        raise SystemExit(f"{spec.name}: no assignment keeps every class in every split")
    return dict(sorted(best.items()))


def describe(spec: CorpusSpec, assign: dict[str, str], counts: dict[str, Counter]) -> str:
    size = Counter(assign.values())
    return (
        f"speaker-independent {size['train']}/{size['val']}/{size['test']} train/val/test by speaker "
        "(n_val = n_test = max(1, round(0.2 n))), gender mix kept per split, every class in every "
        "split; chosen by tools/make_splits.py (seeded search closest to 60/20/20 per class)"
    )


def tess_file(version: str) -> dict:
    return {
        "corpus": "tess",
        "version": version,
        "protocol_version": "1",
        "description": (
            "two speakers only: OAF trains; YAF's utterances are divided between validation and "
            "test by word (half of the words each, ordered by a salted hash), never into train"
        ),
        "speakers": {"OAF": "train", "YAF": "rule"},
        "rules": {
            "YAF": {"rule": "text-hash-half", "salt": f"xlbench-splits-v{version}-tess", "splits": ["val", "test"]}
        },
    }


def build(version: str) -> dict[str, dict]:
    files = {"tess": tess_file(version)}
    specs: dict[str, tuple[CorpusSpec, dict[str, Counter]]] = {}
    for name, spec in REAL_CORPORA.items():
        counts = speaker_counts(name)
        if counts is not None:
            specs[name] = (spec, counts)
    try:
        for name, spec in synth_specs().items():
            specs[name] = (spec, synth_counts(spec))
    except ImportError:
        print("note: xlbench.synth not importable; synthetic splits skipped", file=sys.stderr)
    for name, (spec, counts) in specs.items():
        assign = search(spec, counts)
        files[name] = {
            "corpus": name,
            "version": version,
            "protocol_version": "1",
            "description": describe(spec, assign, counts),
            "speakers": assign,
        }
    return files


def report(name: str, file: dict, counts: dict[str, Counter] | None) -> str:
    if counts is None:
        return f"{name}: {file['description']}"
    per = {s: Counter() for s in TARGET}
    for spk, where in file["speakers"].items():
        if where in per:
            per[where].update(counts[spk])
    cells = []
    for s in TARGET:
        cells.append(f"{s} " + " ".join(f"{e.letter}{per[s][e]}" for e in EMOTIONS_5))
    return f"{name}: " + " | ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", default="1")
    ap.add_argument("--check", action="store_true", help="fail if the committed files differ")
    args = ap.parse_args()
    out = ROOT / "xlbench" / "splits" / f"v{args.version}"
    out.mkdir(parents=True, exist_ok=True)
    stale = []
    synth = {}
    with contextlib.suppress(ImportError):
        synth = {n: synth_counts(s) for n, s in synth_specs().items()}
    for name, file in sorted(build(args.version).items()):
        text = json.dumps(file, indent=1, ensure_ascii=False) + "\n"
        path = out / f"{name}.json"
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        path.write_text(text)
        counts = speaker_counts(name) if name in REAL_CORPORA else synth.get(name)
        print(report(name, file, counts))
    if stale:
        raise SystemExit(f"split files differ from the generator: {', '.join(stale)}")
    if not re.match(r"^\d+$", args.version):
        raise SystemExit("version must be a number")


if __name__ == "__main__":
    main()
