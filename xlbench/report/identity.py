"""What makes runs comparable (their *setting*) and what a *system* is, read from a record alone.

A leaderboard row is one system in one setting; records that differ in any field of
:class:`Setting` (source corpora and their split files, target, emotion set, encoder with its
options, revision and identity, frozen or fine-tuned, selection policy, N_k) never share a row
and are never compared. :func:`setting_key` is the one place
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

from xlbench.protocol import TARGET_LANGUAGES, data_label
from xlbench.records import RunRecord

#: A comparison needs this many seeds per system and setting (fewer is flagged, and `validate` refuses it).
MIN_SEEDS = 3
#: Display order of the targets.
TARGET_ORDER: tuple[str, ...] = TARGET_LANGUAGES
#: Stands for "any N_k" in :meth:`Setting.any_n_labeled`.
ANY = "*"


@dataclass(frozen=True)
class Setting:
    """Everything two runs must share to be compared (DESIGN.md, "Settings").

    The last three fields are kept apart without being printed in every heading: a board on
    which two settings differ only there is refused by ``validate`` (they would read alike).
    """

    synthetic: bool  # the generated corpus, or real corpora
    source: str  # the source data: "english", or "english (ravdess only)" for a named subset
    encoder: str  # encoder name with its options, see :func:`encoder_label`
    mode: str  # "frozen" or "finetune"
    selection: str  # model-selection policy: "paper" or "strict"
    emotions: int  # size of the emotion set (5, or 4 without fear; validate checks the set itself)
    target: str
    n_labeled: int | str  # N_k; "all" for the upper bound
    encoder_version: str = ""  # the weights' revision (or hash) where the encoder has weights
    splits: str = ""  # the split files of the source and target corpora, by hash prefix
    encoder_id: str = ""  # a hash of the encoder's whole identity (code version, pooling, ...)

    def any_n_labeled(self) -> Setting:
        """The same setting with N_k left open. The bounds run at their own N_k (0 and "all") and
        are the references of every N_k of an otherwise equal setting."""
        return replace(self, n_labeled=ANY)

    def shown(self) -> Setting:
        """The setting as a heading shows it (without the split and encoder-identity hashes)."""
        return replace(self, splits="", encoder_id="")

    @property
    def encoder_text(self) -> str:
        """``hubert@a1b2c3d`` where weights have a revision, else the encoder label."""
        return f"{self.encoder}@{self.encoder_version}" if self.encoder_version else self.encoder

    def display_order(self) -> tuple:
        """Sort key: corpus kind, source, encoder, mode, selection, 5 emotions before 4, target order, N_k."""
        t = TARGET_ORDER.index(self.target) if self.target in TARGET_ORDER else len(TARGET_ORDER)
        nk = -1.0 if self.n_labeled == ANY else n_labeled_order(self.n_labeled)
        return (self.synthetic, self.source, self.encoder_text, self.mode, self.selection, -self.emotions, t,
                self.target, nk, self.splits, self.encoder_id)


#: The setting's fields, in order: the columns of the tidy frame that define a setting.
SETTING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Setting))


def setting_key(rec: RunRecord) -> Setting:
    """The setting a run belongs to."""
    t = rec.task
    src = rec.source_data
    return Setting(
        synthetic=rec.synthetic,
        source=data_label(src.language, src.corpora, src.synthetic),
        encoder=encoder_label(rec),
        mode=t.mode,
        selection=t.selection,
        emotions=len(t.emotions),
        target=t.target,
        n_labeled=t.n_labeled,
        encoder_version=encoder_version(rec),
        splits=f"{split_prefix(src.split_hashes)}|{split_prefix(rec.target_data.split_hashes)}",
        encoder_id=hashlib.sha256(
            json.dumps(rec.encoder.model_dump(exclude={"params", "pretraining", "contamination"}), sort_keys=True,
                       default=str).encode()
        ).hexdigest()[:10],
    )


def encoder_version(rec: RunRecord) -> str:
    """The revision of the encoder's weights (7 characters), else the start of their hash; '' for
    parameter-free encoders."""
    if rec.encoder.revision:
        return rec.encoder.revision[:7]
    return rec.encoder.weights_sha[:8] if rec.encoder.weights_sha else ""


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
