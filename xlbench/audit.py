"""The hidden-label invariance audit (DESIGN.md, trust model 4): proof that a method's outputs
do not depend on labels it must not see, whatever route it might take to them.

On a small task cut from the generated corpus (English → Italian), the method runs three
times through the same worker path as a real run:

1. and 2. unchanged: the outputs must be identical (else: "cannot audit: nondeterministic");
3. with the hidden labels permuted everywhere the harness and the disk hold them: every label
   of U_t, of the target test set and of the source test set moves to the next class, in the
   harness's truth, in the manifests and in the file names of the private copy of the corpus
   the run reads. What the method may see stays identical: the audio (hence the keys and their
   order), D_s, K_t (pinned) and the validation labels behind the scoring callback.

The outputs compared are the test-set probabilities, the pseudo-labels a method reports, the
selected epoch and score, and the per-epoch history. Any difference between runs 1 and 3
means the method read hidden labels: the audit fails and names the output that changed.

The private copy is a data home of its own (``XLBENCH_HOME`` of the method's worker points
there) whose corpus files are hard links to the generated corpus under label-bearing names;
world A is deleted before world B is written, at the same path.

What the audit cannot prove: a method that fetches labels from outside the machine, that reads
another copy of the corpus elsewhere on the machine (e.g. the user's own data home, found by
guessing its path), that behaves differently when it detects the audit, or that leaks only on
tasks unlike this small one (docs/adding-a-method.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from xlbench import __version__
from xlbench.errors import LeakError, MethodError, XLBenchError
from xlbench.home import atomic_write_json, data_home
from xlbench.isolation import Isolation, MethodOutput
from xlbench.languages import LanguageData, load_language
from xlbench.locks import ProcessLock
from xlbench.manifest import Utterance
from xlbench.method import METHODS, Method, make_config
from xlbench.protocol import EMOTIONS_5
from xlbench.records import AuditStamp, AuditVerdict
from xlbench.tasks import ALL_LABELS, build_task

AUDIT_VERSION = "1"
AUDIT_TARGET = "italian"
#: utterances per split of the audit task (class-balanced slices of the generated corpus)
SOURCE_SLICE = {"train": 60, "val": 20, "test": 20}
TARGET_SLICE = {"train": 40, "val": 20, "test": 20}
AUDIT_N_LABELED = 10
AUDIT_SEED = 0


def smoke_overrides(cls: type[Method]) -> dict[str, Any]:
    """Fast settings: a method may define ``smoke_config()``; else few epochs, small batches."""
    if hasattr(cls, "smoke_config"):
        return dict(cls.smoke_config())
    fields = cls.Config.model_fields
    out: dict[str, Any] = {}
    if "epochs" in fields:
        out["epochs"] = 3
    if "batch_size" in fields:
        out["batch_size"] = 32
    return out


def code_sha(cls: type) -> str:
    """SHA-256 of the source file that defines ``cls`` (or of its source text)."""
    with contextlib.suppress(OSError, TypeError):
        path = inspect.getsourcefile(cls)
        if path:
            return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    with contextlib.suppress(OSError, TypeError):
        return hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()
    return "unknown"


def fingerprint(cls: type[Method], config: Mapping[str, Any], mode: str) -> str:
    """What a verdict is about: the method, its version, code and config, the mode, xlbench."""
    try:
        reg = METHODS.registration(cls.name)
        dist = (reg.distribution, reg.version)
    except XLBenchError:
        dist = (cls.__module__, None)
    payload = {
        "audit_version": AUDIT_VERSION,
        "method": cls.name,
        "version": cls.version,
        "distribution": dist,
        "code_sha256": code_sha(cls),
        "config": dict(config),
        "mode": mode,
        "xlbench_version": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


# -- the private copies -----------------------------------------------------------------------


@contextlib.contextmanager
def data_home_at(path: Path) -> Iterator[None]:
    """Point XLBENCH_HOME at ``path`` for the duration (the method's worker inherits it)."""
    old = os.environ.get("XLBENCH_HOME")
    os.environ["XLBENCH_HOME"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("XLBENCH_HOME", None)
        else:
            os.environ["XLBENCH_HOME"] = old


def slice_language(d: LanguageData, per_split: Mapping[str, int]) -> list[Utterance]:
    """A small class-balanced slice of each split: the first n/C of each class, by id."""
    out = []
    for split, utts in d.parts.items():
        by_class: dict[Any, list[Utterance]] = {}
        for u in utts:
            by_class.setdefault(u.emotion, []).append(u)
        k = max(1, per_split[split] // max(len(by_class), 1))
        out += [u for c in sorted(by_class, key=str) for u in by_class[c][:k]]
    return out


def write_world(home: Path, utts: list[Utterance], relabel: Mapping[str, Any]) -> None:
    """A private data home whose generated corpus holds exactly ``utts``.

    ``relabel`` maps utterance ids to another emotion: those files get a name that spells it
    (with a fresh sentence id, so that names never collide). Files are hard links to the
    originals (copies across file systems), so every world holds byte-identical audio and the
    audio keys are those of the original corpus.
    """
    import shutil

    from xlbench.synth import corpus_root, stamp_copy
    from xlbench.synth.spec import SYNTH_LANGUAGES, SYNTH_SPECS

    with data_home_at(home):
        root = corpus_root()
    code_of = {spec.name: {e: raw for raw, e in spec.label_map.items()} for spec in SYNTH_SPECS.values()}
    counts: dict[str, int] = {}
    renamed: dict[str, int] = {}  # per speaker: sentence ids s11, s12, ... (s01-s10 are real)
    for u in sorted(utts, key=lambda u: u.id):
        lang = SYNTH_LANGUAGES[u.language]
        counts[lang.code] = counts.get(lang.code, 0) + 1
        if u.id in relabel:
            n = renamed[u.speaker] = renamed.get(u.speaker, 10) + 1
            if n > 99:
                raise ValueError("the audit slice has too many files per speaker to rename")
            name = f"{code_of[u.corpus][relabel[u.id]]}-{u.speaker}-s{n:02d}.wav"
        else:
            name = f"{u.raw_label}-{u.speaker}-{u.text}.wav"
        dest = root / lang.code / u.speaker / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(u.path, dest)
        except OSError:
            shutil.copyfile(u.path, dest)
    stamp_copy(root, counts)


# -- running and comparing --------------------------------------------------------------------


@dataclass
class Outputs:
    """What the audit compares between runs."""

    probabilities: dict[str, np.ndarray]
    pseudo_labels: list[tuple[int, tuple[str, ...], tuple[int, ...]]]
    selected_epoch: int | None
    selection_score: float | None
    history: list[dict[str, float]]

    @staticmethod
    def of(out: MethodOutput) -> Outputs:
        r = out.report
        return Outputs(
            probabilities={k: np.asarray(v) for k, v in out.probabilities.items()},
            pseudo_labels=[(x.epoch, tuple(x.keys), tuple(int(v) for v in x.labels)) for x in r.pseudo_labels],
            selected_epoch=r.selected_epoch,
            selection_score=r.selection_score,
            history=list(r.history),
        )


def differences(a: Outputs, b: Outputs) -> list[str]:
    """The outputs that differ, each described in a few words (empty: identical)."""
    out = []
    for name in sorted(set(a.probabilities) | set(b.probabilities)):
        pa, pb = a.probabilities.get(name), b.probabilities.get(name)
        if pa is None or pb is None or pa.shape != pb.shape:
            out.append(f"{name} probabilities (missing or of another shape)")
        elif not np.array_equal(pa, pb):
            rows = int((pa != pb).any(axis=1).sum())
            flips = int((pa.argmax(1) != pb.argmax(1)).sum())
            out.append(
                f"{name} probabilities on {rows} of {len(pa)} utterances (max |Δ| {np.abs(pa - pb).max():.3g}, "
                f"{flips} predictions changed)"
            )
    if a.pseudo_labels != b.pseudo_labels:
        out.append("pseudo-labels")
    if (a.selected_epoch, a.selection_score) != (b.selected_epoch, b.selection_score):
        out.append(f"selected epoch ({a.selected_epoch} vs {b.selected_epoch})")
    if a.history != b.history:
        out.append("training history")
    return out


@dataclass
class AuditResult:
    method: str
    verdict: AuditVerdict
    detail: str
    fingerprint: str
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    first: MethodOutput | None = None  # run 1's output (check-method inspects it)
    error_kind: str | None = None  # "leak" or "method" when a run failed
    error: XLBenchError | None = None  # the method's failure, to re-raise in the run that asked

    def stamp(self) -> AuditStamp:
        return AuditStamp(verdict=self.verdict, fingerprint=self.fingerprint, xlbench_version=__version__,
                          detail=self.detail)


def run_audit(
    cls: type[Method],
    config: Mapping[str, Any],
    *,
    mode: Literal["frozen", "finetune"] = "frozen",
    isolation: Isolation = "worker",
    smoke: bool = True,
) -> AuditResult:
    """Audit ``cls`` with ``config`` (plus its fast smoke settings when ``smoke``)."""
    from xlbench.encoders import build_encoder
    from xlbench.fitting import Prepared, fit_and_predict, input_parts

    t0 = time.perf_counter()
    fp = fingerprint(cls, config, mode)
    cfg = make_config(cls, {**dict(config), **(smoke_overrides(cls) if smoke else {})}).model_dump(mode="json")
    source = load_language("english", "synthetic")
    target = load_language(AUDIT_TARGET, "synthetic")
    source_all = slice_language(source, SOURCE_SLICE)
    target_all = slice_language(target, TARGET_SLICE)
    utts = source_all + target_all
    n_labeled = ALL_LABELS if cls.uses_all_target_labels else (AUDIT_N_LABELED if "target_labeled" in cls.needs else 0)

    def result(verdict: AuditVerdict, detail: str, first: MethodOutput | None = None,
               kind: str | None = None, error: XLBenchError | None = None) -> AuditResult:
        return AuditResult(cls.name, verdict, detail, fp, time.perf_counter() - t0, cfg, first, kind, error)

    scratch = data_home() / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)  # beside the corpus: hard links need one file system
    with tempfile.TemporaryDirectory(prefix="audit-", dir=scratch) as tmp:
        if mode == "finetune":
            from xlbench.encoders.tiny import tiny_hubert_path

            enc_name, enc_opts = "hubert", (("path", str(tiny_hubert_path(Path(tmp) / "tiny"))),)
        else:
            enc_name, enc_opts = "logmel-stats", ()
        encoder = build_encoder(enc_name, dict(enc_opts))
        crop = float(cfg.get("crop_seconds", 2.0))
        # The inputs are keyed by audio content, identical in every world: built once, from the
        # user's feature cache (the method's worker never reads a cache; it is handed inputs).
        keep = {u.sha for u in utts}
        sliced = [LanguageData(d.language, d.corpora, d.synthetic,
                               {k: [u for u in v if u.sha in keep] for k, v in d.parts.items()}, d.split_hashes)
                  for d in (source, target)]
        inputs = input_parts(Prepared(cls, cfg, encoder, mode, torch.device("cpu"), *sliced, EMOTIONS_5, n_labeled),
                             crop, show_progress=False, reuse=False)
        home = Path(tmp) / "home"

        def make_world(relabel: Mapping[str, Any]) -> None:
            import shutil

            shutil.rmtree(home, ignore_errors=True)  # world A never coexists with world B
            write_world(home, utts, relabel)

        def one_run(pinned: tuple[str, ...] | None) -> tuple[MethodOutput, tuple[str, ...], dict[str, int], dict]:
            with data_home_at(home):
                src = load_language("english", "synthetic")
                tgt = load_language(AUDIT_TARGET, "synthetic")
                p = Prepared(cls, cfg, encoder, mode, torch.device("cpu"), src, tgt, EMOTIONS_5, n_labeled,
                             [], enc_name, enc_opts)
                task, truth = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=n_labeled, seed=AUDIT_SEED,
                                         selection="paper", needs=cls.needs, labeled_keys=pinned)
                out = fit_and_predict(p, inputs, task, truth, show_progress=False, isolation=isolation)
            hidden = {**truth.unlabeled_labels,
                      **{k: int(v) for e in (truth.target_test, truth.source_test)
                         for k, v in zip(e.keys, e.labels, strict=True)}}
            return out, tuple(task.target_labeled.keys), hidden, truth.by_key

        try:
            make_world({})
            first, k_t, hidden, by_key = one_run(None)
            second, _, _, _ = one_run(k_t)
            # every hidden label moves to the next class, in the names the manifests are built from
            make_world({by_key[k].id: EMOTIONS_5[(c + 1) % len(EMOTIONS_5)] for k, c in hidden.items()})
            third, _, hidden_b, _ = one_run(k_t)
        except LeakError as exc:
            return result("fail", str(exc), kind="leak", error=exc)
        except XLBenchError as exc:
            return result("error", str(exc), kind="method", error=exc)
        moved = sum(hidden_b[k] != v for k, v in hidden.items())
        if moved != len(hidden):
            raise MethodError(f"audit set-up: only {moved} of {len(hidden)} hidden labels were permuted")
        a, b, c = Outputs.of(first), Outputs.of(second), Outputs.of(third)
        unstable = differences(a, b)
        if unstable:
            return result("nondeterministic", "cannot audit: nondeterministic (two identical runs differ in "
                          + "; ".join(unstable) + ")", first)
        leaked = differences(a, c)
        if leaked:
            return result("fail", "outputs changed when the hidden labels of U_t and the test sets were permuted: "
                          + "; ".join(leaked), first)
        return result("pass", f"identical outputs with {len(hidden)} hidden labels permuted "
                      "(test probabilities, pseudo-labels, selected epoch, history)", first)


# -- the verdict cache ------------------------------------------------------------------------


#: Verdicts on the built-in methods' default configs (frozen), made on this release's code by
#: ``tools/ship_audit_verdicts.py`` and re-made and compared by tests/test_shipped_audits.py. A fresh
#: machine's main command reuses them instead of auditing three methods first (issue 10, point 4:
#: the audits were ~6 s of a ~35 s command). Any other config, mode, xlbench version or edited
#: method file has another fingerprint and is audited on its first run; `xlbench audit NAME`
#: always audits anew.
SHIPPED_VERDICTS = Path(__file__).with_name("audit_verdicts.json")
SHIPPED_NOTE = "verdict shipped with xlbench {version} (the same audit, run on this code by its developers)"


def audits_dir() -> Path:
    return data_home() / "audits"


def builtin_audit_targets() -> list[tuple[type[Method], dict[str, Any], Literal["frozen"]]]:
    """What ships a verdict: each method xlbench itself registers, with its default config, frozen."""
    out: list[tuple[type[Method], dict[str, Any], Literal["frozen"]]] = []
    for name in METHODS.names():
        if METHODS.registration(name).distribution != "xlbench":
            continue
        cls = METHODS.get(name)
        out.append((cls, make_config(cls, {}).model_dump(mode="json"), "frozen"))
    return out


def shipped_verdicts(path: Path = SHIPPED_VERDICTS) -> dict[str, AuditStamp]:
    """The shipped verdicts by fingerprint (none if the file is missing or unreadable)."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {fp: AuditStamp.model_validate(entry["stamp"]) for fp, entry in raw["verdicts"].items()}
    return {}


def cached_verdict(fp: str) -> AuditStamp | None:
    """This data home's verdict (`xlbench run` or `xlbench audit` made it here), else a shipped one."""
    path = audits_dir() / f"{fp}.json"
    with contextlib.suppress(OSError, ValueError):
        raw = json.loads(path.read_text(encoding="utf-8"))
        return AuditStamp.model_validate(raw["stamp"])
    return shipped_verdicts().get(fp)


def audit_stamp(
    cls: type[Method],
    config: Mapping[str, Any],
    mode: Literal["frozen", "finetune"],
    *,
    enabled: bool = True,
    on_note: Callable[[str], None] = print,
) -> AuditStamp:
    """The verdict for a run's method and config: cached, else audited now (once).

    A failing audit stops the run (its numbers would be meaningless); a nondeterministic
    method runs with that verdict recorded (the leaderboard refuses it).
    """
    fp = fingerprint(cls, config, mode)
    if not enabled:
        return AuditStamp(verdict="skipped", fingerprint=fp, xlbench_version=__version__,
                          detail="run with --no-audit")
    stamp = cached_verdict(fp)
    if stamp is None:
        # two processes audit a method once: the second waits, then reads the verdict
        with ProcessLock(audits_dir() / f".{fp}.lock", f"auditing {cls.name}", on_wait=on_note):
            stamp = cached_verdict(fp) or _audit_now(cls, config, mode, fp, on_note)
    if stamp.verdict == "fail":
        raise LeakError(f"{cls.name} failed the hidden-label audit: {stamp.detail}; nothing was run")
    if stamp.verdict == "nondeterministic":
        on_note(f"[yellow]warning: {stamp.detail}; its records will be refused by `xlbench leaderboard validate`[/]")
    return stamp


def _audit_now(
    cls: type[Method], config: Mapping[str, Any], mode: Literal["frozen", "finetune"], fp: str,
    on_note: Callable[[str], None],
) -> AuditStamp:
    on_note(f"auditing {cls.name}: three small runs check that its outputs ignore hidden labels "
            "(once per method version and config)")
    res = run_audit(cls, config, mode=mode)
    if res.verdict == "error" and res.error is not None:  # the method's own failure; not cached
        raise type(res.error)(f"{res.error} (in the hidden-label audit of {cls.name})")
    stamp = res.stamp()
    with contextlib.suppress(XLBenchError):
        atomic_write_json(audits_dir() / f"{fp}.json", {
            "stamp": stamp.model_dump(), "method": cls.name, "config": dict(config), "mode": mode,
            "seconds": round(res.seconds, 2), "created": datetime.now(UTC).isoformat(timespec="seconds"),
        })
    on_note(f"audit of {cls.name}: {stamp.verdict} ({res.seconds:.1f} s)")
    return stamp
