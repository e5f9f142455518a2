"""Running a method where the hidden truth cannot be reached (DESIGN.md, trust model 3).

The harness holds the labels of U_t, of the validation sets and of the test sets; a method is
code we did not write. ``run_method`` runs the method's ``fit`` and ``predict_proba`` in a
worker process that is handed only its view: the task (keys; labels of D_s and K_t only), the
inputs of the declared parts, a backbone recipe and a scoring channel. Nothing else of the
harness exists in that process, so no closure, stack frame or ``gc`` walk can find the truth.

Protocol (worker → harness, over a pipe):

1. ``("score", set_name, predictions)`` → the harness answers with the UA (it counts calls);
2. ``("fitted", report)`` → the harness sends the test inputs, now servable;
3. ``("probs", set_name, array)`` per test set, predicted in batches of ``TEST_BATCH`` keys in
   key order; then ``("done", refused, peak)`` (peak: bytes of GPU memory the method's tensors
   took at most, or None off CUDA);
``("error", kind, message, traceback)`` ends the exchange at any point.

Workers are forked from a fork server that is started once per harness process with torch and
xlbench imported and no data loaded (``multiprocessing``'s "forkserver" start method): a
worker costs ~15 ms instead of the ~2 s of a fresh interpreter. Where fork servers do not exist
(Windows), "spawn" is used. ``isolation="in-process"`` runs the same protocol without a worker:
for tests and debugging only; its records say so and are not accepted on a leaderboard.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from xlbench.errors import LeakError, MethodError, XLBenchError
from xlbench.lifetime import die_with_parent
from xlbench.method import TEST_BATCH, FitContext, FitReport, Method
from xlbench.tasks import TransferTask
from xlbench.view import BackboneSpec, Store, ViewInputs
from xlbench.worker_server import context

Isolation = Literal["worker", "in-process"]
ISOLATIONS: tuple[str, ...] = ("worker", "in-process")

@dataclass
class MethodJob:
    """Everything a worker receives for ``fit``: the method by reference, its view, settings."""

    method_name: str  # the registered name, for messages
    method_module: str
    method_class: str
    config: dict[str, Any]
    task: TransferTask
    inputs: Store  # exactly the keys of task.fit_keys()
    backbone: BackboneSpec
    device: str
    seed: int
    show_progress: bool = True
    label: str = ""
    threads: int | None = None  # torch intra-op threads in the worker (None: torch's default)
    embed: bool = False  # also return ``Method.embed`` of the test sets (the PCA figure)
    env: dict[str, str] = field(default_factory=dict)
    sys_path: list[str] = field(default_factory=list)
    cwd: str = ""


@dataclass
class TestSet:
    """A set the harness scores after ``fit``: its name and keys (in key order)."""

    name: str
    keys: tuple[str, ...]


@dataclass
class MethodOutput:
    report: FitReport
    probabilities: dict[str, np.ndarray]  # test set name -> (n, C)
    scoring_calls: dict[str, int]  # validation set name -> calls observed by the harness
    embeddings: dict[str, np.ndarray | None] = field(default_factory=dict)  # with ``job.embed``
    peak_memory: int | None = None  # bytes of GPU memory allocated at most during fit + predict


Scorer = Callable[[str, np.ndarray], float]


def job_for(method_cls: type[Method], **kwargs: Any) -> MethodJob:
    """A job for ``method_cls`` with this process's environment, import path and folder."""
    return MethodJob(
        method_name=method_cls.name,
        method_module=method_cls.__module__,
        method_class=method_cls.__qualname__,
        env=dict(os.environ),
        sys_path=list(sys.path),
        cwd=os.getcwd(),
        **kwargs,
    )


# -- the method's side ------------------------------------------------------------------------


class _Channel:
    """The worker's end of the protocol (a pipe, or direct calls when in-process)."""

    def score(self, name: str, predictions: np.ndarray) -> float:
        raise NotImplementedError

    def fitted(self, report: FitReport) -> tuple[Store, list[TestSet]]:
        raise NotImplementedError

    def probs(self, name: str, probs: np.ndarray) -> None:
        raise NotImplementedError

    def embedding(self, name: str, vectors: np.ndarray | None) -> None:
        raise NotImplementedError


