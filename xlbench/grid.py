"""Grids of runs: methods × targets × N_k × seeds, locally or on Slurm (through submitit).

A grid is a list of :class:`GridJob` s, one per (method, configuration, target, N_k); a job runs
all its seeds through :func:`xlbench.runner.execute`, which reuses every record that exists, so a
grid is resumable by running the same command again. Jobs run one after another, in a process
pool (``workers > 1``), N at a time on each GPU (``--per-gpu N``: one pool of N processes per
visible GPU, each process seeing only its GPU and capped at 1/N of its memory), or as Slurm jobs
(one job per grid job, as many GPUs as ``--gpus-per-node`` asks); each finished job prints one
progress line and the grid ends with a summary. Nothing here computes a number: it only
orchestrates the runner.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from xlbench.errors import ConfigError, XLBenchError
from xlbench.lifetime import die_with_parent
from xlbench.method_options import ALL, effective_n_labeled, split_overrides
from xlbench.protocol import TARGET_LANGUAGES, language

Executor = Literal["local", "slurm"]
#: submitit back ends: "slurm" for real, "local" (subprocesses) and "debug" (in process) for tests
SubmititCluster = Literal["slurm", "local", "debug"]


class GridError(XLBenchError):
    """Some jobs of a grid failed (the others' records are kept)."""


@dataclass(frozen=True)
class GridJob:
    """One method configuration on one target at one N_k, for every seed."""

    method: str
    target: str
    n_labeled: int
    seeds: tuple[int, ...]
    overrides: tuple[tuple[str, Any], ...] = ()
    encoder: str = "auto"
    encoder_options: tuple[tuple[str, str], ...] = ()
    emotions: str = "5"
    selection: Literal["paper", "strict"] = "paper"
    finetune: bool = False
    data: str = "auto"
    device: str = "auto"
    results: Path | None = None
    overwrite: bool = False
    source_corpora: tuple[str, ...] | None = None  # English from these corpora only

    @property
    def label(self) -> str:
        opts = " ".join(f"{k}={_fmt(v)}" for k, v in self.overrides)
        nk = "all" if self.n_labeled == ALL else str(self.n_labeled)
        name = f"{self.method} {opts}".strip()
        return f"{name} · {self.target} · N_k {nk} · {self.emotions} emotions · seeds {','.join(map(str, self.seeds))}"

    def request(self, show_progress: bool = False):  # -> RunRequest (import deferred: torch)
        from xlbench.runner import RunRequest

        return RunRequest(
            method=self.method,
            target=self.target,
            encoder=self.encoder,
            encoder_options=self.encoder_options,
            n_labeled=self.n_labeled,
            seeds=self.seeds,
            emotions=self.emotions,
            selection=self.selection,
            overrides=self.overrides,
            finetune=self.finetune,
            data=self.data,  # type: ignore[arg-type]
            device=self.device,
            overwrite=self.overwrite,
            results=self.results,
            show_progress=show_progress,
            source_corpora=self.source_corpora,
        )


@dataclass
class JobResult:
    job: GridJob
    done: int = 0
    reused: int = 0
    run_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class GridSummary:
    results: list[JobResult]
    seconds: float

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if not r.ok]

    def line(self) -> str:
        done = sum(r.done for r in self.results)
        reused = sum(r.reused for r in self.results)
        return (
            f"grid: {len(self.results)} job(s), {done} run(s) done, {reused} reused from existing records, "
            f"{len(self.failed)} job(s) failed ({self.seconds:.0f} s)"
        )


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


# -- planning ---------------------------------------------------------------------------------


