"""Run records -> a tidy pandas frame (one row per run) and its summary over seeds.

The second step of the report, after :mod:`xlbench.report.validate`: it reads records and never
writes, trains or imports a method. The leaderboard tables (:mod:`xlbench.report.tables`) take
their means and standard deviations over seeds from :func:`summarize`.

A *setting* is what makes runs comparable (:func:`xlbench.report.identity.setting_key`; its
fields are columns here); a *system* is one method configuration (method, version, config hash).
Each system in a setting should have the same three or more seeds; :func:`summarize` flags it when not.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd

from xlbench.errors import DataError
from xlbench.report.identity import (
    MIN_SEEDS,
    SETTING_FIELDS,
    config_hash,
    config_labels,
    n_labeled_order,
    setting_key,
    split_prefix,
)
from xlbench.report.validate import Loaded
from xlbench.stats import mean_std_over_seeds

#: Columns that define a setting; runs that differ in any of them are never compared.
SETTING_KEYS: tuple[str, ...] = SETTING_FIELDS
#: Columns that define a system (one row of a leaderboard table).
SYSTEM_KEYS: tuple[str, ...] = ("method", "method_version", "config_hash")
METRIC_COLUMNS: tuple[str, ...] = ("target_ua", "target_wa", "target_f1", "source_ua", "source_wa", "source_f1")


def records_frame(records: Sequence[Loaded]) -> pd.DataFrame:
    """One row per run: identity, setting, metrics (proportions, not percent) and provenance."""
    labels = config_labels((rec.method.name, rec.method.config) for _, rec in records)
    rows = []
    for path, rec in records:
        m = rec.metrics
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
                **asdict(setting_key(rec)),
                "seed": rec.task.seed,
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
        "config", *SETTING_KEYS, "seed", *METRIC_COLUMNS, "n_target_test", "target_split", "source_split",
        "run_id", "path",
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