def _serve(job: MethodJob, channel: _Channel) -> tuple[list[str], int | None]:
    """Fit the method on its view, then predict the test sets; returns the refused keys and the
    peak GPU memory (bytes; None off CUDA)."""
    import torch

    from xlbench.accelerator import apply_gpu_share, peak_memory_bytes, reset_peak_memory
    from xlbench.training import seed_everything

    if job.threads is not None:
        torch.set_num_threads(job.threads)
    cls = getattr(importlib.import_module(job.method_module), job.method_class)
    method = cls(cls.Config(**job.config))
    device = torch.device(job.device)
    apply_gpu_share(device)  # xlbench grid --per-gpu: several runs share this GPU
    reset_peak_memory(device)
    # waveforms move to the GPU once here (when they fit), so batches are cut there
    store = ViewInputs(job.inputs.to(device), job.task.fit_keys(), method=cls.name)
    n_classes = job.task.n_classes

    def score_validation(name: str, predictions: np.ndarray) -> float:
        return channel.score(name, np.asarray(predictions))

    seed_everything(job.seed)
    ctx = FitContext(
        inputs=store,
        device=device,
        seed=job.seed,
        n_classes=n_classes,
        make_backbone=job.backbone.factory(store, job.task),
        score_validation=score_validation,
        show_progress=job.show_progress,
        label=job.label,
    )
    report = method.fit(job.task, ctx)
    if store.refused:  # even when the method caught the LeakError
        raise LeakError(
            f"{cls.name} asked for the inputs of {len(set(store.refused))} key(s) outside its view during fit; "
            "no record was written"
        )
    if not isinstance(report, FitReport):
        raise MethodError(f"{cls.name}.fit returned {type(report).__name__}, not a FitReport")
    test_store, test_sets = channel.fitted(report)
    store.admit_test(test_store.to(device))
    for s in test_sets:
        chunks = []
        for start in range(0, len(s.keys), TEST_BATCH):
            keys = list(s.keys[start : start + TEST_BATCH])
            p = np.asarray(method.predict_proba(keys), dtype=np.float64)
            if p.shape != (len(keys), n_classes):
                raise MethodError(
                    f"{cls.name}.predict_proba gave shape {p.shape} for {len(keys)} keys, "
                    f"expected {(len(keys), n_classes)}"
                )
            chunks.append(p)
        channel.probs(s.name, np.concatenate(chunks) if chunks else np.zeros((0, n_classes)))
        if job.embed:
            vectors = method.embed(list(s.keys))
            channel.embedding(s.name, None if vectors is None else np.asarray(vectors))
    return sorted(set(store.refused)), peak_memory_bytes(device)