def parse_list(text: str, flag: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{flag} needs at least one value, got {text!r}")
    return items


def plan_grid(
    methods: Sequence[str],
    targets: Sequence[str],
    n_labeled: Sequence[int],
    seeds: Sequence[int],
    sets: Mapping[str, Any] | None = None,
    sweeps: Mapping[str, Sequence[Any]] | None = None,
    **common: Any,
) -> list[GridJob]:
    """The jobs of a grid, deduplicated (a bound runs at its own N_k only), in a stable order.

    ``sets`` are fixed options (``key`` for every method having it, ``method.key`` for one);
    ``sweeps`` are options with several values: every combination becomes its own configuration
    for the methods having the key (``method.key`` scopes it too).
    """
    from xlbench.method import get_method, make_config

    if not methods:
        raise ConfigError("--methods needs at least one method")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError("--seeds must list distinct integers")
    classes = {m: get_method(m) for m in dict.fromkeys(methods)}  # unknown/broken: one-line ConfigError
    fields = {m: set(c.Config.model_fields) for m, c in classes.items()}
    names = list(classes)
    tgts = []
    for t in targets:
        name = language(t).name
        if name not in TARGET_LANGUAGES:
            raise ConfigError(f"--targets: {t!r} is the source language; targets are {', '.join(TARGET_LANGUAGES)}")
        tgts.append(name)
    fixed = split_overrides(dict(sets or {}), names, fields)
    sweep_items = list((sweeps or {}).items())
    for key, values in sweep_items:
        if not values:
            raise ConfigError(f"--sweep {key} needs at least one value")
    per_method_sweeps = split_overrides({k: tuple(v) for k, v in sweep_items}, names, fields, "--sweep")
    jobs: list[GridJob] = []
    seen: set[tuple] = set()
    for m in names:
        keys = list(per_method_sweeps[m])
        combos = itertools.product(*(per_method_sweeps[m][k] for k in keys)) if keys else [()]
        for combo in combos:
            overrides = {**fixed[m], **dict(zip(keys, combo, strict=True))}
            make_config(classes[m], overrides)  # validate now: a bad value fails before anything runs
            for t in tgts:
                for nk in n_labeled:
                    eff = effective_n_labeled(classes[m], nk)
                    key = (m, tuple(sorted(overrides.items(), key=lambda kv: kv[0])), t, eff)
                    if key in seen:
                        continue
                    seen.add(key)
                    jobs.append(GridJob(m, t, eff, tuple(seeds), tuple(overrides.items()), **common))
    return jobs


# -- running ----------------------------------------------------------------------------------


def run_job(job: GridJob, env: Mapping[str, str] | None = None) -> JobResult:
    """Run one job (all its seeds) and report; user errors become the result's ``error``.

    Module-level so that a process pool and submitit can pickle it. ``env`` carries the
    submitter's XLBENCH_* variables to another machine.
    """
    for k, v in (env or {}).items():
        os.environ[k] = v
    from xlbench.runner import execute

    res = JobResult(job)
    t0 = time.perf_counter()
    try:
        outcomes = execute(job.request(show_progress=False), on_note=res.notes.append)
    except XLBenchError as exc:
        res.error = str(exc)
    except Exception as exc:  # a grid keeps going; the summary lists what failed
        res.error = f"{type(exc).__name__}: {exc}"
    else:
        res.done = sum(o.status != "skipped" for o in outcomes)
        res.reused = sum(o.status == "skipped" for o in outcomes)
        res.run_ids = [o.run_id for o in outcomes]
    res.seconds = time.perf_counter() - t0
    return res


def _env() -> dict[str, str]:
    keep = ("XLBENCH_", "MLFLOW_", "HF_", "TRANSFORMERS_")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def _line(i: int, n: int, r: JobResult) -> str:
    head = f"[{i}/{n}] {r.job.label}"
    if not r.ok:
        return f"{head}: FAILED: {r.error}"
    parts = [f"{r.done} done"] + ([f"{r.reused} reused"] if r.reused else [])
    return f"{head}: {', '.join(parts)} ({r.seconds:.1f} s)"


#: ``--per-gpu`` at most (runs sharing one GPU)
MAX_PER_GPU = 16


@dataclass(frozen=True)
class GpuSlots:
    """``--per-gpu N``: N runs at a time on each of ``devices`` (CUDA ids as this process sees them)."""

    per_gpu: int
    devices: tuple[str, ...]


def visible_gpus() -> list[str]:
    """CUDA device ids torch can use here, as CUDA_VISIBLE_DEVICES names them."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    ids = listed or [str(i) for i in range(torch.cuda.device_count())]
    return ids[: torch.cuda.device_count()]


def gpu_slots(per_gpu: int, device: str, executor: str, visible: Sequence[str] | None = None) -> GpuSlots:
    """Where ``--per-gpu N`` runs, or a one-line ConfigError.

    Refused without CUDA: on a CPU each run already uses every core (``--workers`` runs several
    processes anyway), and "per GPU" would silently mean something else.
    """
    if executor != "local":
        raise ConfigError("--per-gpu is for the local executor; on Slurm every grid job is a job of its own "
                          "(--gpus-per-node)")
    if not 1 <= per_gpu <= MAX_PER_GPU:
        raise ConfigError(f"--per-gpu must be between 1 and {MAX_PER_GPU}, got {per_gpu}")
    gpus = list(visible_gpus() if visible is None else visible)
    if not gpus:
        raise ConfigError("--per-gpu N shares a CUDA GPU between runs, and torch sees no CUDA device here; "
                          "on a CPU use --workers N (N processes)")
    name = device.strip().lower()
    if name.startswith("cuda:"):
        try:
            gpus = [gpus[int(name.split(":", 1)[1])]]
        except (ValueError, IndexError):
            raise ConfigError(f"--device {device}: no such CUDA device ({len(gpus)} visible)") from None
    elif name not in ("auto", "cuda"):
        raise ConfigError(f"--per-gpu runs on CUDA: use --device auto, cuda or cuda:N, not {device!r}")
    return GpuSlots(per_gpu, tuple(gpus))


def set_environment(env: Mapping[str, str], parent: int | None = None) -> None:
    """Pool initialiser: the worker's environment before it imports torch or touches CUDA; with
    ``parent``, the worker also dies with that process (a killed grid leaves no worker behind)."""
    if parent is not None:
        die_with_parent(parent)
    os.environ.update(env)


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    timeout_min: int = 240
    folder: Path | None = None
    cluster: SubmititCluster = "slurm"


def require_submitit() -> Any:
    """The submitit module; a one-line ConfigError when it is not installed (before any planning)."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit: pip install 'xlbench[slurm]'") from None
    return submitit


