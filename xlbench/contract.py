"""The method contract (`xlbench check-method`): what every method must satisfy, checked in
seconds on a small slice of the synthetic corpus with a parameter-free (or tiny) encoder.

The method runs exactly as in a real run (in its worker, on its view: xlbench.isolation), three
times: the hidden-label invariance audit (xlbench.audit). Its first run is also inspected for
the shape and sanity of the probabilities; the first two must agree (determinism) and the
third, with hidden labels permuted, must agree too (no hidden label read).

This module has no CLI code, so tests and notebooks call ``check`` directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xlbench.audit import AuditResult, run_audit, smoke_overrides
from xlbench.errors import XLBenchError
from xlbench.isolation import Isolation
from xlbench.method import METHODS, MethodConfig, get_method, make_config

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
    audit: AuditResult | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def check(
    name: str,
    overrides: dict[str, Any] | None = None,
    *,
    finetune: bool = False,
    isolation: Isolation = "worker",
) -> ContractResult:
    """Run the contract; every failure becomes a failed check, never an exception."""
    t0 = time.perf_counter()
    result = ContractResult(name)
    add = result.checks.append

    def done() -> ContractResult:
        result.seconds = time.perf_counter() - t0
        return result

    try:
        cls = get_method(name)
        add(Check("loads", True, f"{cls.__module__}.{cls.__qualname__} from {METHODS.registration(name).distribution}"))
    except XLBenchError as exc:
        add(Check("loads", False, str(exc)))
        return done()

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
    if problems:
        return done()

    try:
        config = make_config(cls, {**smoke_overrides(cls), **(overrides or {})})
        cls.Config(**config.model_dump())  # round trip
        add(Check("config", True, ", ".join(f"{k}={v}" for k, v in config.model_dump().items())[:200]))
    except XLBenchError as exc:
        add(Check("config", False, str(exc)))
        return done()

    try:
        audit = run_audit(cls, config.model_dump(mode="json"), mode="finetune" if finetune else "frozen",
                          isolation=isolation, smoke=False)
    except XLBenchError as exc:  # the audit could not be set up (e.g. the corpus)
        add(Check("task", False, str(exc)))
        return done()
    result.audit = audit
    if audit.first is None:
        if audit.error_kind == "leak":
            add(Check("uses only its view", False, audit.detail))
        else:
            add(Check("fit and predict", False, audit.detail))
        return done()
    report = audit.first.report
    add(Check("fit and predict", True, f"selected epoch {report.selected_epoch}, {len(report.history)} epochs logged"))
    add(Check("uses only its view", True, "asked only for keys of its declared parts"))
    calls = audit.first.scoring_calls
    add(Check("validation scoring", True,
              ", ".join(f"{k}: {v} call(s)" for k, v in sorted(calls.items())) or "no validation set scored"))
    probs = np.concatenate(list(audit.first.probabilities.values()))
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
    deterministic = audit.verdict != "nondeterministic"
    add(Check("deterministic", deterministic, "same seed, same outputs" if deterministic else audit.detail))
    if deterministic:
        add(Check("hidden-label audit", audit.verdict == "pass", audit.detail))
    return done()
