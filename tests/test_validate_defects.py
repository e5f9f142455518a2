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
from xlbench.records import SCHEMA_VERSION, DataIdentity, RunRecord, recompute_run_id
from xlbench.report.identity import setting_key
from xlbench.report.validate import load_records, sound_records, validate_records

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
def test_a_corpus_without_a_split_hash_is_caught_on_each_side(side: str, tmp_path: Path) -> None:
    """A record that names no split file for a corpus (its run id recomputed, so consistent) could
    have been split any way: refused like a foreign hash."""
    first, others = plant(tmp_path, set_path(f"{side}_data", "split_hashes", value={}), False)
    msgs, good = messages_for(tmp_path, first)
    assert msgs == [f"split hash: {side} corpus {corpus_of(side)} has no split hash in the record"]
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


# -- the exact lines a user reads ---------------------------------------------------------------
# A defect line is all a user gets: each case below pins the whole message list of the planted
# record, so a changed word, a lost separator or a check that stops early shows.


def config_hash_of(config: dict[str, Any]) -> str:
    """The 10-character config hash of a defect line, worked out here from its definition."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:10]


def shipped_hash(corpus: str) -> str:
    return hashlib.sha256(resources.files("xlbench.splits").joinpath(f"v1/{corpus}.json").read_bytes()).hexdigest()


def edit_predictions(side: str, index: int, **values: Any) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        d["predictions"][side][index].update(values)

    return edit


def both(*edits: Edit) -> Edit:
    def edit(d: dict[str, Any]) -> None:
        for e in edits:
            e(d)

    return edit


#: the source UA forged as well, so that a check that stops at the target side would lose its line
FORGED_SOURCE_UA = set_path("metrics", "source", "ua", value=0.5)
SOURCE_UA_LINE = "metrics: the source numbers disagree with the stored predictions: ua 0.5 (recomputed 1.0)"
OUTSIDE = "metrics: target prediction synth_it/spk0/c0-{k} has a class or probabilities outside the 5 emotions"
DIAGONAL = [[8 if i == j else 0 for j in range(5)] for i in range(5)]  # 8 right answers per class

#: case -> (edit, exact messages on the record); every record here keeps its run id (metrics and
#: predictions are not part of the identity)
METRIC_LINES: dict[str, tuple[Edit, list[str]]] = {
    "no target predictions": (both(lambda d: d["predictions"].pop("target"), FORGED_SOURCE_UA),
                              ["metrics: no target metrics or predictions", SOURCE_UA_LINE]),
    "no source metrics": (lambda d: d["metrics"].pop("source"), ["metrics: no source metrics or predictions"]),
    "true class one past the last": (both(edit_predictions("target", 0, true=5), FORGED_SOURCE_UA),
                                     [OUTSIDE.format(k=0) + " (1 such)", SOURCE_UA_LINE]),
    "predicted class one past the last": (edit_predictions("target", 0, pred=5), [OUTSIDE.format(k=0) + " (1 such)"]),
    "negative true class": (edit_predictions("target", 1, true=-1), [OUTSIDE.format(k=1) + " (1 such)"]),
    "four probabilities": (edit_predictions("target", 0, probs=[1.0, 0.0, 0.0, 0.0]),
                           [OUTSIDE.format(k=0) + " (1 such)"]),
    "two outside, the first named": (both(edit_predictions("target", 0, pred=7), edit_predictions("target", 1, true=9)),
                                     [OUTSIDE.format(k=0) + " (2 such)"]),
    "not the argmax, twice": (
        both(edit_predictions("source", 0, probs=[0.0, 1.0, 0.0, 0.0, 0.0]),
             edit_predictions("source", 1, probs=[0.2, 0.8, 0.0, 0.0, 0.0])),
        ["metrics: source prediction synth_en/spk0/c0-0 is not the argmax of its probabilities (2 such)"]),
    "a tie at the maximum is an argmax": (edit_predictions("source", 0, probs=[0.5, 0.5, 0.0, 0.0, 0.0]), []),
    "ua and wa forged": (both(set_path("metrics", "target", "ua", value=0.5), set_path("metrics", "target", "wa",
                                                                                         value=0.25)),
                         ["metrics: the target numbers disagree with the stored predictions: ua 0.5 (recomputed 1.0); "
                          "wa 0.25 (recomputed 1.0)"]),
    "n forged": (set_path("metrics", "target", "n", value=41),
                 ["metrics: the target numbers disagree with the stored predictions: n 41 (there are 40 predictions)"]),
    "an extra recall": (
        set_path("metrics", "target", "per_class_recall", "surprise", value=1.0),
        ["metrics: the target numbers disagree with the stored predictions: per_class_recall {'anger': 1.0, "
         "'fear': 1.0, 'happiness': 1.0, 'neutral': 1.0, 'sadness': 1.0, 'surprise': 1.0} (recomputed {'anger': 1.0, "
         "'fear': 1.0, 'happiness': 1.0, 'neutral': 1.0, 'sadness': 1.0})"]),
    "confusion forged": (
        set_path("metrics", "target", "confusion", value=[[7, 1, 0, 0, 0], *DIAGONAL[1:]]),
        ["metrics: the target numbers disagree with the stored predictions: confusion [[7, 1, 0, 0, 0], "
         f"{', '.join(map(str, DIAGONAL[1:]))}] (recomputed {DIAGONAL})"]),
}


@pytest.mark.parametrize("case", list(METRIC_LINES))
def test_metric_defects_read_exactly(case: str, tmp_path: Path) -> None:
    edit, expected = METRIC_LINES[case]
    first, others = plant(tmp_path, edit, True)
    msgs, good = messages_for(tmp_path, first)
    assert msgs == expected
    assert (first in good) == (expected == []) and set(others) <= good


EMOTIONS = ["anger", "fear", "happiness", "neutral", "sadness"]


def without_class(side: str, cls: int, recall: float) -> Edit:
    """Drop every ``side`` test utterance of class ``cls`` (all predictions stay right) and store the
    metrics as they then are, by hand: 32 of 32 right, an empty confusion row, ``recall`` for it."""

    def edit(d: dict[str, Any]) -> None:
        d["predictions"][side] = [p for p in d["predictions"][side] if p["true"] != cls]
        m = d["metrics"][side]
        m.update(n=32, ua=1.0, wa=1.0, macro_f1=1.0,
                 confusion=[row if i != cls else [0] * 5 for i, row in enumerate(DIAGONAL)])
        m["per_class_recall"][EMOTIONS[cls]] = recall

    return edit


def test_a_class_absent_from_a_test_set_has_no_recall(tmp_path: Path) -> None:
    """A class with no test utterance: its recall is NaN and UA averages the others; a number stored
    for it instead is refused."""
    first, _ = plant(tmp_path / "a", without_class("target", 4, float("nan")), True)
    msgs, good = messages_for(tmp_path / "a", first)
    assert msgs == [] and first in good
    first, _ = plant(tmp_path / "b", without_class("target", 4, 1.0), True)
    msgs, _ = messages_for(tmp_path / "b", first)
    assert msgs == ["metrics: the target numbers disagree with the stored predictions: per_class_recall {'anger': "
                    "1.0, 'fear': 1.0, 'happiness': 1.0, 'neutral': 1.0, 'sadness': 1.0} (recomputed {'anger': 1.0, "
                    "'fear': 1.0, 'happiness': 1.0, 'neutral': 1.0, 'sadness': nan})"]


@pytest.mark.parametrize("side", SIDES)
def test_every_bad_split_hash_of_a_side_is_named(side: str, tmp_path: Path) -> None:
    """An unknown corpus (sorted first) does not hide a foreign hash after it."""
    corpus = corpus_of(side)
    hashes = {"aaa": "0" * 64, corpus: "1" * 64}
    first, _ = plant(tmp_path, set_path(f"{side}_data", "split_hashes", value=hashes), False)
    msgs, _ = messages_for(tmp_path, first)
    assert msgs == [f"split hash: {side} corpus aaa: no split file v1 for corpus 'aaa'",
                    f"split hash: {side} corpus {corpus} was split by 111111111111…, the shipped split file v1 is "
                    f"{shipped_hash(corpus)[:12]}…"]


def test_sets_are_listed_comma_separated(tmp_path: Path) -> None:
    def two_of_each(d: dict[str, Any]) -> None:
        d["selection"]["sets"] = ["source_test", "target_test"]
        d["selection"]["scoring_calls"] = {"source_test": 1, "target_test": 1}
        d["sizes"].update(val_source_test=5, val_target_test=5)

    first, _ = plant(tmp_path, two_of_each, False)
    msgs, _ = messages_for(tmp_path, first)
    assert msgs == [
        "test-set selection: model selected on source_test, target_test",
        "test-set selection: a validation set is named like a test set (val_source_test, val_target_test)",
        "selection: scored source_test, target_test, which the paper policy does not allow",
    ]


def test_sets_scored_beyond_the_policy_are_all_named(tmp_path: Path) -> None:
    calls = {"source_val": 2, "target_val": 2, "target_labeled": 1, "target_test": 3}
    first, _ = plant(tmp_path, set_path("selection", "scoring_calls", value=calls), False)
    msgs, _ = messages_for(tmp_path, first)
    assert msgs == ["selection: scored target_labeled, target_test, which the paper policy does not allow",
                    "selection: the sets used for selection disagree with the scoring calls observed"]


@pytest.mark.parametrize("field", ["selection", "task", "sizes"])
@pytest.mark.parametrize("value", [None, "paper", ["source_val"]], ids=["missing", "text", "list"])
def test_a_part_that_is_not_an_object_is_one_schema_line(field: str, value: Any, tmp_path: Path) -> None:
    """The raw checks read inside these parts; one that is missing or not an object must still end
    in one schema line (pydantic's first two lines), not a crash."""
    edit = drop(field) if value is None else set_path(field, value=value)
    first, others = plant(tmp_path, edit, True)
    msgs, good = messages_for(tmp_path, first)
    assert msgs == [f"wrong schema: 1 validation error for RunRecord {field}"]
    assert first not in good and set(others) <= good


def test_a_wrong_schema_version_is_one_line(tmp_path: Path) -> None:
    """The version line replaces pydantic's, which would say the same thing less clearly."""
    first, _ = plant(tmp_path, set_path("schema_version", value=99), True)
    msgs, _ = messages_for(tmp_path, first)
    assert msgs == [f"wrong schema: schema_version 99, this xlbench reads {SCHEMA_VERSION}"]


def test_a_record_of_another_schema_is_one_line_not_also_pydantics(tmp_path: Path) -> None:
    """An older record fails the schema too (here: no metrics); its version says why, once."""
    first, _ = plant(tmp_path, both(set_path("schema_version", value=1), drop("metrics")), True)
    msgs, _ = messages_for(tmp_path, first)
    assert msgs == [f"wrong schema: schema_version 1, this xlbench reads {SCHEMA_VERSION}"]


def test_unreadable_json_names_the_parser_error(tmp_path: Path) -> None:
    plant(tmp_path, None, True)
    broken = tmp_path / "dann" / ("1" * 20 + ".json")
    broken.write_text("{}\n}")  # an object, then a stray brace on line 2
    _, defects = validate_records(tmp_path)
    assert [d.line() for d in defects] == [
        f"{broken}: wrong schema: not readable JSON (Extra data: line 2 column 1 (char 3))"]


# -- folder-level lines ------------------------------------------------------------------------


def test_too_few_seeds_lines_in_setting_order_with_the_source_named(tmp_path: Path) -> None:
    """Folders read a, b, c; the lines come in setting order (real before synthetic, then French
    before Italian), each naming its folder and the system in words; a source that is a subset of
    the language's corpora is named, the full source is not."""
    records = [
        *(make_record("a-method", "italian", seed=s, config=dict(BASE_CONFIG)) for s in (0, 1)),
        make_record("b-method", "french", seed=0, config=dict(BASE_CONFIG)),
        make_record("c-method", "italian", seed=0, config=dict(BASE_CONFIG), synthetic=False,
                    source_corpora=["ravdess"]),
    ]
    write(records, tmp_path)
    good, defects = validate_records(tmp_path)
    h = config_hash_of(BASE_CONFIG)
    tail = "N_k 0 · 5 emotions · logmel-stats (frozen) · selection paper"
    assert [(d.path, d.message) for d in defects] == [
        (str(tmp_path / "c-method"), f"fewer than 3 seeds: c-method v1 config {h} · source english (ravdess only) · "
                                     f"italian · {tail} has seed(s) 0"),
        (str(tmp_path / "b-method"), f"fewer than 3 seeds: b-method v1 config {h} · french · {tail} has seed(s) 0"),
        (str(tmp_path / "a-method"), f"fewer than 3 seeds: a-method v1 config {h} · italian · {tail} has seed(s) 0,1"),
    ]
    assert len(good) == 4


def variant_of(path: Path, edit: Edit) -> Path:
    """Another record next to ``path``: the same run with ``edit`` applied and its run id recomputed."""
    data = json.loads(path.read_text())
    edit(data)
    data["run_id"] = recompute_run_id(RunRecord.model_validate(data))
    out = path.with_name(f"{data['run_id']}.json")
    out.write_text(json.dumps(data))
    return out


def test_an_ambiguous_setting_after_a_sound_one_is_refused(tmp_path: Path) -> None:
    """A sound setting read first (French, folder a) does not end the search for settings that read
    alike (Italian, folder b)."""
    write([make_record("a-method", "french", seed=s) for s in (0, 1, 2)], tmp_path)
    paths = write([make_record("b-method", seed=s) for s in (0, 1, 2)], tmp_path)
    variant = variant_of(paths[0], set_path("encoder", "code_version", value="2"))
    good, defects = validate_records(tmp_path)
    ids = sorted(setting_key(RunRecord.model_validate_json(p.read_text())).encoder_id for p in (paths[0], variant))
    where = f"b-method v1 config {config_hash_of(BASE_CONFIG)} · italian · N_k 0 · 5 emotions · logmel-stats " \
            "(frozen) · selection paper"
    line = f"ambiguous setting: {where} exists with different encoder identity {ids[0]} vs {ids[1]}; they cannot " \
           "share a board"
    assert sorted((d.path, d.message) for d in defects) == sorted((str(p), line) for p in (*paths, variant))
    assert {p.parent.name for p, _ in good} == {"a-method"}


def real_english_source(d: dict[str, Any]) -> None:
    """The source read from the three real English corpora (with their shipped split files) while
    the target stays synthetic: the run still counts as synthetic and its heading reads as before."""
    corpora = ["ravdess", "savee", "tess"]
    d["source_data"].update(corpora=corpora, synthetic=False, split_hashes={c: shipped_hash(c) for c in corpora})


def test_settings_that_differ_only_in_split_files_are_all_refused(tmp_path: Path) -> None:
    """A synthetic-source and a real-source run on a synthetic target both read "english ->
    italian, synthetic": split files are not in a heading, so both settings are refused."""
    paths = write([make_record("dann", seed=s) for s in (0, 1)], tmp_path)
    variant = variant_of(paths[0], real_english_source)
    keys = [setting_key(RunRecord.model_validate_json(p.read_text())) for p in (paths[0], variant)]
    assert keys[0].shown() == keys[1].shown() and keys[0].encoder_id == keys[1].encoder_id
    splits = sorted(k.splits for k in keys)
    good, defects = validate_records(tmp_path)
    where = f"dann v1 config {config_hash_of(BASE_CONFIG)} · italian · N_k 0 · 5 emotions · logmel-stats (frozen) · " \
            "selection paper"
    line = f"ambiguous setting: {where} exists with different split files {splits[0]} vs {splits[1]}; they cannot " \
           "share a board"
    assert sorted((d.path, d.message) for d in defects) == sorted((str(p), line) for p in (*paths, variant))
    assert good == []


def test_settings_that_differ_in_split_files_and_encoder_name_both(tmp_path: Path) -> None:
    paths = write([make_record("dann", seed=s) for s in (0, 1)], tmp_path)
    variant = variant_of(paths[0], both(real_english_source, set_path("encoder", "code_version", value="2")))
    keys = [setting_key(RunRecord.model_validate_json(p.read_text())) for p in (paths[0], variant)]
    splits, ids = sorted(k.splits for k in keys), sorted(k.encoder_id for k in keys)
    _, defects = validate_records(tmp_path)
    assert {d.message.split(" exists with ")[1] for d in defects if d.message.startswith("ambiguous")} == {
        f"different split files {splits[0]} vs {splits[1]}; encoder identity {ids[0]} vs {ids[1]}; they cannot share "
        "a board"}
    assert len(defects) == 3


def test_load_records_keeps_unreadable_ones_apart(tmp_path: Path) -> None:
    first, others = plant(tmp_path, None, True)
    broken = tmp_path / "dann" / ("1" * 20 + ".json")
    broken.write_text("{")
    good, bad = load_records(tmp_path)
    assert [p for p, _ in good] == sorted([first, *others]) and all(isinstance(r, RunRecord) for _, r in good)
    assert len(bad) == 1 and str(broken) in str(bad[0])
    with pytest.raises(DataError, match=f"^no records folder {tmp_path / 'nope'}$"):
        load_records(tmp_path / "nope")