def _run_submitit(
    jobs: Sequence[GridJob],
    opts: SlurmOptions,
    emit: Callable[[str], None],
    report: Callable[[int, JobResult], None],
) -> list[JobResult]:
    submitit = require_submitit()
    from xlbench.home import data_home

    folder = opts.folder or (data_home() / "submitit")
    try:
        ex = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=opts.cluster)
    except Exception as exc:
        raise ConfigError(f"cannot use the {opts.cluster} executor of submitit here: {exc}") from None
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "name": "xlbench-grid"}
    if opts.gpus_per_node is not None:
        params["gpus_per_node"] = opts.gpus_per_node
    if opts.cpus_per_task is not None:
        params["cpus_per_task"] = opts.cpus_per_task
    if opts.mem_gb is not None:
        params["mem_gb"] = opts.mem_gb
    if opts.partition and opts.cluster == "slurm":
        params["slurm_partition"] = opts.partition
    ex.update_parameters(**params)
    env = _env()
    try:
        handles = [ex.submit(run_job, job, env) for job in jobs]
    except Exception as exc:  # sbatch missing or refusing: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"submitting to {opts.cluster} failed: {first}") from None
    emit(f"submitted {len(handles)} job(s) to {opts.cluster} (logs in {folder})")
    results: list[JobResult | None] = [None] * len(jobs)
    pending = set(range(len(jobs)))
    finished = 0
    while pending:
        for i in sorted(pending):
            if not handles[i].done():
                continue
            pending.discard(i)
            try:
                res = handles[i].result()
            except Exception as exc:  # the job itself died (timeout, node failure ...)
                res = JobResult(jobs[i], error=f"{opts.cluster} job {handles[i].job_id} failed: "
                                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}")
            results[i] = res
            finished += 1
            report(finished, res)
        if pending:
            time.sleep(0.2 if opts.cluster == "debug" else 5.0)
    return [r for r in results if r is not None]


