"""Running a method on one task: the inputs of a request by split part, the method's job,
and fit + predict through its worker (xlbench.isolation). Used by the runner for every seed,
by the hidden-label audit for its three runs, and by the Fig. 6 representations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from xlbench import progress
from xlbench.encoders.base import Encoder
from xlbench.inputs import FrozenInputs, WaveInputs
from xlbench.isolation import Isolation, MethodJob, MethodOutput, TestSet, job_for, run_method, score_sets
from xlbench.languages import LanguageData
from xlbench.manifest import Utterance
from xlbench.method import Method
from xlbench.tasks import TaskTruth, TransferTask
from xlbench.view import BackboneSpec, InputParts


@dataclass
class Prepared:
    """What every seed of a request shares."""

    method_cls: type[Method]
    config_dump: dict[str, Any]
    encoder: Encoder
    mode: Literal["frozen", "finetune"]
    device: torch.device
    source: LanguageData
    target: LanguageData
    classes: tuple
    n_labeled: int
    notes: list[str] = field(default_factory=list)
    encoder_name: str = ""  # registry name (``auto`` resolved), to rebuild it in the method's process
    encoder_options: tuple[tuple[str, str], ...] = ()



#: the split parts a request's inputs are divided into (one store each, see xlbench.view)
PARTS = ("source_train", "source_val", "source_test", "target_train", "target_val", "target_test")


#: the last InputParts built in this process: the main command's three requests (the method and
#: both bounds) share their data, encoder and crop, so they share one set of pooled stores
_LAST_PARTS: list[tuple[tuple, InputParts]] = []


def input_parts(p: Prepared, crop_seconds: float, show_progress: bool, reuse: bool = True) -> InputParts:
    """Inputs of every utterance of the request, one store per split part, built once.

    Frozen: cached frames (extracted once, shared by every method and seed), pooled. Fine-tune:
    waveforms. A run lends its method the parts it declared (``InputParts.store_for``).
    ``reuse``: keep them for the next request of this process with the same inputs.
    """
    by_part = {
        f"{side}_{split}": [u for u in d.parts[split] if u.emotion in p.classes]
        for side, d in (("source", p.source), ("target", p.target))
        for split in ("train", "val", "test")
    }
    utts = [u for part in PARTS for u in by_part[part]]
    from xlbench.features import encoder_key

    key = (p.mode, encoder_key(p.encoder), crop_seconds, tuple(tuple(u.sha for u in by_part[n]) for n in PARTS))
    for cached_key, parts in _LAST_PARTS:
        if cached_key == key:
            return parts
    parts = _build_parts(p, by_part, utts, crop_seconds, show_progress)
    if reuse:
        _LAST_PARTS[:] = [(key, parts)]
    return parts


def _build_parts(
    p: Prepared, by_part: dict[str, list[Utterance]], utts: list[Utterance], crop_seconds: float, show_progress: bool
) -> InputParts:
    if p.mode == "finetune":
        with progress.bar("loading audio", len(utts), enabled=show_progress) as advance:
            waves = WaveInputs(utts, crop_seconds, progress=advance)
        return InputParts({name: waves.subset([u.sha for u in by_part[name]]) for name in PARTS})
    from xlbench.features import FeatureCache

    store = FeatureCache(p.encoder).get_or_compute(utts, device=p.device, progress=show_progress)
    info = p.encoder.info()
    return InputParts(
        {
            name: FrozenInputs({u.sha: store.frames(u.sha) for u in by_part[name]}, info.frame_rate, crop_seconds,
                               p.encoder.pooling)
            for name in PARTS
        }
    )


def backbone_spec(p: Prepared) -> BackboneSpec:
    """The backbone recipe for the method's worker: encoder, head and standardiser options."""
    from xlbench.components.standardize import wants_standardizer
    from xlbench.training import TrainConfig

    info = p.encoder.info()
    options = dict(p.encoder_options)
    if info.revision and getattr(p.encoder, "model_id", None) and "revision" not in options:
        options["revision"] = info.revision  # the worker loads exactly the commit the harness resolved
    cfg = p.method_cls.Config(**p.config_dump)
    train = cfg if isinstance(cfg, TrainConfig) else TrainConfig()  # other configs: the defaults
    return BackboneSpec(
        mode=p.mode,
        dim=info.dim,
        n_classes=len(p.classes),
        pooling=p.encoder.pooling,
        encoder=p.encoder_name if p.mode == "finetune" else None,
        encoder_options=tuple(sorted(options.items())),
        head_type=train.head_type,
        head_hidden=train.head_hidden,
        head_dropout=train.head_dropout,
        standardize=wants_standardizer(train.standardize, p.encoder, p.mode),  # a ConfigError before any run
    )


def method_job(
    p: Prepared, inputs: InputParts, task: TransferTask, *, show_progress: bool = True, embed: bool = False,
    reuse: bool = False,
) -> MethodJob:
    """What the method's worker is handed for ``fit``: its view and nothing else (``reuse``: the
    view's store is kept for the next run with the same keys, see ``InputParts.store_for``)."""
    frozen_cpu = p.mode == "frozen" and p.device.type == "cpu"
    return job_for(
        p.method_cls,
        config=p.config_dump,
        task=task,
        inputs=inputs.store_for(task.fit_keys(), reuse=reuse),
        backbone=backbone_spec(p),
        device=str(p.device),
        seed=task.seed,
        show_progress=show_progress,
        label=f"{p.method_cls.name} · {p.target.language} · seed {task.seed}",
        # A linear head on cached vectors is tiny: on a CPU, thread hand-offs cost more than
        # they save (measured 2-3x slower with 2 threads), so frozen runs use one thread.
        threads=1 if frozen_cpu else None,
        embed=embed,
    )


def fit_and_predict(
    p: Prepared,
    inputs: InputParts,
    task: TransferTask,
    truth: TaskTruth,
    *,
    show_progress: bool = True,
    isolation: Isolation = "worker",
    embed: bool = False,
) -> MethodOutput:
    """The method's part of a run, on its view only: fit, then predict both test sets.

    The method runs in a worker process (xlbench.isolation) holding the task, the inputs of its
    declared parts and a scoring channel for validation; test inputs arrive after ``fit``.
    """
    # stores lent to worker processes are kept for the next seed; in-process (tests) a method holds
    # the very object, so it gets its own
    reuse = isolation == "worker"
    job = method_job(p, inputs, task, show_progress=show_progress, embed=embed, reuse=reuse)
    tests = [TestSet(e.name, e.keys) for e in (truth.target_test, truth.source_test)]

    def test_inputs() -> tuple[Any, list[TestSet]]:
        return inputs.store_for([k for t in tests for k in t.keys], reuse=reuse), tests

    scorer = score_sets({name: (s.keys, s.labels) for name, s in truth.validation.items()}, task.n_classes)
    from xlbench.home import subdir

    return run_method(job, test_inputs, scorer, isolation=isolation, log_dir=str(subdir("logs", create=False)))


