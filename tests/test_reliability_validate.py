"""Issue 13, point 3: `xlbench leaderboard validate` recomputes every metric of a record from its
stored per-utterance predictions and refuses a record whose numbers disagree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.data.fake_records import make_record, write
from xlbench.cli import main
from xlbench.records import Metrics

#: the documented tolerance of a recomputed float metric (docs/reliability.md)
METRIC_TOLERANCE = 1e-9


def _edit_first_recall(m: dict) -> None:
    first = next(iter(m["per_class_recall"]))
    m["per_class_recall"][first] = 1.0 - m["per_class_recall"][first] / 2


def _move_one_count(m: dict) -> None:
    """Move one utterance from the first cell of row 0 that holds one to the next column (n unchanged)."""
    row = m["confusion"][0]
    j = next(j for j, v in enumerate(row) if v > 0)
    row[j] -= 1
    row[(j + 1) % len(row)] += 1


#: one plausible forgery per metric field (a new field in Metrics fails the coverage test below)
EDITS = {
    "n": lambda m: m.update(n=m["n"] + 1),
    "ua": lambda m: m.update(ua=m["ua"] - 0.01),
    "wa": lambda m: m.update(wa=m["wa"] - 0.01),
    "macro_f1": lambda m: m.update(macro_f1=m["macro_f1"] - 0.01),
    "per_class_recall": _edit_first_recall,
    "confusion": _move_one_count,
}


def test_every_metric_field_has_a_forgery() -> None:
    assert set(EDITS) == set(Metrics.model_fields)


def _records(tmp_path: Path) -> list[Path]:
    # predictions with errors, so that every metric is away from 0 and 1
    truth = [p.true for p in make_record("crosslingual", seed=0).predictions["target"]]
    preds = [t if i % 3 else (t + 1) % 5 for i, t in enumerate(truth)]
    return write([make_record("crosslingual", seed=s, target_pred=preds) for s in (0, 1, 2)], tmp_path / "records")


def validate(root: Path):
    return CliRunner().invoke(main, ["leaderboard", "validate", "--records", str(root)])


def test_untouched_records_validate(tmp_path: Path) -> None:
    paths = _records(tmp_path)
    res = validate(paths[0].parents[1])
    assert res.exit_code == 0 and "3 record(s)" in res.output, res.output


@pytest.mark.parametrize("side", ["target", "source"])
@pytest.mark.parametrize("field", list(Metrics.model_fields))
def test_an_edited_metric_is_refused(tmp_path: Path, field: str, side: str) -> None:
    paths = _records(tmp_path)
    data = json.loads(paths[1].read_text())
    EDITS[field](data["metrics"][side])
    paths[1].write_text(json.dumps(data))  # the run id hashes the setting, not the numbers: it still matches
    res = validate(paths[1].parents[1])
    assert res.exit_code == 2, res.output
    defects = [ln for ln in res.output.splitlines() if ln.startswith(f"{paths[1]}:")]
    assert len(defects) == 1, res.output  # one line for the side, naming the field
    assert defects[0].startswith(f"{paths[1]}: metrics: the {side} numbers disagree")
    assert f" {field} " in defects[0] or f": {field} " in defects[0], defects[0]


def test_rounding_is_tolerated_but_not_more(tmp_path: Path) -> None:
    paths = _records(tmp_path)
    data = json.loads(paths[0].read_text())
    data["metrics"]["target"]["ua"] += METRIC_TOLERANCE / 10
    paths[0].write_text(json.dumps(data))
    assert validate(paths[0].parents[1]).exit_code == 0
    data["metrics"]["target"]["ua"] += METRIC_TOLERANCE * 10
    paths[0].write_text(json.dumps(data))
    assert validate(paths[0].parents[1]).exit_code == 2


def test_a_prediction_that_is_not_the_argmax_of_its_probabilities_is_refused(tmp_path: Path) -> None:
    paths = _records(tmp_path)
    data = json.loads(paths[2].read_text())
    p = data["predictions"]["source"][0]
    p["probs"] = [0.0] * len(p["probs"])
    p["probs"][(p["pred"] + 1) % len(p["probs"])] = 1.0
    paths[2].write_text(json.dumps(data))
    res = validate(paths[2].parents[1])
    assert res.exit_code == 2 and "is not the argmax of its probabilities" in res.output, res.output


@pytest.mark.slow
def test_a_real_run_record_validates_and_its_edited_ua_does_not(synthetic_home, tmp_path: Path, no_mlflow) -> None:
    """The recomputation agrees with the runner's own scoring on a record it wrote."""
    results = tmp_path / "results"
    cli = CliRunner()
    res = cli.invoke(main, ["run", "--method", "crosslingual", "--target", "italian", "--seeds", "0,1,2", "--no-bounds",
                            "--encoder", "logmel-stats", "--set", "epochs=2", "--results", str(results)])
    assert res.exit_code == 0, res.output
    res = validate(results)
    assert res.exit_code == 0 and "3 record(s)" in res.output, res.output
    path = sorted(results.glob("crosslingual/*.json"))[0]
    data = json.loads(path.read_text())
    data["metrics"]["target"]["ua"] = min(1.0, data["metrics"]["target"]["ua"] + 0.05)
    path.write_text(json.dumps(data))
    res = validate(results)
    assert res.exit_code == 2 and "metrics: the target numbers disagree" in res.output, res.output