def run_grid(
    jobs: Sequence[GridJob],
    executor: Executor = "local",
    workers: int = 1,
    slurm: SlurmOptions | None = None,
    emit: Callable[[str], None] = print,
    gpus: GpuSlots | None = None,
) -> GridSummary:
    """Run the jobs; one line per finished job through ``emit``; failures are collected, not raised.

    ``gpus`` (``--per-gpu``): jobs go round-robin to one pool per GPU of ``gpus.per_gpu``
    processes, each seeing only its GPU and capped at 1/N of its memory (XLBENCH_GPU_SHARE)."""
    t0 = time.perf_counter()
    seen_notes: set[str] = set()
    out: list[JobResult] = []

    def report(i: int, r: JobResult) -> None:
        for note in r.notes:
            if note not in seen_notes:  # the same fallback note for every job is said once
                seen_notes.add(note)
                emit(note)
        emit(_line(i, len(jobs), r))

    if executor == "slurm":
        results = _run_submitit(jobs, slurm or SlurmOptions(), emit, report)
        return GridSummary(results, time.perf_counter() - t0)
    if executor != "local":
        raise ConfigError(f"--executor must be local or slurm, not {executor!r}")
    if gpus is not None:
        return GridSummary(_run_on_gpus(jobs, gpus, report), time.perf_counter() - t0)
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if workers == 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs, 1):
            r = run_job(job)
            out.append(r)
            report(i, r)
        return GridSummary(out, time.perf_counter() - t0)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: torch and threads do not survive a fork reliably.
    env = {**_env(), "XLBENCH_PROGRESS": "0"}
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=set_environment, initargs=({}, os.getpid())) as pool:
        futures = {pool.submit(run_job, job, env): k for k, job in enumerate(jobs)}
        slots: list[JobResult | None] = [None] * len(jobs)
        for i, fut in enumerate(as_completed(futures), 1):
            k = futures[fut]
            try:
                r = fut.result()
            except Exception as exc:  # a worker died
                r = JobResult(jobs[k], error=f"worker failed: {type(exc).__name__}: {exc}")
            slots[k] = r
            report(i, r)
    out = [r for r in slots if r is not None]
    return GridSummary(out, time.perf_counter() - t0)


def _run_on_gpus(jobs: Sequence[GridJob], gpus: GpuSlots, report: Callable[[int, JobResult], None]) -> list[JobResult]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from xlbench.accelerator import GPU_SHARE_ENV

    base = {**_env(), "XLBENCH_PROGRESS": "0", GPU_SHARE_ENV: f"{1 / gpus.per_gpu:.6f}"}
    pools = [
        ProcessPoolExecutor(max_workers=gpus.per_gpu, mp_context=mp.get_context("spawn"),
                            initializer=set_environment, initargs=({**base, "CUDA_VISIBLE_DEVICES": gpu}, os.getpid()))
        for gpu in gpus.devices
    ]
    slots: list[JobResult | None] = [None] * len(jobs)
    try:
        futures = {pools[k % len(pools)].submit(run_job, replace(job, device="cuda")): k for k, job in enumerate(jobs)}
        for i, fut in enumerate(as_completed(futures), 1):
            k = futures[fut]
            try:
                r = fut.result()
            except Exception as exc:  # a worker died
                r = JobResult(jobs[k], error=f"worker failed: {type(exc).__name__}: {exc}")
            slots[k] = r
            report(i, r)
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
    return [r for r in slots if r is not None]


def with_results(jobs: Iterable[GridJob], results: Path | None) -> list[GridJob]:
    """Pin the results folder (absolute), so workers and Slurm nodes write where we read."""
    if results is None:
        from xlbench.home import results_dir

        results = results_dir()
    return [replace(j, results=Path(results).resolve()) for j in jobs]
