"""A copy of every run in MLflow: params, final metrics, per-epoch curves, the record itself.

The default store is a SQLite database in the data home (offline); ``MLFLOW_TRACKING_URI``
points anywhere else. The JSON record is the source of truth: a tracking failure prints a
warning and never loses the record. ``XLBENCH_MLFLOW=0`` switches tracking off.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from xlbench import progress
from xlbench.home import data_home
from xlbench.records import RunRecord

EXPERIMENT = "xlbench"


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


def log_run(record: RunRecord, record_file: Path) -> str | None:
    """Log a finished run; return the MLflow run id, or None (with a warning) on failure."""
    if not enabled():
        return None
    try:
        import logging

        import mlflow

        # MLflow and alembic narrate database set-up at INFO; the user needs none of it
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        uri = tracking_uri()
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            artifacts = None
            if uri.startswith("sqlite:"):
                artifacts = (data_home() / "mlartifacts").resolve().as_uri()
            exp_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
        else:
            exp_id = exp.experiment_id
        run = client.create_run(
            exp_id,
            run_name=f"{record.method.name}-{record.task.target}-n{record.task.n_labeled}-s{record.task.seed}",
            tags={"xlbench.run_id": record.run_id, "xlbench.synthetic": str(record.synthetic).lower()},
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
        client.set_terminated(rid)
        del mlflow
        return rid
    except Exception as exc:  # tracking must never lose a record
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        progress.note(f"[yellow]warning: MLflow tracking failed ({line}); the record is safe at {record_file}[/]")
        return None
