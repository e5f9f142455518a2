"""xlbench.report.frame: the tidy one-row-per-run frame and the summary over seeds (and reading records)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.fake_records import BASE_CONFIG, make_record, table_scenario, write
from tests.report_utils import loaded
from xlbench.errors import DataError
from xlbench.report.frame import SETTING_KEYS, records_frame, summarize
from xlbench.report.identity import config_hash, config_labels
from xlbench.report.validate import load_records


def test_frame_has_one_row_per_run_with_identity_metrics_and_provenance() -> None:
    recs = table_scenario()
    df = records_frame(loaded(recs))
    assert len(df) == len(recs) == 15
    expected = {
        "method", "method_version", "config_hash", "config_label", "encoder", "mode", "target", "n_labeled",
        "emotions", "selection", "seed", "target_ua", "target_wa", "target_f1", "source_ua", "source_wa",
        "source_f1", "synthetic", "run_id", "path", "distribution", "target_split",
    }
    assert expected <= set(df.columns)
    by_id = {r.run_id: r for r in recs}
    for row in df.itertuples():
        rec = by_id[row.run_id]
        assert row.target_ua == rec.metrics["target"].ua and row.source_f1 == rec.metrics["source"].macro_f1
        assert row.seed == rec.task.seed and row.emotions == 5 and bool(row.synthetic) is True
        assert row.path.endswith(f"{rec.run_id}.json")
        assert row.target_split.startswith("synth_it:") and len(row.target_split.split(":")[1]) == 8
    assert set(df.loc[df.method == "multilingual", "n_labeled"]) == {"all"}


def test_config_labels_name_only_the_options_that_vary() -> None:
    hard = {**BASE_CONFIG, "mode": "hard", "tau": 0.5}
    soft = {**BASE_CONFIG, "mode": "soft", "tau": 0.5}
    tau = {**BASE_CONFIG, "mode": "hard", "tau": 0.65}
    labels = config_labels([("pseudolabel", hard), ("pseudolabel", soft), ("pseudolabel", tau),
                            ("crosslingual", BASE_CONFIG)])
    assert labels[("pseudolabel", config_hash(hard))] == "pseudolabel mode=hard tau=0.5"
    assert labels[("pseudolabel", config_hash(soft))] == "pseudolabel mode=soft tau=0.5"
    assert labels[("pseudolabel", config_hash(tau))] == "pseudolabel mode=hard tau=0.65"
    assert labels[("crosslingual", config_hash(BASE_CONFIG))] == "crosslingual"
    # The hash is canonical: key order does not matter.
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1}) and len(config_hash({})) == 10


def test_summary_is_mean_and_sample_std_over_seeds() -> None:
    recs = table_scenario()
    summary = summarize(records_frame(loaded(recs)))
    assert len(summary) == 5  # five systems, each with its 3 seeds
    for row in summary.itertuples():
        uas = [r.metrics["target"].ua for r in recs if r.method.name == row.method
               and config_hash(r.method.config) == row.config_hash]
        assert row.n_seeds == 3 and row.seeds == (0, 1, 2)
        assert row.target_ua_mean == pytest.approx(np.mean(uas))
        assert row.target_ua_std == pytest.approx(np.std(uas, ddof=1))
        assert row.target_ua == f"{100 * np.mean(uas):.2f} ± {100 * np.std(uas, ddof=1):.2f}"
        assert not row.few_seeds and not row.seeds_differ and row.flag == ""


def test_missing_and_mismatched_seeds_are_flagged() -> None:
    recs = [make_record("crosslingual", seed=s) for s in (0, 1, 2)]
    recs += [make_record("dann", seed=s, config={**BASE_CONFIG, "x": 1}) for s in (0, 1)]
    recs += [make_record("nnpm", seed=s, config={**BASE_CONFIG, "y": 1}) for s in (0, 1, 5)]
    summary = summarize(records_frame(loaded(recs))).set_index("method")
    assert summary.loc["dann", "few_seeds"] and summary.loc["dann", "n_seeds"] == 2
    assert "only 2 seeds" in summary.loc["dann", "flag"]
    assert summary.loc["dann", "target_ua"].endswith("± 0.00")
    # seed sets differ between methods in this setting: every system of it is flagged
    assert summary["seeds_differ"].all()
    assert "seed set differs" in summary.loc["nnpm", "flag"] and not summary.loc["nnpm", "few_seeds"]
    one = summarize(records_frame(loaded([make_record("crosslingual", seed=0)])))
    assert one.loc[0, "target_ua"].endswith("(1 seed)")


def test_settings_are_kept_apart() -> None:
    recs = [make_record("crosslingual", seed=s) for s in (0, 1, 2)]
    recs += [make_record("crosslingual", seed=s, emotions=4) for s in (0, 1, 2)]
    recs += [make_record("crosslingual", seed=s, target="german") for s in (0, 1, 2)]
    summary = summarize(records_frame(loaded(recs)))
    assert len(summary) == 3
    assert len(summary.drop_duplicates(list(SETTING_KEYS))) == 3


def test_load_records_reads_compact_json_and_reports_corrupt_ones(tmp_path: Path) -> None:
    recs = table_scenario()[:3]
    paths = write(recs, tmp_path)
    assert "\n " not in paths[0].read_text()  # compact: no indentation
    bad = tmp_path / "crosslingual" / "0000.json"
    bad.write_text("{not json")
    good, corrupt = load_records(tmp_path)
    assert len(good) == 3 and len(corrupt) == 1
    assert json.loads(paths[0].read_text())["run_id"] == recs[0].run_id
    with pytest.raises(DataError, match="no records folder"):
        load_records(tmp_path / "missing")
    with pytest.raises(DataError, match="no run records"):
        summarize(records_frame([]))
