"""The runner: one request (method × target × settings × seeds) -> one record per seed.

Order of work: resolve the data and the encoder, derive every seed's run id, skip the runs
whose valid record exists, extract (or load cached) inputs once, then per seed build the task,
fit, predict the test sets, score, write the record atomically and copy it to MLflow. An
interruption loses at most the run in progress; running the same command again resumes.
Several processes share the work: a seed is trained under its run id's lock, and a record
another process wrote meanwhile is reused (docs/concurrency.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from xlbench import __version__, hub, progress
from xlbench.accelerator import apply_gpu_share
from xlbench.encoders import build_encoder
from xlbench.encoders.base import Encoder
from xlbench.errors import ConfigError, MissingWeightsError
from xlbench.features import resolve_device, sweep_cache_folder
from xlbench.fitting import Prepared, fit_and_predict, input_parts
from xlbench.home import data_home, results_dir
from xlbench.isolation import Isolation
from xlbench.languages import DataChoice, LanguageData, load_language
from xlbench.lifetime import sweep_temp_files
from xlbench.manifest import Utterance
from xlbench.method import METHODS, FitReport, get_method, make_config
from xlbench.opensmile_worker import installed_version
from xlbench.protocol import PROTOCOL_VERSION, SOURCE_LANGUAGE, TARGET_LANGUAGES, emotion_set, language
from xlbench.records import (
    AuditStamp,
    CorruptRecord,
    DataIdentity,
    Environment,
    MethodIdentity,
    Metrics,
    Prediction,
    PseudoLabelStats,
    RunRecord,
    Selection,
    TaskIdentity,
    compute_run_id,
    ensure_writable,
    identity_payload,
    read_record,
    record_path,
    run_lock,
    write_record,
)
from xlbench.splits import SPLITS_VERSION
from xlbench.stats import classification_metrics
from xlbench.tasks import ALL_LABELS, EvalSet, TaskTruth, build_task
from xlbench.tracking import PENDING, backfill, log_run, mark_pending
from xlbench.training import TrainConfig
from xlbench.view import InputParts
from xlbench.worker_server import warm_up

DEFAULT_ENCODER = "auto"
CPU_ENCODER = "logmel-stats"  # auto without a GPU: see resolve_encoder
ACCURATE_CPU_ENCODER = "opensmile-compare"  # named in auto's note: more accurate, about 3x the cold time


@dataclass(frozen=True)
class RunRequest:
    method: str
    target: str
    encoder: str = DEFAULT_ENCODER
    encoder_options: tuple[tuple[str, str], ...] = ()
    n_labeled: int = 0  # ALL_LABELS (-1) = every target training utterance
    seeds: tuple[int, ...] = (0, 1, 2)
    emotions: str = "5"
    selection: Literal["paper", "strict"] = "paper"
    overrides: tuple[tuple[str, Any], ...] = ()
    finetune: bool = False
    data: DataChoice = "auto"
    device: str = "auto"
    overwrite: bool = False
    results: Path | None = None
    show_progress: bool = True
    source_corpora: tuple[str, ...] | None = None  # English from these corpora only (recorded, shown)
    audit: bool = True  # False: skip the hidden-label audit (records say "skipped"; no leaderboard)
    isolation: Isolation = "worker"  # "in-process": tests and debugging only


@dataclass
class Outcome:
    seed: int
    run_id: str
    status: Literal["done", "skipped", "rerun"]
    record: RunRecord
    path: Path


# -- resolution -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedEncoder:
    encoder: Encoder
    name: str  # the registry name actually used (``auto`` resolved)
    options: tuple[tuple[str, str], ...]
    note: str | None = None


def resolve_encoder(name: str, options: dict[str, str], device: torch.device | None = None) -> ResolvedEncoder:
    """Build the encoder. ``auto``: HuBERT on a GPU when its weights are on disk; otherwise the
    built-in ``logmel-stats``, the encoder whose cold main command stays within a minute on 2 CPU
    cores (``opensmile-compare`` is more accurate but measured 91-97 s cold on an idle 2-core
    machine; docs/performance.md). A named encoder downloads missing weights on first use (unless
    offline); ``auto`` never does.
    """
    opts = tuple(sorted(options.items()))
    if name != DEFAULT_ENCODER:
        return ResolvedEncoder(build_encoder(name, options), name, opts)
    why = "on a CPU, HuBERT base encodes only a few audio seconds per second"
    if device is not None and device.type in ("cuda", "mps"):
        try:
            with hub.local_only():
                return ResolvedEncoder(build_encoder("hubert", options), "hubert", opts)
        except MissingWeightsError:
            why = ("HuBERT weights (facebook/hubert-base-ls960) are not on this machine "
                   "(`xlbench weights fetch hubert` downloads them)")
    more = f"--encoder {ACCURATE_CPU_ENCODER} is more accurate on a CPU (openSMILE, about 3x the cold time)"
    if installed_version() is None:
        more = f"{ACCURATE_CPU_ENCODER} needs openSMILE (pip install opensmile)"
    note = (f"encoder: {why}; using the built-in '{CPU_ENCODER}' features (nothing downloaded). {more}; "
            "--encoder hubert for HuBERT.")
    return ResolvedEncoder(build_encoder(CPU_ENCODER, {}), CPU_ENCODER, (), note)


def manifest_sha(utts: Sequence[Utterance]) -> str:
    h = hashlib.sha256()
    for u in sorted(utts, key=lambda u: u.id):
        h.update(f"{u.id}\t{u.sha}\t{u.emotion.value}\t{u.speaker}\n".encode())
    return h.hexdigest()[:20]


def data_identity(d: LanguageData) -> DataIdentity:
    utts = [u for part in d.parts.values() for u in part]
    return DataIdentity(
        language=d.language,
        corpora=list(d.corpora),
        synthetic=d.synthetic,
        manifest_sha=manifest_sha(utts),
        split_hashes=dict(d.split_hashes),
    )


def _git_sha() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device, extra_dists: Sequence[str] = ()) -> Environment:
    packages = {}
    for dist in ("xlbench", "torch", "numpy", "scipy", "transformers", "soundfile", "soxr", *extra_dists):
        with contextlib.suppress(md.PackageNotFoundError):
            packages[dist] = md.version(dist)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or None
    return Environment(
        xlbench_version=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages=packages,
        git_sha=_git_sha(),
        device=str(device),
        device_name=name,
    )


# -- scoring ----------------------------------------------------------------------------------


def score(eval_set: EvalSet, probs: np.ndarray, class_names: list[str]) -> tuple[Metrics, list[Prediction]]:
    pred = probs.argmax(1)
    m = classification_metrics(eval_set.labels, pred, len(class_names))
    metrics = Metrics(
        n=len(eval_set.keys),
        ua=float(m.ua),
        wa=float(m.wa),
        macro_f1=float(m.macro_f1),
        per_class_recall={c: float(r) for c, r in zip(class_names, m.per_class_recall, strict=True)},
        confusion=[[int(v) for v in row] for row in m.confusion],
    )
    preds = [
        Prediction(id=u.id, speaker=u.speaker_key, true=int(t), pred=int(p), probs=[round(float(x), 6) for x in row])
        for u, t, p, row in zip(eval_set.utterances, eval_set.labels, pred, probs, strict=True)
    ]
    return metrics, preds


def _round(value: float, digits: int = 6) -> float:
    """Learning curves need no more than 6 significant digits (they are most of a record's size)."""
    return float(f"{value:.{digits}g}")


def pseudo_label_stats(
    report: FitReport, truth: TaskTruth, n_unlabeled: int, class_names: list[str]
) -> list[PseudoLabelStats]:
    """Score each round's pseudo-labels against the hidden U_t labels (never shown to the method)."""
    out = []
    for rnd in report.pseudo_labels:
        labels = np.asarray(rnd.labels, dtype=np.int64)
        true = np.array([truth.unlabeled_labels.get(k, -1) for k in rnd.keys], dtype=np.int64)
        known = true >= 0
        acc = float((labels[known] == true[known]).mean()) if known.any() else None
        per = {}
        for i, c in enumerate(class_names):
            sel = known & (labels == i)
            per[c] = float((true[sel] == i).mean()) if sel.any() else None
        out.append(
            PseudoLabelStats(
                epoch=rnd.epoch,
                n_unlabeled=n_unlabeled,
                n_selected=len(rnd.keys),
                class_counts={c: int((labels == i).sum()) for i, c in enumerate(class_names)},
                accuracy=acc,
                per_class_accuracy=per,
            )
        )
    return out


# -- the runner -------------------------------------------------------------------------------


FULL_SOURCE = language(SOURCE_LANGUAGE).corpora  # the protocol's English: RAVDESS + SAVEE + TESS


def check_source(source: LanguageData, named: tuple[str, ...] | None) -> None:
    """The protocol's source is the union of every English corpus (PROTOCOL.md §3). A subset is
    a different setting: it runs only when the user names it (``--source-corpora``)."""
    if source.synthetic or named or set(source.corpora) == set(FULL_SOURCE):
        return
    missing = [c for c in FULL_SOURCE if c not in source.corpora]
    raise ConfigError(
        f"the English source would be {' + '.join(source.corpora)} only ({', '.join(missing)} not prepared); "
        f"the protocol's source is {' + '.join(FULL_SOURCE)}. Prepare the others, or pass "
        f"--source-corpora {','.join(source.corpora)} to run on this subset (recorded and shown on the board)"
    )


def prepare(req: RunRequest) -> Prepared:
    cls = get_method(req.method)
    config = make_config(cls, dict(req.overrides))
    target = language(req.target).name
    if target not in TARGET_LANGUAGES:
        raise ConfigError(f"--target must be one of {', '.join(TARGET_LANGUAGES)} (English is the source)")
    classes = emotion_set(req.emotions)
    if req.selection not in ("paper", "strict"):
        raise ConfigError(f"--selection must be paper or strict, not {req.selection!r}")
    notes: list[str] = []
    n_labeled = req.n_labeled
    if cls.uses_all_target_labels:
        if n_labeled not in (0, ALL_LABELS):
            notes.append(f"{cls.name} uses every labelled target training utterance; --n-labeled ignored")
        n_labeled = ALL_LABELS
    elif "target_labeled" not in cls.needs and n_labeled != 0:
        notes.append(f"{cls.name} uses no labelled target utterance; --n-labeled ignored")
        n_labeled = 0
    device = resolve_device(req.device)
    resolved = resolve_encoder(req.encoder, dict(req.encoder_options), device)
    encoder = resolved.encoder
    if resolved.note:
        notes.append(resolved.note)
    mode: Literal["frozen", "finetune"] = "finetune" if req.finetune else "frozen"
    if mode == "frozen" and not encoder.frozen_ok:
        notes.append(f"encoder {encoder.info().name} has no pretrained weights; training it end to end (--finetune)")
        mode = "finetune"
    source = load_language(SOURCE_LANGUAGE, req.data, req.source_corpora)
    check_source(source, req.source_corpora)
    tgt = load_language(target, req.data)
    for d in (source, tgt):
        if d.note:
            notes.append(d.note)
    n_train = sum(u.emotion in classes for u in tgt.parts["train"])
    if n_labeled > n_train:
        raise ConfigError(f"--n-labeled {n_labeled} is larger than the target training set ({n_train} utterances)")
    if source.synthetic != tgt.synthetic:
        notes.append("warning: mixing synthetic and real corpora; the numbers compare nothing real")
    return Prepared(
        cls, config.model_dump(mode="json"), encoder, mode, device, source, tgt, classes, n_labeled, notes,
        resolved.name, resolved.options,
    )


def run_identity(req: RunRequest, p: Prepared, seed: int) -> tuple[str, dict[str, Any]]:
    parts = dict(
        protocol_version=PROTOCOL_VERSION,
        splits_version=SPLITS_VERSION,
        method=method_identity(p),
        encoder=p.encoder.info(),
        task=task_identity(req, p, seed),
        source_data=data_identity(p.source),
        target_data=data_identity(p.target),
    )
    return compute_run_id(identity_payload(**parts)), parts


def method_identity(p: Prepared) -> MethodIdentity:
    reg = METHODS.registration(p.method_cls.name)
    return MethodIdentity(
        name=p.method_cls.name,
        version=p.method_cls.version,
        distribution=reg.distribution,
        distribution_version=reg.version,
        citation=p.method_cls.citation,
        config=p.config_dump,
    )


def task_identity(req: RunRequest, p: Prepared, seed: int) -> TaskIdentity:
    return TaskIdentity(
        source=SOURCE_LANGUAGE,
        target=p.target.language,
        n_labeled="all" if p.n_labeled == ALL_LABELS else p.n_labeled,
        seed=seed,
        emotions=[c.value for c in p.classes],
        selection=req.selection,
        mode=p.mode,
    )


def run_one(
    req: RunRequest,
    p: Prepared,
    inputs: InputParts,
    seed: int,
    run_id: str,
    parts: dict[str, Any],
    audit: AuditStamp,
    inputs_s: float = 0.0,
) -> tuple[RunRecord, Path]:
    t0 = time.perf_counter()
    task, truth = build_task(
        p.source,
        p.target,
        classes=p.classes,
        n_labeled=p.n_labeled,
        seed=seed,
        selection=req.selection,
        needs=p.method_cls.needs,
    )
    out = fit_and_predict(p, inputs, task, truth, show_progress=req.show_progress, isolation=req.isolation)
    report = out.report
    t_end = time.perf_counter()
    names = [c.value for c in p.classes]
    m_t, pred_t = score(truth.target_test, out.probabilities["target_test"], names)
    m_s, pred_s = score(truth.source_test, out.probabilities["source_test"], names)
    n_unlabeled = len(truth.unlabeled_labels)
    record = RunRecord(
        run_id=run_id,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        **parts,
        sizes={
            "source_train": len(task.source_train),
            "target_labeled": len(task.target_labeled),
            "target_unlabeled": len(task.target_unlabeled),
            "target_test": len(truth.target_test.keys),
            "source_test": len(truth.source_test.keys),
            **{f"val_{s.name}": len(s) for s in task.validation},
        },
        labeled_ids=sorted(truth.by_key[k].id for k in task.target_labeled.keys),
        selection=Selection(
            policy=req.selection,
            sets=[s.name for s in task.validation if out.scoring_calls.get(s.name)],
            scoring_calls=dict(sorted(out.scoring_calls.items())),
            selected_epoch=report.selected_epoch,
            score=report.selection_score,
        ),
        metrics={"target": m_t, "source": m_s},
        predictions={"target": pred_t, "source": pred_s},
        history=[{k: _round(v) for k, v in row.items()} for row in report.history],
        pseudo_labels=pseudo_label_stats(report, truth, n_unlabeled, names),
        extras=report.extras,
        timings={
            "inputs_s": round(inputs_s, 3),  # shared by the seeds of one command
            "run_s": round(t_end - t0, 3),  # fit and predict, in the method's worker
            # torch.cuda.max_memory_allocated of the method's worker, on CUDA only
            **({"peak_gpu_memory_gb": round(out.peak_memory / 2**30, 3)} if out.peak_memory is not None else {}),
        },
        environment=environment(p.device, [parts["method"].distribution]),
        audit=audit,
        isolation=req.isolation,
    )
    mark_pending(record_path(run_id, p.method_cls.name, req.results))  # copied to MLflow later if we die
    path = write_record(record, req.results)
    log_run(record, path)
    return record, path


def execute(req: RunRequest, on_note: Callable[[str], None] = progress.note) -> list[Outcome]:
    """Run every seed of a request; existing valid records are reused unless ``overwrite``."""
    p = prepare(req)
    if req.isolation == "worker":
        warm_up()  # the fork server starts while the features load
    apply_gpu_share(p.device)  # xlbench grid --per-gpu: this process's share of the GPU (extraction)
    for n in p.notes:
        on_note(n)
    root = req.results or results_dir()
    sweep_leftovers(root, p.method_cls.name)
    backfill(root, on_note)
    outcomes: list[Outcome] = []
    todo: list[tuple[int, str, dict[str, Any], bool]] = []
    seen: dict[str, tuple[int, int, int] | None] = {}  # each record file as planned: a change is another's
    for seed in req.seeds:
        run_id, parts = run_identity(req, p, seed)
        path = record_path(run_id, p.method_cls.name, req.results)
        rerun = False
        if path.exists() and not req.overwrite:
            try:
                rec = read_record(path)
                outcomes.append(Outcome(seed, run_id, "skipped", rec, path))
                continue
            except CorruptRecord as exc:
                on_note(f"[yellow]warning: {exc}; running it again[/]")
                rerun = True
        todo.append((seed, run_id, parts, rerun))
        seen[run_id] = _file_state(path)
    if todo:  # a read-only results folder fails here, before any training
        ensure_writable(record_path(todo[0][1], p.method_cls.name, req.results).parent)
        from xlbench.audit import audit_stamp

        stamp = audit_stamp(p.method_cls, p.config_dump, p.mode, enabled=req.audit, on_note=on_note)
        cfg = p.method_cls.Config(**p.config_dump)
        crop = cfg.crop_seconds if isinstance(cfg, TrainConfig) else 2.0
        t0 = time.perf_counter()
        inputs = input_parts(p, crop, req.show_progress)
        t_inputs = time.perf_counter() - t0
        remaining = list(todo)
        while remaining:
            # a seed no other process is running now, else wait for the first one
            locks = {item[1]: run_lock(item[1], root, on_note) for item in remaining}
            item = next((it for it in remaining if locks[it[1]].try_acquire()), remaining[0])
            remaining.remove(item)
            seed, run_id, parts, rerun = item
            with locks[run_id]:  # taken already, or waited for here
                path = record_path(run_id, p.method_cls.name, req.results)
                theirs = _written_meanwhile(path, seen[run_id])
                if theirs is not None:  # an identical run in another process finished it
                    outcomes.append(Outcome(seed, run_id, "skipped", theirs, path))
                    continue
                record, path = run_one(req, p, inputs, seed, run_id, parts, stamp, t_inputs)
                outcomes.append(Outcome(seed, run_id, "rerun" if rerun else "done", record, path))
    outcomes.sort(key=lambda o: req.seeds.index(o.seed))
    return outcomes


def _file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _written_meanwhile(path: Path, before: tuple[int, int, int] | None) -> RunRecord | None:
    """The record another process wrote at ``path`` since ``before`` was seen, if valid."""
    now = _file_state(path)
    if now is None or now == before:
        return None
    try:
        return read_record(path)
    except CorruptRecord:
        return None


def sweep_leftovers(root: Path, method: str) -> None:
    """What killed writers left in the folders a run writes: records, manifests, audits, features."""
    home = data_home()
    sweep_temp_files([root / method, root / PENDING, home / "manifests", home / "audits", home / "synthetic"])
    with contextlib.suppress(OSError):
        for folder in (home / "features").glob("*/"):
            sweep_cache_folder(folder)
