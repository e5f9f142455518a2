"""What makes runs comparable (their *setting*) and what a *system* is, read from a record alone.

A leaderboard row is one system in one setting; records that differ in any field of
:class:`Setting` never share a row and are never compared. :func:`setting_key` is the one place
that decides it: the tables, the tidy frame, the figures, the seed check of ``validate`` and the
reproduction pages all group records through it, so a field added there (source corpora and
their split hashes, the encoder's revision, an audit verdict ...) keeps runs apart everywhere.
Fields must be hashable (plain values or tuples): they become columns of a pandas frame.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from xlbench.protocol import TARGET_LANGUAGES
from xlbench.records import RunRecord

#: A comparison needs this many seeds per system and setting (fewer is flagged, and `validate` refuses it).
MIN_SEEDS = 3
#: Display order of the targets.
TARGET_ORDER: tuple[str, ...] = TARGET_LANGUAGES
#: Stands for "any N_k" in :meth:`Setting.any_n_labeled`.
ANY = "*"


@dataclass(frozen=True)
class Setting:
    """Everything two runs must share to be compared (DESIGN.md, "Settings")."""

    synthetic: bool  # the generated corpus, or real corpora
    encoder: str  # encoder name with its options, see :func:`encoder_label`
    mode: str  # "frozen" or "finetune"
    selection: str  # model-selection policy: "paper" or "strict"
    emotions: int  # size of the emotion set (5, or 4 without fear)
    target: str
    n_labeled: int | str  # N_k; "all" for the upper bound

    def any_n_labeled(self) -> Setting:
        """The same setting with N_k left open. The bounds run at their own N_k (0 and "all") and
        are the references of every N_k of an otherwise equal setting."""
        return replace(self, n_labeled=ANY)

    def display_order(self) -> tuple:
        """Sort key: corpus kind, encoder, mode, selection, 5 emotions before 4, target order, N_k."""
        t = TARGET_ORDER.index(self.target) if self.target in TARGET_ORDER else len(TARGET_ORDER)
        nk = -1.0 if self.n_labeled == ANY else n_labeled_order(self.n_labeled)
        return (self.synthetic, self.encoder, self.mode, self.selection, -self.emotions, t, self.target, nk)


#: The setting's fields, in order: the columns of the tidy frame that define a setting.
SETTING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Setting))


def setting_key(rec: RunRecord) -> Setting:
    """The setting a run belongs to."""
    t = rec.task
    return Setting(
        synthetic=rec.synthetic,
        encoder=encoder_label(rec),
        mode=t.mode,
        selection=t.selection,
        emotions=len(t.emotions),
        target=t.target,
        n_labeled=t.n_labeled,
    )


def system_key(rec: RunRecord) -> tuple[str, str, str]:
    """A system: method name, method version and config hash."""
    return (rec.method.name, rec.method.version, config_hash(rec.method.config))


def config_hash(config: Mapping[str, Any]) -> str:
    """A short hash of a method config (canonical JSON), stable across runs and machines."""
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def value_text(v: Any) -> str:
    """An option value as it reads in a label: ``true``, ``0.65``, ``none``, JSON for lists."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "none"
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"))


def config_labels(configs: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[tuple[str, str], str]:
    """Short labels for method configs, from the records alone: ``(method, config_hash) -> label``.

    A label names the options whose values differ between the configs of that method in this set
    of records (``pseudolabel mode=soft``); a method run with one config is just its name. The
    installed plugin is not consulted, so the label depends only on the records.
    """
    by_method: dict[str, dict[str, Mapping[str, Any]]] = {}
    for method, cfg in configs:
        by_method.setdefault(method, {})[config_hash(cfg)] = cfg
    out: dict[tuple[str, str], str] = {}
    for method, cfgs in by_method.items():
        keys: list[str] = []
        for cfg in cfgs.values():
            keys.extend(k for k in cfg if k not in keys)
        varying = [
            k for k in keys if len({json.dumps(c.get(k, None), sort_keys=True) for c in cfgs.values()}) > 1
            or any(k not in c for c in cfgs.values())
        ]
        for h, cfg in cfgs.items():
            parts = [f"{k}={value_text(cfg[k]) if k in cfg else '-'}" for k in varying]
            out[(method, h)] = " ".join([method, *parts])
    return out


def encoder_label(rec: RunRecord) -> str:
    """Encoder name, with its options where it has any (``hubert(layer=9)``)."""
    opts = rec.encoder.options
    if not opts:
        return rec.encoder.name
    return f"{rec.encoder.name}({','.join(f'{k}={value_text(v)}' for k, v in sorted(opts.items()))})"


def split_prefix(hashes: Mapping[str, str], n: int = 8) -> str:
    """``corpus:hash-prefix`` of each split file a run used, joined by ``+``."""
    return "+".join(f"{c}:{h[:n]}" for c, h in sorted(hashes.items()))


def n_labeled_order(value: Any) -> float:
    """Sort key of N_k: numbers in order, "all" last."""
    return float("inf") if value == "all" else float(value)
