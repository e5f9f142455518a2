"""The method contract (`xlbench check-method`): what every method must satisfy, checked in
seconds on a small slice of the synthetic corpus with a parameter-free (or tiny) encoder.

This module has no CLI code, so tests and notebooks call ``check`` directly.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from xlbench.errors import XLBenchError
from xlbench.inputs import Backbone, Batch, FrozenInputs, InputStore, WaveInputs
from xlbench.languages import LanguageData, load_language
from xlbench.method import METHODS, Method, MethodConfig, get_method, make_config
from xlbench.protocol import EMOTIONS_5
from xlbench.tasks import ALL_LABELS, build_task
from xlbench.training import FitContext, seed_everything

VALID_NEEDS = {"source_train", "target_labeled", "target_unlabeled", "validation"}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class ContractResult:
    method: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


class SpyInputs(InputStore):
    """An input store that remembers every key a method asked for."""

    def __init__(self, inner: InputStore):
        self.inner = inner
        self.mode = inner.mode
        self.crop_seconds = inner.crop_seconds
        self.seen: set[str] = set()

    def train_batch(self, keys: Sequence[str], rng: np.random.Generator) -> Batch:
        self.seen.update(keys)
        return self.inner.train_batch(keys, rng)

    def eval_batch(self, keys: Sequence[str]) -> Batch:
        self.seen.update(keys)
        return self.inner.eval_batch(keys)

    def length(self, key: str) -> int:
        return self.inner.length(key)


def _subset(d: LanguageData, per_split: dict[str, int]) -> LanguageData:
    """A small, class-balanced slice of each split (keeps the check to seconds)."""
    parts = {}
    for name, utts in d.parts.items():
        n = per_split[name]
        by_class: dict[Any, list] = {}
        for u in utts:
            by_class.setdefault(u.emotion, []).append(u)
        k = max(1, n // max(len(by_class), 1))
        parts[name] = [u for c in sorted(by_class, key=str) for u in by_class[c][:k]]
    return LanguageData(d.language, d.corpora, d.synthetic, parts, d.split_hashes, d.note)


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


def _fit(cls: type[Method], config: MethodConfig, task, inputs: InputStore, make_backbone, seed: int):
    seed_everything(seed)
    method = cls(config)
    ctx = FitContext(
        inputs=inputs,
        device=torch.device("cpu"),
        seed=seed,
        n_classes=task.n_classes,
        make_backbone=make_backbone,
        show_progress=False,
        label=f"check {cls.name}",
    )
    return method, method.fit(task, ctx)


def check(
    name: str, overrides: dict[str, Any] | None = None, *, finetune: bool = False, seed: int = 0
) -> ContractResult:
    """Run the contract; every failure becomes a failed check, never an exception."""
    t0 = time.perf_counter()
    result = ContractResult(name)
    add = result.checks.append

    try:
        cls = get_method(name)
        add(Check("loads", True, f"{cls.__module__}.{cls.__qualname__} from {METHODS.registration(name).distribution}"))
    except XLBenchError as exc:
        add(Check("loads", False, str(exc)))
        result.seconds = time.perf_counter() - t0
        return result

    problems = []
    if getattr(cls, "name", None) != name:
        problems.append(f"class attribute name is {getattr(cls, 'name', None)!r}, registered as {name!r}")
    if not isinstance(getattr(cls, "version", None), str) or not cls.version:
        problems.append("version must be a non-empty string")
    if not getattr(cls, "citation", ""):
        problems.append("citation is empty")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, MethodConfig)):
        problems.append("Config must subclass xlbench.method.MethodConfig")
    bad_needs = set(cls.needs) - VALID_NEEDS
    if bad_needs:
        problems.append(f"unknown needs {sorted(bad_needs)}")
    add(Check("metadata", not problems, "; ".join(problems) or f"v{cls.version}, needs {', '.join(sorted(cls.needs))}"))

    try:
        config = make_config(cls, {**smoke_overrides(cls), **(overrides or {})})
        cls.Config(**config.model_dump())  # round trip
        add(Check("config", True, ", ".join(f"{k}={v}" for k, v in config.model_dump().items())[:200]))
    except XLBenchError as exc:
        add(Check("config", False, str(exc)))
        result.seconds = time.perf_counter() - t0
        return result

    try:
        source = _subset(load_language("english", "synthetic"), {"train": 60, "val": 20, "test": 20})
        target = _subset(load_language("italian", "synthetic"), {"train": 40, "val": 20, "test": 20})
        n_labeled = ALL_LABELS if cls.uses_all_target_labels else (10 if "target_labeled" in cls.needs else 0)
        task, truth = build_task(
            source, target, classes=EMOTIONS_5, n_labeled=n_labeled, seed=seed, selection="paper", needs=cls.needs
        )
        utts = [u for d in (source, target) for p in d.parts.values() for u in p]
        crop = float(getattr(config, "crop_seconds", 2.0))
        if finetune:
            from xlbench.encoders import build_encoder
            from xlbench.encoders.tiny import tiny_hubert_path

            folder = tempfile.mkdtemp(prefix="xlbench-tiny-")
            encoder = build_encoder("hubert", {"path": str(tiny_hubert_path(folder))})
            inputs: InputStore = WaveInputs(utts, crop)

            def make_backbone() -> Backbone:
                import copy

                return Backbone(copy.deepcopy(encoder), encoder.info().dim, task.n_classes, encoder.pooling)
        else:
            from xlbench.encoders import build_encoder
            from xlbench.features import FeatureCache

            encoder = build_encoder("logmel-stats")
            store = FeatureCache(encoder).get_or_compute(utts, device=torch.device("cpu"), progress=False)
            inputs = FrozenInputs(
                {u.sha: store.frames(u.sha) for u in utts}, encoder.info().frame_rate, crop, encoder.pooling
            )

            def make_backbone() -> Backbone:
                return Backbone(None, encoder.info().dim, task.n_classes, encoder.pooling)
    except XLBenchError as exc:
        add(Check("task", False, str(exc)))
        result.seconds = time.perf_counter() - t0
        return result
    add(
        Check(
            "task",
            True,
            f"|D_s|={len(task.source_train)} |K_t|={len(task.target_labeled)} "
            f"|U_t|={len(task.target_unlabeled)} test={len(truth.target_test.keys)}",
        )
    )

    spy = SpyInputs(inputs)
    test_keys = list(truth.target_test.keys) + list(truth.source_test.keys)
    try:
        method, report = _fit(cls, config, task, spy, make_backbone, seed)
        fit_seen = set(spy.seen)
        probs = np.asarray(method.predict_proba(test_keys))
        add(Check("fit", True, f"selected epoch {report.selected_epoch}, {len(report.history)} epochs logged"))
    except Exception as exc:  # a plugin's bug must show as a failed check
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        add(Check("fit", False, last))
        result.seconds = time.perf_counter() - t0
        return result

    allowed = set(task.source_train.keys) | set(task.target_labeled.keys) | set(task.target_unlabeled.keys)
    for s in task.validation:
        allowed |= set(s.keys)
    leaked = fit_seen - allowed
    add(
        Check(
            "uses only its task",
            not leaked,
            f"{len(leaked)} key(s) outside the task were read during fit"
            if leaked
            else f"{len(fit_seen)} keys read, all in the task",
        )
    )

    n, c = len(test_keys), task.n_classes
    shape_ok = probs.shape == (n, c)
    add(Check("predict_proba shape", shape_ok, f"{probs.shape}, expected {(n, c)}"))
    if shape_ok:
        finite = bool(np.isfinite(probs).all())
        sums = probs.sum(1)
        prob_ok = finite and bool((probs >= -1e-6).all()) and bool(np.allclose(sums, 1, atol=1e-4))
        add(
            Check(
                "probabilities",
                prob_ok,
                "finite, non-negative, rows sum to 1"
                if prob_ok
                else f"finite={finite}, min={probs.min():.3g}, row sums in [{sums.min():.4f}, {sums.max():.4f}]",
            )
        )
        try:
            again_method, _ = _fit(cls, config, task, SpyInputs(inputs), make_backbone, seed)
            again = np.asarray(again_method.predict_proba(test_keys))
            same = bool(np.allclose(again, probs, atol=1e-6))
            add(
                Check(
                    "deterministic",
                    same,
                    "same seed, same predictions"
                    if same
                    else f"max difference {np.abs(again - probs).max():.3g} between two runs with seed {seed}",
                )
            )
        except Exception as exc:
            add(Check("deterministic", False, traceback.format_exception_only(type(exc), exc)[-1].strip()))
    result.seconds = time.perf_counter() - t0
    return result
