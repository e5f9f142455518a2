"""Run records -> a tidy table (one row per run) and its summary over seeds.

This is the first step after the records in the one-way data flow (DESIGN.md): it reads records
and never writes, trains or imports a method. Everything the leaderboard, the reproduction
tables and the plots print starts from :func:`records_frame` or from the records themselves.

A *setting* is what makes runs comparable (corpus kind, encoder, mode, selection policy, emotion
set, target, N_k); a *system* is one method configuration (method, version, config hash). Each
system in a setting should have the same three or more seeds; :func:`summarize` flags it when not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from xlbench.errors import DataError
from xlbench.records import CorruptRecord, RunRecord, iter_records
from xlbench.stats import mean_std_over_seeds

#: Columns that define a setting; runs that differ in any of them are never compared.
SETTING_KEYS: tuple[str, ...] = ("synthetic", "encoder", "mode", "selection", "emotions", "target", "n_labeled")
#: Columns that define a system (one row of a leaderboard table).
SYSTEM_KEYS: tuple[str, ...] = ("method", "method_version", "config_hash")
MIN_SEEDS = 3
METRIC_COLUMNS: tuple[str, ...] = ("target_ua", "target_wa", "target_f1", "source_ua", "source_wa", "source_f1")
TARGET_ORDER: tuple[str, ...] = ("french", "german", "italian", "persian")

Loaded = tuple[Path, RunRecord]


def load_records(root: Path) -> tuple[list[Loaded], list[CorruptRecord]]:
    """Every record under ``root`` (``<method>/<run_id>.json``), and the unreadable ones apart."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no records folder {root}")
    good: list[Loaded] = []
    bad: list[CorruptRecord] = []
    for path, rec in iter_records(root):
        if isinstance(rec, CorruptRecord):
            bad.append(rec)
        else:
            good.append((path, rec))
    return good, bad


def config_hash(config: Mapping[str, Any]) -> str:
    """A short hash of a method config (canonical JSON), stable across runs and machines."""
    canonical = json.dumps(dict(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _value_text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "none"
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"))


_MISSING = object()


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
            parts = [f"{k}={_value_text(cfg[k]) if k in cfg else '-'}" for k in varying]
            out[(method, h)] = " ".join([method, *parts])
    return out


def encoder_label(rec: RunRecord) -> str:
    """Encoder name, with its options where it has any (``hubert(layer=9)``)."""
    opts = rec.encoder.options
    if not opts:
        return rec.encoder.name
    return f"{rec.encoder.name}({','.join(f'{k}={_value_text(v)}' for k, v in sorted(opts.items()))})"


def split_prefix(hashes: Mapping[str, str], n: int = 8) -> str:
    """``corpus:hash-prefix`` of each split file a run used, joined by ``+``."""
    return "+".join(f"{c}:{h[:n]}" for c, h in sorted(hashes.items()))


def n_labeled_order(value: Any) -> float:
    """Sort key of N_k: numbers in order, "all" last."""
    return float("inf") if value == "all" else float(value)


def records_frame(records: Sequence[Loaded]) -> pd.DataFrame:
    """One row per run: identity, setting, metrics (proportions, not percent) and provenance."""
    labels = config_labels((rec.method.name, rec.method.config) for _, rec in records)
    rows = []
    for path, rec in records:
        t, m = rec.task, rec.metrics
        h = config_hash(rec.method.config)
        rows.append(
            {
                "method": rec.method.name,
                "method_version": rec.method.version,
                "distribution": rec.method.distribution,
                "distribution_version": rec.method.distribution_version,
                "config_hash": h,
                "config_label": labels[(rec.method.name, h)],
                "config": json.dumps(rec.method.config, sort_keys=True, separators=(",", ":")),
                "encoder": encoder_label(rec),
                "mode": t.mode,
                "selection": t.selection,
                "synthetic": rec.synthetic,
                "target": t.target,
                "n_labeled": t.n_labeled,
                "emotions": len(t.emotions),
                "seed": t.seed,
                "target_ua": m["target"].ua,
                "target_wa": m["target"].wa,
                "target_f1": m["target"].macro_f1,
                "source_ua": m["source"].ua,
                "source_wa": m["source"].wa,
                "source_f1": m["source"].macro_f1,
                "n_target_test": m["target"].n,
                "target_split": split_prefix(rec.target_data.split_hashes),
                "source_split": split_prefix(rec.source_data.split_hashes),
                "run_id": rec.run_id,
                "path": str(path),
            }
        )
    columns = [
        "method", "method_version", "distribution", "distribution_version", "config_hash", "config_label",
        "config", "encoder", "mode", "selection", "synthetic", "target", "n_labeled", "emotions", "seed",
        *METRIC_COLUMNS, "n_target_test", "target_split", "source_split", "run_id", "path",
    ]
    df = pd.DataFrame(rows, columns=columns)
    if len(df):
        df = df.sort_values(
            ["synthetic", "encoder", "mode", "selection", "emotions", "target", "n_labeled", "config_label", "seed"],
            key=lambda s: s.map(n_labeled_order) if s.name == "n_labeled" else s,
            ascending=[True, True, True, True, False, True, True, True, True],
        ).reset_index(drop=True)
    return df


def seed_flag(seeds: Sequence[int], others_differ: bool) -> str:
    """The warning printed beside a system's seeds: too few, or not the same as its rivals'."""
    notes = []
    if len(seeds) < MIN_SEEDS:
        notes.append(f"only {len(seeds)} seed{'s' if len(seeds) != 1 else ''}")
    if others_differ:
        notes.append("seed set differs from other methods in this setting")
    return "; ".join(notes)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sample std over seeds per (setting, system), with missing-seed flags.

    ``few_seeds``: fewer than three seeds. ``seeds_differ``: the systems of one setting were not
    all run with the same seeds (their paired comparison then uses the common seeds only).
    """
    if df.empty:
        raise DataError("no run records to summarize")
    keys = [*SETTING_KEYS, *SYSTEM_KEYS]
    out = []
    for key, g in df.groupby(keys, sort=False, dropna=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["config_label"] = g["config_label"].iloc[0]
        row["distribution"] = g["distribution"].iloc[0]
        seeds = tuple(sorted(int(s) for s in g["seed"]))
        row["seeds"] = seeds
        row["n_seeds"] = len(seeds)
        for col in METRIC_COLUMNS:
            s = mean_std_over_seeds(g[col].astype(float))
            row[f"{col}_mean"] = s.mean
            row[f"{col}_std"] = s.std
            row[col] = s.format()
        row["run_ids"] = tuple(g["run_id"])
        out.append(row)
    summary = pd.DataFrame(out)
    seed_sets = summary.groupby(list(SETTING_KEYS), sort=False, dropna=False)["seeds"].transform(
        lambda s: len(set(s)) > 1
    )
    summary["few_seeds"] = summary["n_seeds"] < MIN_SEEDS
    summary["seeds_differ"] = seed_sets.astype(bool)
    summary["flag"] = [
        seed_flag(s, d) for s, d in zip(summary["seeds"], summary["seeds_differ"], strict=True)
    ]
    return summary
