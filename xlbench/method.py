"""The method interface and registry (entry-point group ``xlbench.methods``).

A method is a class with a name, a version, a citation, the task parts it needs and a
pydantic config. The harness builds it with a validated config, calls ``fit`` once with a
``TransferTask`` and a ``FitContext`` (inputs of exactly the declared parts, device, seed, a
model factory and a validation-scoring callback), then ``predict_proba`` on the test keys in
batches of ``TEST_BATCH`` in key order: test inputs become servable only after ``fit`` returned.
Both calls run in a worker process that holds nothing but this view (``xlbench.isolation``).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from xlbench.errors import ConfigError
from xlbench.registry import Registry

if TYPE_CHECKING:
    import torch

    from xlbench.inputs import Backbone, InputStore
    from xlbench.tasks import TransferTask


class MethodConfig(BaseModel):
    """Base of every method's config: unknown keys are errors, values are validated (no NaN or
    infinity; each numeric option of the built-in methods has a documented range, docs/reliability.md)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


@dataclass
class PseudoLabelRound:
    """One round of pseudo-labels a method assigned to U_t (scored by the harness afterwards)."""

    epoch: int
    keys: tuple[str, ...]
    labels: np.ndarray  # class ids
    confidence: np.ndarray | None = None  # the max probability, where the method has one


@dataclass
class FitReport:
    """What ``fit`` tells the harness: the chosen epoch, curves and method-specific facts."""

    selected_epoch: int | None = None
    selection_score: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch
    pseudo_labels: list[PseudoLabelRound] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


#: test keys reach ``predict_proba`` in batches of this many, in key order
TEST_BATCH = 256


@dataclass
class FitContext:
    """What the harness lends a method for ``fit``: inputs, device, seed, model factory, scorer.

    ``inputs`` serves exactly the keys of the task parts the method declared (any other key is
    a ``LeakError``). ``score_validation(set_name, predicted_class_ids)`` returns the UA of the
    predictions on that validation set (ids aligned with the set's keys) and nothing else; the
    harness counts the calls and records which sets were scored.
    """

    inputs: InputStore
    device: torch.device
    seed: int
    n_classes: int
    make_backbone: Callable[[], Backbone]
    score_validation: Callable[[str, np.ndarray], float]
    show_progress: bool = True
    label: str = ""  # e.g. "pseudolabel · italian · seed 0", for progress bars
    history: list[dict[str, float]] = field(default_factory=list)

    def rng(self, stream: str) -> np.random.Generator:
        """An independent random stream per purpose, fixed by the run's seed."""
        return np.random.default_rng([self.seed, *stream.encode()])


class Method(ABC):
    """Subclass this, set the class attributes, and declare the class as an entry point."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    citation: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    #: task parts the method is handed; everything else arrives empty
    needs: ClassVar[frozenset[str]] = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})
    #: True for the upper bound: K_t becomes every target training utterance, with labels
    uses_all_target_labels: ClassVar[bool] = False

    def __init__(self, config: MethodConfig | None = None):
        self.config = config if config is not None else self.Config()

    @abstractmethod
    def fit(self, task: TransferTask, ctx: FitContext) -> FitReport:
        """Train on the task. Must not look at anything but ``task`` and ``ctx``."""

    @abstractmethod
    def predict_proba(self, keys: Sequence[str]) -> np.ndarray:
        """(len(keys), n_classes) class probabilities for whole utterances."""

    def embed(self, keys: Sequence[str]) -> np.ndarray | None:
        """Utterance embeddings (for the PCA figure); None when the method has none."""
        return None


METHODS: Registry[type[Method]] = Registry("xlbench.methods", "method")


def get_method(name: str) -> type[Method]:
    cls = METHODS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"method {name!r} does not point to a subclass of xlbench.method.Method")
    return cls


def _parse_value(raw: str) -> Any:
    """A `--set` value: JSON where it parses (numbers, booleans, lists), else the plain string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` strings -> a dict (no eval: values are JSON literals or strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key] = _parse_value(raw.strip())
    return out


def make_config(cls: type[Method], overrides: dict[str, Any]) -> MethodConfig:
    """Validate overrides against the method's config, with one readable line on error."""
    try:
        return cls.Config(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "?"
        fields = ", ".join(cls.Config.model_fields) or "none"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{cls.name} has no option {key!r}; its options are: {fields}") from None
        raise ConfigError(f"{cls.name} option {key}: {err['msg']} (got {err.get('input')!r})") from None


def config_label(name: str, config: dict[str, Any]) -> str:
    """The options of a run that differ from the method's defaults, e.g. ``mode=soft tau=0.65``
    ('' for all defaults); a short hash when the method cannot be loaded to know its defaults."""
    try:
        defaults = get_method(name).Config().model_dump(mode="json")
    except Exception:
        import hashlib

        return "config " + hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]
    diff = {k: v for k, v in sorted(config.items()) if defaults.get(k, object()) != v}
    return " ".join(f"{k}={v}" for k, v in diff.items())