def _read_only(store: object) -> None:
    """Make the shared-memory tensors of a lent store read-only in this (worker) process.

    The harness lends the same store to the runs of every seed (kept in shared memory, so it is
    handed over without a copy; ``InputParts.store_for``); a method writing into its inputs would
    change the next run's. With the pages read-only, such a write ends this worker (SIGSEGV) and
    its run fails instead. Linux only (``mprotect`` through libc); elsewhere nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import mmap

    import torch

    libc = ctypes.CDLL(None, use_errno=True)
    for value in vars(store).values():
        if not (isinstance(value, torch.Tensor) and value.device.type == "cpu" and value.is_shared()):
            continue
        storage = value.untyped_storage()
        if storage.nbytes() and storage.data_ptr() % mmap.PAGESIZE == 0:  # its own mapping
            libc.mprotect(ctypes.c_void_p(storage.data_ptr()), ctypes.c_size_t(storage.nbytes()), mmap.PROT_READ)


class _PipeChannel(_Channel):
    def __init__(self, conn: Any):
        self.conn = conn

    def score(self, name: str, predictions: np.ndarray) -> float:
        self.conn.send(("score", name, predictions))
        kind, value = self.conn.recv()
        if kind == "error":
            raise LeakError(value)
        return float(value)

    def fitted(self, report: FitReport) -> tuple[Store, list[TestSet]]:
        self.conn.send(("fitted", report))
        test_store, test_sets = self.conn.recv()
        _read_only(test_store)
        return test_store, test_sets

    def probs(self, name: str, probs: np.ndarray) -> None:
        self.conn.send(("probs", name, probs))

    def embedding(self, name: str, vectors: np.ndarray | None) -> None:
        self.conn.send(("embed", name, vectors))


def _die_with_parent() -> None:
    """This worker ends when its parent (the fork server) dies; the fork server itself exits
    when the harness does, so no worker outlives a killed harness."""
    die_with_parent()


def _worker_main(conn: Any) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the harness reports it, not us
    _die_with_parent()
    try:
        job: MethodJob = conn.recv()
        _read_only(job.inputs)
        os.environ.clear()
        os.environ.update(job.env)
        sys.path[:] = job.sys_path
        if job.cwd:
            with contextlib.suppress(OSError):
                os.chdir(job.cwd)
        refused, peak = _serve(job, _PipeChannel(conn))
        conn.send(("done", refused, peak))
    except XLBenchError as exc:
        conn.send(("error", type(exc).__name__, str(exc), ""))
    except KeyboardInterrupt:  # raised by the method itself; a real Ctrl-C ends this process
        conn.send(("interrupted",))
    except BaseException as exc:  # a method's bug: the harness reports it in one line
        conn.send(("error", "method", _one_line(exc), traceback.format_exc()))
    finally:
        conn.close()


def _one_line(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


# -- the harness's side -----------------------------------------------------------------------


class _Scoring:
    """The harness's validation scorer wrapped with a call counter."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer
        self.calls: dict[str, int] = {}

    def __call__(self, name: str, predictions: np.ndarray) -> float:
        value = self.scorer(name, predictions)  # raises LeakError on an unknown set / bad shape
        self.calls[name] = self.calls.get(name, 0) + 1
        return float(value)


