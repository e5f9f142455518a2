"""A copy of every run in MLflow: params, final metrics, per-epoch curves, the record itself.

The default store is a SQLite database in the data home (offline); ``MLFLOW_TRACKING_URI``
points anywhere else. The JSON record is the source of truth: a tracking failure prints a
warning and never loses the record. ``XLBENCH_MLFLOW=0`` switches tracking off.

Guarantees (docs/concurrency.md): writes are serialised by a lock file (so two processes never
create the SQLite tables at once), and a record is copied once: its MLflow run carries the
record's run id and a digest of its bytes, and a copy that is already there is not made again.
A record is marked pending (``<results>/.mlflow-pending/<run id>.pending``) before it is
written and unmarked once copied; the next run copies what is still pending, and
``xlbench runs sync-mlflow`` copies every record the store lacks. A remote server that does
not answer within CONNECT_TIMEOUT seconds gets a warning, and the run goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from xlbench import progress
from xlbench.errors import DataError, XLBenchError
from xlbench.home import atomic_write_text, data_home
from xlbench.locks import ProcessLock
from xlbench.records import CorruptRecord, RunRecord, iter_records, read_record, run_lock

EXPERIMENT = "xlbench"
RUN_ID_TAG = "xlbench.run_id"
DIGEST_TAG = "xlbench.record_digest"
PENDING = ".mlflow-pending"
#: seconds to wait for a remote tracking server to accept a connection
CONNECT_TIMEOUT = 3.0
#: MLflow's own HTTP retries and timeout for a remote server unless the user set them (its
#: defaults, 7 retries with backoff and 120 s, stall a run for minutes when the server is down)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}

_unreachable: dict[str, str] = {}  # tracking URI -> why, once per process


class TrackingError(XLBenchError):
    """The MLflow store cannot be reached or written."""


def enabled() -> bool:
    return os.environ.get("XLBENCH_MLFLOW", "1") != "0"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_home() / 'mlflow.db'}"


def _flatten(prefix: str, obj: Any, out: dict[str, str]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(obj, list | tuple):
        out[prefix] = ",".join(map(str, obj))[:500]
    else:
        out[prefix] = str(obj)[:500]


def record_params(record: RunRecord) -> dict[str, str]:
    out: dict[str, str] = {}
    _flatten(
        "",
        {
            "run_id": record.run_id,
            "method": record.method.name,
            "method_version": record.method.version,
            "config": record.method.config,
            "encoder": record.encoder.name,
            "encoder_weights": record.encoder.weights_sha,
            "task": record.task.model_dump(),
            "source_corpora": record.source_data.corpora,
            "target_corpora": record.target_data.corpora,
            "synthetic": record.synthetic,
            "selected_epoch": record.selection.selected_epoch,
        },
        out,
    )
    return out


def record_metrics(record: RunRecord) -> dict[str, float]:
    out = {}
    for side, m in record.metrics.items():
        out[f"{side}_ua"] = m.ua
        out[f"{side}_wa"] = m.wa
        out[f"{side}_macro_f1"] = m.macro_f1
        for cls, r in m.per_class_recall.items():
            out[f"{side}_recall_{cls}"] = r
    for r in record.pseudo_labels:
        if r.accuracy is not None:
            out[f"pseudo_label_accuracy_e{r.epoch}"] = r.accuracy
    return out


# -- pending copies ------------------------------------------------------------------------------


def pending_marker(record_file: Path) -> Path:
    """``<results>/.mlflow-pending/<run id>.pending`` for ``<results>/<method>/<run id>.json``."""
    return record_file.parent.parent / PENDING / f"{record_file.stem}.pending"


def mark_pending(record_file: Path) -> None:
    """Note that ``record_file`` is about to be written and is not in MLflow yet."""
    if not enabled():
        return
    # best effort: where the marker cannot be written the record cannot either (and fails there)
    with contextlib.suppress(OSError, DataError):
        atomic_write_text(pending_marker(record_file), f"{record_file.parent.name}/{record_file.name}\n")


def record_digest(record_file: Path) -> str:
    return hashlib.blake2b(Path(record_file).read_bytes(), digest_size=16).hexdigest()


# -- the store -----------------------------------------------------------------------------------


def _lock_path(uri: str) -> Path:
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return db.with_name(db.name + ".lock")
    return data_home() / "mlflow.lock"


def _check_reachable(uri: str) -> None:
    """A remote server must accept a connection within CONNECT_TIMEOUT seconds."""
    url = urlparse(uri)
    if url.scheme not in ("http", "https"):
        return
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if uri in _unreachable:
        raise TrackingError(_unreachable[uri])
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "localhost", port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        why = f"tracking server {url.hostname}:{port} unreachable ({exc.strerror or exc or 'timed out'})"
        _unreachable[uri] = why
        raise TrackingError(why) from None


@contextlib.contextmanager
def _store() -> Iterator[tuple[Any, str]]:
    """(MlflowClient, experiment id), with this process holding the MLflow lock."""
    import logging

    uri = tracking_uri()
    _check_reachable(uri)
    from mlflow.tracking import MlflowClient

    # MLflow and alembic narrate database set-up at INFO (set on import); the user needs none of it
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)

    with ProcessLock(_lock_path(uri), "writing to MLflow", on_wait=progress.note):
        client = MlflowClient(tracking_uri=uri)  # a new SQLite store creates its tables here
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            artifacts = None
            if uri.startswith("sqlite:"):
                artifacts = (data_home() / "mlartifacts").resolve().as_uri()
            exp_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
        else:
            exp_id = exp.experiment_id
        yield client, exp_id


def _copies(client: Any, exp_id: str, run_id: str | None = None) -> dict[str, list[Any]]:
    """The active MLflow runs of the experiment by xlbench run id (of one run id, or of all)."""
    query = f"tags.`{RUN_ID_TAG}` = '{run_id}'" if run_id is not None else ""
    out: dict[str, list[Any]] = {}
    token = None
    while True:
        page = client.search_runs([exp_id], filter_string=query, max_results=1000, page_token=token)
        for run in page:
            rid = run.data.tags.get(RUN_ID_TAG)
            if rid:
                out.setdefault(rid, []).append(run)
        token = page.token
        if not token:
            return out


def _log(client: Any, exp_id: str, record: RunRecord, record_file: Path, digest: str) -> str:
    from mlflow.entities import Metric, Param, RunTag

    run = client.create_run(
        exp_id,
        run_name=f"{record.method.name}-{record.task.target}-n{record.task.n_labeled}-s{record.task.seed}",
        tags={RUN_ID_TAG: record.run_id, DIGEST_TAG: digest, "xlbench.synthetic": str(record.synthetic).lower()},
    )
    rid = run.info.run_id
    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in record_params(record).items()]
    metrics = [Metric(k, float(v), now, 0) for k, v in record_metrics(record).items()]
    for row in record.history:
        step = int(row.get("epoch", 0))
        metrics.extend(Metric(k, float(v), now, step) for k, v in row.items() if k != "epoch")
    for start in range(0, max(len(params), 1), 100):
        client.log_batch(rid, params=params[start : start + 100])
    for start in range(0, len(metrics), 1000):
        client.log_batch(rid, metrics=metrics[start : start + 1000])
    client.log_batch(rid, tags=[RunTag("mlflow.source.name", "xlbench")])
    client.log_artifact(rid, str(record_file))
    client.set_terminated(rid)  # FINISHED: the copy is complete
    return rid


def _copy(client: Any, exp_id: str, record: RunRecord, record_file: Path, existing: list[Any]) -> tuple[str, bool]:
    """The record's one MLflow run: the existing complete copy, else a new one; other copies of
    the run id (cut short by a kill, or of a record since overwritten) are deleted."""
    digest = record_digest(record_file)
    same = [r for r in existing if r.info.status == "FINISHED" and r.data.tags.get(DIGEST_TAG) == digest]
    new = not same
    rid = same[0].info.run_id if same else _log(client, exp_id, record, record_file, digest)
    for r in existing:
        if r.info.run_id != rid:
            client.delete_run(r.info.run_id)
    return rid, new


def _copy_one(record: RunRecord, record_file: Path) -> tuple[str, bool]:
    with _store() as (client, exp_id):
        existing = _copies(client, exp_id, record.run_id).get(record.run_id, [])
        return _copy(client, exp_id, record, record_file, existing)


def _warn(exc: Exception, record_file: Path) -> None:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    progress.note(
        f"[yellow]warning: MLflow tracking failed ({line}); the record is safe at {record_file} "
        "(the next run or `xlbench runs sync-mlflow` copies it)[/]"
    )


def log_run(record: RunRecord, record_file: Path) -> str | None:
    """Copy a finished run to MLflow once; return the MLflow run id, or None (with a warning) on failure."""
    if not enabled():
        return None
    try:
        rid, _ = _copy_one(record, record_file)
    except Exception as exc:  # tracking must never lose a record
        _warn(exc, record_file)
        return None
    with contextlib.suppress(OSError):
        pending_marker(record_file).unlink(missing_ok=True)
    return rid


def backfill(root: Path, on_note: Callable[[str], None] = progress.note) -> int:
    """Copy the records an earlier process wrote but did not copy (pending markers); returns how many."""
    folder = Path(root) / PENDING
    if not enabled() or not folder.is_dir():
        return 0
    copied = 0
    for marker in sorted(folder.glob("*.pending")):
        lock = run_lock(marker.stem, Path(root))
        if not lock.try_acquire():
            continue  # that run is being written now; its own process copies it
        try:
            path = Path(root) / marker.read_text(encoding="utf-8").strip()
            try:
                record = read_record(path)
            except CorruptRecord:  # never written (killed before the rename), or damaged
                marker.unlink(missing_ok=True)
                continue
            try:
                _, new = _copy_one(record, path)
            except Exception as exc:
                _warn(exc, path)
                break  # the store is failing: the rest stay pending
            marker.unlink(missing_ok=True)
            copied += new
        except OSError:
            continue
        finally:
            lock.release()
    if copied:
        on_note(f"MLflow: copied {copied} record(s) an earlier run had not copied")
    return copied


@dataclass
class SyncResult:
    copied: int = 0
    present: int = 0
    corrupt: int = 0


def sync(root: Path) -> SyncResult:
    """Copy every record under ``root`` that MLflow lacks (``xlbench runs sync-mlflow``)."""
    result = SyncResult()
    records = []
    for path, rec in iter_records(root):
        if isinstance(rec, CorruptRecord):
            result.corrupt += 1
        else:
            records.append((path, rec))
    try:
        with _store() as (client, exp_id):
            existing = _copies(client, exp_id)
            for path, rec in records:
                _, new = _copy(client, exp_id, rec, path, existing.get(rec.run_id, []))
                result.copied += new
                result.present += not new
                with contextlib.suppress(OSError):
                    pending_marker(path).unlink(missing_ok=True)
    except XLBenchError:
        raise
    except Exception as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrackingError(f"MLflow sync to {tracking_uri()} failed: {line}") from None
    return result
