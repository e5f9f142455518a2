"""``validate_records`` over every defect it names, the side-specific ones on both sides.

Each case writes three sound records (seeds 0-2), plants one defect in the first, and expects the
defect's line on that record and nothing wrong with the other two. The data-identity cases are
generated from DataIdentity's fields, so a new field is checked on both sides automatically.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.data.fake_records import BASE_CONFIG, make_record, write
from xlbench.errors import DataError
from xlbench.records import DataIdentity, RunRecord, recompute_run_id
from xlbench.report.validate import sound_records, validate_records

Edit = Callable[[dict[str, Any]], None]
SIDES = ("source", "target")


def plant(root: Path, edit: Edit | None, keep_id: bool) -> tuple[Path, list[Path]]:
    """Three sound records; ``edit`` applied to the first (its run id recomputed unless keep_id)."""
    paths = write([make_record("dann", seed=s, config=dict(BASE_CONFIG)) for s in (0, 1, 2)], root)
    first = paths[0]
    if edit is not None:
        data = json.loads(first.read_text())
        edit(data)
        if not keep_id:
            data["run_id"] = recompute_run_id(RunRecord.model_validate(data))
            first.unlink()
            first = first.with_name(f"{data['run_id']}.json")
        first.write_text(json.dumps(data))
    return first, paths[1:]


def messages_for(root: Path, path: Path) -> tuple[list[str], set[Path]]:
    good, defects = validate_records(root)
    return [d.message for d in defects if d.path == str(path)], {p for p, _ in good}


def test_sound_records_have_no_defect(tmp_path: Path) -> None:
    first, others = plant(tmp_path, None, True)
    good, defects = validate_records(tmp_path)
    assert defects == [] and {p for p, _ in good} == {first, *others}


def set_path(*keys: str, value: Any) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return edit


def drop(key: str) -> Edit:
    return lambda d: d.pop(key)


#: defect -> (edit, keep the recorded run id, the message prefixes expected on the record)
DEFECTS: dict[str, tuple[Edit, bool, list[str]]] = {
    "schema version": (set_path("schema_version", value=99), True, ["wrong schema: schema_version 99"]),
    "missing field": (drop("metrics"), True, ["wrong schema: "]),
    "selection policy test": (set_path("selection", "policy", value="test"), True,
                              ["test-set selection: selection policy 'test'"]),
    "task selection test": (set_path("task", "selection", value="test"), True,
                            ["test-set selection: task selection 'test'"]),
    "selected on a test set": (set_path("selection", "sets", value=["source_val", "target_test"]), False,
                               ["test-set selection: model selected on target_test"]),
    "validation named like test": (set_path("sizes", "val_target_test", value=10), False,
                                   ["test-set selection: a validation set is named like a test set"]),
    "tampered config": (set_path("method", "config", "lr", value=0.5), True, ["tampered run id: "]),
    "tampered seed": (set_path("task", "seed", value=7), True, ["tampered run id: "]),
    "tampered encoder option": (set_path("encoder", "options", value={"layer": 12}), True, ["tampered run id: "]),
    "failed audit": (set_path("audit", "verdict", value="fail"), False, ["no passing audit: "]),
    "skipped audit": (set_path("audit", "verdict", value="skipped"), False, ["no passing audit: "]),
    "in-process": (set_path("isolation", value="in-process"), False, ["not isolated: "]),
    "scored a set the policy forbids": (
        set_path("selection", "scoring_calls", value={"source_val": 2, "target_val": 2, "target_labeled": 1}),
        False, ["selection: scored target_labeled, which the paper policy does not allow"]),
    "sets unlike calls": (set_path("selection", "scoring_calls", value={"source_val": 2, "target_val": 0}), False,
                          ["selection: the sets used for selection disagree with the scoring calls observed"]),
    "unknown emotion set": (set_path("task", "emotions", value=["anger", "fear"]), False, ["emotions: "]),
}


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_each_defect_is_named_on_its_record(defect: str, tmp_path: Path) -> None:
    edit, keep_id, expected = DEFECTS[defect]
    first, others = plant(tmp_path, edit, keep_id)
    msgs, good = messages_for(tmp_path, first)
    for prefix in expected:
        assert any(m.startswith(prefix) for m in msgs), (prefix, msgs)
    assert first not in good and set(others) <= good
    with pytest.raises(DataError, match=r"defect\(s\) in the records"):
        sound_records(tmp_path)


def test_a_misfiled_record_is_named(tmp_path: Path) -> None:
    first, _ = plant(tmp_path, None, True)
    moved = tmp_path / "crosslingual" / first.name
    moved.parent.mkdir()
    shutil.move(first, moved)
    msgs, good = messages_for(tmp_path, moved)
    assert msgs == [f"misfiled: expected dann/{first.stem}.json"] and moved not in good
    renamed = first.with_name("0" * 20 + ".json")
    shutil.move(moved, renamed)
    msgs, _ = messages_for(tmp_path, renamed)
    assert msgs == [f"misfiled: expected dann/{first.stem}.json"]


# -- the two sides ------------------------------------------------------------------------------

DATA_FIELDS = list(DataIdentity.model_fields)
TAMPERED = {
    "language": "klingon", "corpora": ["other"], "synthetic": False, "manifest_sha": "e" * 20,
    "split_hashes": {},
}


def test_every_data_field_has_a_tampered_value() -> None:
    assert set(TAMPERED) == set(DATA_FIELDS)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("field", DATA_FIELDS)
def test_tampered_data_identity_is_caught_on_each_side(side: str, field: str, tmp_path: Path) -> None:
    first, others = plant(tmp_path, set_path(f"{side}_data", field, value=TAMPERED[field]), True)
    msgs, good = messages_for(tmp_path, first)
    assert any(m.startswith("tampered run id: ") for m in msgs), msgs
    assert first not in good and set(others) <= good


def corpus_of(side: str) -> str:
    return "synth_en" if side == "source" else "synth_it"


@pytest.mark.parametrize("side", SIDES)
def test_a_foreign_split_hash_is_caught_on_each_side(side: str, tmp_path: Path) -> None:
    corpus = corpus_of(side)
    first, others = plant(tmp_path, set_path(f"{side}_data", "split_hashes", corpus, value="0" * 64), False)
    shipped = hashlib.sha256(resources.files("xlbench.splits").joinpath(f"v1/{corpus}.json").read_bytes())
    msgs, good = messages_for(tmp_path, first)
    assert msgs == [f"split hash: {side} corpus {corpus} was split by 000000000000…, the shipped split file "
                    f"v1 is {shipped.hexdigest()[:12]}…"]
    assert first not in good and set(others) <= good


@pytest.mark.parametrize("side", SIDES)
def test_a_split_hash_of_an_unknown_corpus_is_caught_on_each_side(side: str, tmp_path: Path) -> None:
    first, others = plant(tmp_path, set_path(f"{side}_data", "split_hashes", "nope", value="0" * 64), False)
    msgs, good = messages_for(tmp_path, first)
    assert msgs == [f"split hash: {side} corpus nope: no split file v1 for corpus 'nope'"]
    assert first not in good and set(others) <= good


@pytest.mark.parametrize("side", SIDES)
def test_a_split_file_version_unknown_is_caught_on_each_side(side: str, tmp_path: Path) -> None:
    """splits_version 9: every corpus of both sides is named (the other side's too)."""
    first, _ = plant(tmp_path, set_path("splits_version", value="9"), False)
    msgs, _ = messages_for(tmp_path, first)
    assert f"split hash: {side} corpus {corpus_of(side)}: no split file v9 for corpus '{corpus_of(side)}'" in msgs


# -- folder-level defects ---------------------------------------------------------------------


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    plant(tmp_path, None, True)
    broken = tmp_path / "dann" / ("1" * 20 + ".json")
    broken.write_text("{")
    listed = tmp_path / "dann" / ("2" * 20 + ".json")
    listed.write_text("[]")
    _, defects = validate_records(tmp_path)
    by_path = {d.path: d.message for d in defects}
    assert by_path[str(broken)].startswith("wrong schema: not readable JSON (")
    assert by_path[str(listed)] == "wrong schema: not a JSON object"
    assert len(defects) == 2


def test_duplicate_and_missing_seeds_are_named_once_per_system(tmp_path: Path) -> None:
    first, _ = plant(tmp_path, None, True)
    data = json.loads(first.read_text())
    data["target_data"]["manifest_sha"] = "d" * 20  # the same setting, system and seed, another run
    data["run_id"] = recompute_run_id(RunRecord.model_validate(data))
    (first.parent / f"{data['run_id']}.json").write_text(json.dumps(data))
    good, defects = validate_records(tmp_path)
    assert len(good) == 4
    assert [d.message.split(":")[0] for d in defects] == ["duplicate seeds"]
    assert defects[0].message.endswith("has 1 extra record(s)") and defects[0].path == str(first.parent)
    good, defects = validate_records(tmp_path, min_seeds=4)
    assert [d.message.split(":")[0] for d in defects] == ["fewer than 4 seeds", "duplicate seeds"]
    assert "seed(s) 0,1,2" in defects[0].message


def test_a_single_seed_is_sound_for_a_report_but_not_for_validate(tmp_path: Path) -> None:
    paths = write([make_record("dann", seed=0)], tmp_path)
    assert [p for p, _ in sound_records(tmp_path)] == paths
    _, defects = validate_records(tmp_path)
    assert len(defects) == 1 and defects[0].message.startswith("fewer than 3 seeds: dann v1")


def test_missing_and_empty_folders_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"^no records folder {tmp_path / 'nope'}$"):
        validate_records(tmp_path / "nope")
    with pytest.raises(DataError, match=r"^no run records under .* \(expected <method>/<run_id>.json\)$"):
        validate_records(tmp_path)


