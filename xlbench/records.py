"""Run records (schema v1): one JSON file per run, the source of truth for every number.

A record holds everything that defines the run (hashed into ``run_id``), the metrics on the
target and source test sets, every per-utterance prediction, the model-selection facts,
timings and the environment. Records are written atomically; an existing record is never
half-overwritten, and a corrupt one is reported rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from xlbench.encoders.base import EncoderInfo
from xlbench.errors import DataError, os_error_line
from xlbench.home import atomic_write_text, open_temp_beside, results_dir
from xlbench.locks import ProcessLock

SCHEMA_VERSION = 2  # 2: observed selection facts, the audit verdict, the isolation


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MethodIdentity(Strict):
    name: str
    version: str
    distribution: str
    distribution_version: str | None = None
    citation: str = ""
    config: dict[str, Any]


class DataIdentity(Strict):
    language: str
    corpora: list[str]
    synthetic: bool
    manifest_sha: str  # hash of the (utterance id, sha, label, speaker) rows used
    split_hashes: dict[str, str]


class TaskIdentity(Strict):
    source: str
    target: str
    n_labeled: int | Literal["all"]
    seed: int
    emotions: list[str]  # class order
    selection: Literal["paper", "strict"]
    mode: Literal["frozen", "finetune"]


class Metrics(Strict):
    n: int
    ua: float  # unweighted accuracy = mean per-class recall (primary)
    wa: float  # overall accuracy
    macro_f1: float
    per_class_recall: dict[str, float]
    confusion: list[list[int]]  # rows = truth, columns = prediction, class order of the task


class Prediction(Strict):
    id: str  # manifest id (human-readable)
    speaker: str  # corpus:speaker
    true: int
    pred: int
    probs: list[float]


class PseudoLabelStats(Strict):
    epoch: int
    n_unlabeled: int
    n_selected: int
    class_counts: dict[str, int]
    accuracy: float | None  # against the hidden truth, computed by the harness afterwards
    per_class_accuracy: dict[str, float | None] = Field(default_factory=dict)


class Selection(Strict):
    """Model selection as the harness observed it: the sets the method scored, and how often."""

    policy: Literal["paper", "strict"]
    sets: list[str]  # validation sets scored at least once (observed, not declared)
    scoring_calls: dict[str, int] = Field(default_factory=dict)  # set name -> calls to score_validation
    selected_epoch: int | None
    score: float | None


AuditVerdict = Literal["pass", "fail", "nondeterministic", "error", "skipped"]


class AuditStamp(Strict):
    """The hidden-label invariance audit's verdict on the method and config of this run."""

    verdict: AuditVerdict
    fingerprint: str  # hash of what was audited: method, version, code, config, mode, xlbench version
    xlbench_version: str
    detail: str = ""


class Environment(Strict):
    xlbench_version: str
    python: str
    platform: str
    packages: dict[str, str]
    git_sha: str | None
    device: str
    device_name: str | None = None


class RunRecord(Strict):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    created: str
    protocol_version: str
    splits_version: str
    method: MethodIdentity
    encoder: EncoderInfo
    task: TaskIdentity
    source_data: DataIdentity
    target_data: DataIdentity
    sizes: dict[str, int]  # |D_s|, |K_t|, |U_t|, |T-test|, |S-test|, validation sizes
    labeled_ids: list[str]  # K_t, by manifest id, so the draw can be audited
    selection: Selection
    metrics: dict[Literal["target", "source"], Metrics]
    predictions: dict[Literal["target", "source"], list[Prediction]]
    history: list[dict[str, float]]
    pseudo_labels: list[PseudoLabelStats] = Field(default_factory=list)
    extras: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float]
    environment: Environment
    audit: AuditStamp
    isolation: Literal["worker", "in-process"] = "worker"  # where the method ran (in-process: tests only)

    @property
    def synthetic(self) -> bool:
        return self.source_data.synthetic or self.target_data.synthetic


def identity_payload(
    *,
    protocol_version: str,
    splits_version: str,
    method: MethodIdentity,
    encoder: EncoderInfo,
    task: TaskIdentity,
    source_data: DataIdentity,
    target_data: DataIdentity,
) -> dict[str, Any]:
    """Everything that defines a run, and nothing that merely describes it (timings, env)."""
    return {
        "protocol_version": protocol_version,
        "splits_version": splits_version,
        "method": {"name": method.name, "version": method.version, "config": method.config},
        "encoder": encoder.model_dump(exclude={"params"}),
        "task": task.model_dump(),
        "source_data": source_data.model_dump(),
        "target_data": target_data.model_dump(),
    }


def compute_run_id(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def recompute_run_id(record: RunRecord) -> str:
    return compute_run_id(
        identity_payload(
            protocol_version=record.protocol_version,
            splits_version=record.splits_version,
            method=record.method,
            encoder=record.encoder,
            task=record.task,
            source_data=record.source_data,
            target_data=record.target_data,
        )
    )


def record_path(run_id: str, method: str, root: Path | None = None) -> Path:
    return (root or results_dir()) / method / f"{run_id}.json"


def write_record(record: RunRecord, root: Path | None = None) -> Path:
    path = record_path(record.run_id, record.method.name, root)
    # compact: a record is read by programs (`xlbench runs show --json` pretty-prints it)
    atomic_write_text(path, record.model_dump_json() + "\n")
    return path


def ensure_writable(folder: Path) -> None:
    """Fail in one line now, not after training, when records cannot be written to ``folder``
    (a read-only or full results folder): a probe file is created there and removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = open_temp_beside(folder / ".write-probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(os_error_line(exc, "write run records in", folder)) from None


class CorruptRecord(DataError):
    pass


def read_record(path: Path) -> RunRecord:
    try:
        return RunRecord.model_validate_json(Path(path).read_bytes())
    except (ValidationError, ValueError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise CorruptRecord(f"record {path} is corrupt or of another schema ({first})") from None
    except OSError as exc:
        raise CorruptRecord(f"record {path} cannot be read ({exc.strerror or exc})") from None


def iter_records(root: Path | None = None) -> Iterator[tuple[Path, RunRecord | CorruptRecord]]:
    """Every record under the results folder; corrupt ones are yielded as errors, not raised."""
    base = root or results_dir()
    for path in sorted(base.glob("*/*.json")):
        try:
            yield path, read_record(path)
        except CorruptRecord as exc:
            yield path, exc


def run_lock(run_id: str, root: Path | None = None, on_wait: Callable[[str], None] | None = None) -> ProcessLock:
    """The lock one process holds while it trains and writes ``run_id`` (identical runs train once)."""
    return ProcessLock((root or results_dir()) / ".locks" / f"{run_id}.lock", f"running {run_id}", on_wait)


def find_record(run_id: str, root: Path | None = None) -> Path | None:
    base = root or results_dir()
    hits = sorted(base.glob(f"*/{run_id}*.json"))
    return hits[0] if len(hits) == 1 else None