@contextlib.contextmanager
def _no_main_reimport() -> Iterator[None]:
    """Hide ``__main__``'s file and spec while a worker starts.

    multiprocessing re-imports the parent's main script in every spawned or fork-served child
    (as ``__mp_main__``), which runs a user script's top-level code again and fails for code
    read from stdin. Workers need nothing from ``__main__`` (their target lives here), so the
    launch is made to see a main module without a file.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


def _method_error(method: str, kind: str, message: str, trace: str, log_dir: str | None) -> XLBenchError:
    if kind == "LeakError":
        return LeakError(message)
    if kind != "method":
        from xlbench import errors

        cls = getattr(errors, kind, XLBenchError)
        return cls(message) if isinstance(cls, type) and issubclass(cls, XLBenchError) else XLBenchError(message)
    hint = ""
    if trace and log_dir:
        with contextlib.suppress(OSError):
            os.makedirs(log_dir, exist_ok=True)
            path = os.path.join(log_dir, f"{method}-traceback.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(trace)
            hint = f"; traceback in {path}"
    return MethodError(f"{method} failed: {message}{hint}")


def _lend(conn: Any, obj: Any) -> None:
    """Send ``obj`` to the worker: tensors through shared memory (moved there once, mapped by the
    worker), or, where /dev/shm has no room for them (a container's default is 64 MB), copied
    through the pipe (slower; said once)."""
    try:
        conn.send(obj)
    except RuntimeError as exc:  # torch: "unable to allocate shared memory(shm) for file </torch_...>"
        if "shared memory" not in str(exc):
            raise
        from xlbench import progress

        progress.note_once("[yellow]note: shared memory (/dev/shm) has no room for the method's inputs; copying "
                           "them to its worker instead (slower; in a container, give it more: docker run "
                           "--shm-size=2g)[/]")
        conn.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))  # recv() reads either


def run_method(
    job: MethodJob,
    tests: Callable[[], tuple[Store, list[TestSet]]],
    scorer: Scorer,
    *,
    isolation: Isolation = "worker",
    log_dir: str | None = None,
) -> MethodOutput:
    """Fit the job's method and predict the test sets ``tests()`` gives once fit returned.

    ``scorer(set_name, predictions)`` scores validation predictions on the harness's side. Any
    failure of the method is raised as one XLBenchError (LeakError, MethodError, TrainingError...).
    """
    scoring = _Scoring(scorer)
    method_name = job.method_name
    if isolation == "in-process":
        return _run_in_process(job, tests, scoring)
    ctx = context()
    here, there = ctx.Pipe()
    # not a daemon: a method may start processes of its own (e.g. data-loader workers); the
    # finally below joins or kills it, and it dies with the harness (see _die_with_parent)
    worker = ctx.Process(target=_worker_main, args=(there,), name=f"xlbench-{method_name}")
    with _no_main_reimport():
        worker.start()
    there.close()
    report: FitReport | None = None
    probs: dict[str, np.ndarray] = {}
    embeddings: dict[str, np.ndarray | None] = {}
    peak: int | None = None
    try:
        _lend(here, job)
        while True:
            try:
                msg = here.recv()
            except EOFError:
                worker.join(5)
                code = worker.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                why = ("a native crash, or a write into the read-only inputs it is lent?"
                       if code == -signal.SIGSEGV else "out of memory?")
                raise MethodError(f"the worker running {method_name} died ({how}; {why}) before it finished") from None
            kind = msg[0]
            if kind == "score":
                try:
                    here.send(("ok", scoring(msg[1], msg[2])))
                except LeakError as exc:
                    here.send(("error", str(exc)))
            elif kind == "fitted":
                report = msg[1]
                _lend(here, tests())
            elif kind == "probs":
                probs[msg[1]] = msg[2]
            elif kind == "embed":
                embeddings[msg[1]] = msg[2]
            elif kind == "done":
                peak = msg[2]
                break
            elif kind == "error":
                raise _method_error(method_name, msg[1], msg[2], msg[3], log_dir)
            elif kind == "interrupted":
                raise KeyboardInterrupt
    finally:
        here.close()
        worker.join(10)
        if worker.is_alive():
            worker.kill()
            worker.join()
    assert report is not None
    return MethodOutput(report, probs, dict(scoring.calls), embeddings, peak)


class _DirectChannel(_Channel):
    def __init__(self, scoring: _Scoring, tests: Callable[[], tuple[Store, list[TestSet]]]):
        self.scoring, self.tests = scoring, tests
        self.report: FitReport | None = None
        self.out: dict[str, np.ndarray] = {}
        self.embeddings: dict[str, np.ndarray | None] = {}

    def score(self, name: str, predictions: np.ndarray) -> float:
        return self.scoring(name, predictions)

    def fitted(self, report: FitReport) -> tuple[Store, list[TestSet]]:
        self.report = report
        return self.tests()

    def probs(self, name: str, probs: np.ndarray) -> None:
        self.out[name] = probs

    def embedding(self, name: str, vectors: np.ndarray | None) -> None:
        self.embeddings[name] = vectors


def _run_in_process(
    job: MethodJob, tests: Callable[[], tuple[Store, list[TestSet]]], scoring: _Scoring
) -> MethodOutput:
    channel = _DirectChannel(scoring, tests)
    import torch

    threads = torch.get_num_threads()
    try:
        _, peak = _serve(job, channel)
    finally:
        torch.set_num_threads(threads)
    assert channel.report is not None
    return MethodOutput(channel.report, channel.out, dict(scoring.calls), channel.embeddings, peak)


def score_sets(labels: dict[str, tuple[tuple[str, ...], np.ndarray]], n_classes: int) -> Scorer:
    """The harness's scorer for the validation sets ``labels`` (name -> (keys, class ids))."""
    from xlbench.stats import unweighted_accuracy

    def scorer(name: str, predictions: np.ndarray) -> float:
        if name not in labels:
            raise LeakError(f"score_validation: {name!r} is not a validation set of this task ({', '.join(labels)})")
        keys, truth = labels[name]
        pred = np.asarray(predictions)
        if pred.shape != (len(keys),) or not np.issubdtype(pred.dtype, np.integer):
            raise LeakError(
                f"score_validation({name!r}) expects {len(keys)} predicted class ids in the set's key order, "
                f"got an array of shape {pred.shape} and dtype {pred.dtype}"
            )
        if len(pred) and (pred.min() < 0 or pred.max() >= n_classes):
            raise LeakError(f"score_validation({name!r}): class ids must be in 0..{n_classes - 1}")
        return unweighted_accuracy(truth, pred, n_classes)

    return scorer