def test_settings_that_read_alike_but_differ_in_the_encoder_are_all_refused(tmp_path: Path) -> None:
    paths = write([make_record("dann", seed=s) for s in (0, 1, 2)], tmp_path)
    data = json.loads(paths[0].read_text())
    data["encoder"]["code_version"] = "2"  # another encoder identity; the board would show both alike
    data["run_id"] = recompute_run_id(RunRecord.model_validate(data))
    variant = paths[0].with_name(f"{data['run_id']}.json")
    variant.write_text(json.dumps(data))
    good, defects = validate_records(tmp_path)
    ambiguous = [d for d in defects if d.message.startswith("ambiguous setting: ")]
    assert {d.path for d in ambiguous} == {str(p) for p in (*paths, variant)} and len(ambiguous) == 4
    assert all("with different encoder identity " in d.message and d.message.endswith("cannot share a board")
               for d in ambiguous)
    assert all("split files" not in d.message for d in ambiguous)
    assert good == []


def test_an_audit_detail_is_quoted_and_strict_policy_sets_pass(tmp_path: Path) -> None:
    def failed_with_detail(d: dict[str, Any]) -> None:
        d["audit"].update(verdict="fail", detail="predictions moved")

    first, _ = plant(tmp_path / "a", failed_with_detail, False)
    msgs, _ = messages_for(tmp_path / "a", first)
    assert "no passing audit: the hidden-label audit of dann says fail (predictions moved)" in msgs
    first, _ = plant(tmp_path / "b", set_path("audit", "verdict", value="error"), False)
    msgs, _ = messages_for(tmp_path / "b", first)
    assert "no passing audit: the hidden-label audit of dann says error" in msgs
    strict = tmp_path / "c"
    write([make_record("dann", seed=s, selection="strict") for s in (0, 1, 2)], strict)
    assert validate_records(strict)[1] == []


def test_a_set_scored_once_counts_as_used(tmp_path: Path) -> None:
    first, _ = plant(tmp_path, set_path("selection", "scoring_calls", value={"source_val": 1, "target_val": 1}),
                     False)
    msgs, good = messages_for(tmp_path, first)
    assert msgs == [] and first in good
