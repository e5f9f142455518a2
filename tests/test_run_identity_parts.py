"""The runner's identity functions (``run_identity`` and its parts) on hand-made inputs.

No corpus is generated: a ``Prepared`` is built from fake manifest rows, a real registered method
class and an encoder that reports a fixed ``EncoderInfo``, so each case takes milliseconds (fast
enough to run per mutant under mutmut). Every field of ``Prepared``, of ``LanguageData`` and of a
manifest row (``Utterance``) either changes the run id or is listed with the reason it may not;
the cases come from the field lists, so a new field fails a test until it is classified.
tests/test_runner_identity.py checks the same from a ``RunRequest`` on the generated corpus.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata as md
import random
from typing import Any

import pytest
import torch

from tests.encoder_utils import FixedInfo
from tests.method_utils import fake_utterance
from xlbench.encoders.base import EncoderInfo
from xlbench.fitting import Prepared
from xlbench.languages import LanguageData
from xlbench.manifest import Utterance
from xlbench.method import get_method
from xlbench.protocol import EMOTIONS_4, EMOTIONS_5, Emotion
from xlbench.records import DataIdentity, MethodIdentity, TaskIdentity, compute_run_id, identity_payload
from xlbench.runner import RunRequest, data_identity, manifest_sha, method_identity, run_identity, task_identity
from xlbench.splits import SPLITS
from xlbench.tasks import ALL_LABELS

INFO = EncoderInfo(name="fixed", weights_sha="a" * 64, dim=8, frame_dim=8, frame_rate=50.0, params=10,
                   pretrained=True, options={"layer": 9})


def language_data(lang: str, corpus: str, per_class: int = 2) -> LanguageData:
    parts = {s: [fake_utterance(lang, s, e, i) for e in EMOTIONS_5 for i in range(per_class)] for s in SPLITS}
    return LanguageData(lang, (corpus,), True, parts, {corpus: "7" * 64})


def prepared(**changes: Any) -> Prepared:
    cls = get_method("pseudolabel")
    base: dict[str, Any] = dict(
        method_cls=cls, config_dump=cls.Config().model_dump(mode="json"), encoder=FixedInfo(INFO), mode="frozen",
        device=torch.device("cpu"), source=language_data("english", "c_english"),
        target=language_data("italian", "c_italian"), classes=EMOTIONS_5, n_labeled=5, notes=[],
        encoder_name="fixed", encoder_options=(("layer", "9"),),
    )
    return Prepared(**{**base, **changes})


REQUEST = RunRequest(method="pseudolabel", target="italian", encoder="fixed", selection="paper", seeds=(0,))


def rid(p: Prepared, req: RunRequest = REQUEST, seed: int = 0) -> str:
    return run_identity(req, p, seed)[0]


def rows_sha(utts: list[Utterance]) -> str:
    """manifest_sha worked out independently: sha256 of the sorted (id, sha, emotion, speaker) lines."""
    rows = sorted((u.id, u.sha, u.emotion.value, u.speaker) for u in utts)
    return hashlib.sha256("".join("\t".join(r) + "\n" for r in rows).encode()).hexdigest()[:20]


def all_utts(d: LanguageData) -> list[Utterance]:
    return [u for part in d.parts.values() for u in part]


# -- the parts, value by value ------------------------------------------------------------------


def test_the_parts_are_the_prepared_run_field_by_field() -> None:
    p = prepared()
    run_id, parts = run_identity(REQUEST, p, 3)
    assert run_id == compute_run_id(identity_payload(**parts)) and len(run_id) == 20
    assert set(parts) == {"protocol_version", "splits_version", "method", "encoder", "task", "source_data",
                          "target_data"}
    assert (parts["protocol_version"], parts["splits_version"]) == ("1", "1")
    assert parts["method"] == MethodIdentity(
        name="pseudolabel", version=p.method_cls.version, distribution="xlbench",
        distribution_version=md.version("xlbench"), citation=p.method_cls.citation, config=p.config_dump)
    assert p.method_cls.citation.startswith("Agarla et al. (2024)")
    assert parts["encoder"] == INFO
    assert parts["task"] == TaskIdentity(source="english", target="italian", n_labeled=5, seed=3,
                                         emotions=["anger", "fear", "happiness", "neutral", "sadness"],
                                         selection="paper", mode="frozen")
    for side, d, lang, corpus in (("source_data", p.source, "english", "c_english"),
                                  ("target_data", p.target, "italian", "c_italian")):
        assert parts[side] == DataIdentity(language=lang, corpora=[corpus], synthetic=True,
                                           manifest_sha=rows_sha(all_utts(d)), split_hashes={corpus: "7" * 64})


def test_the_parts_are_the_functions_results() -> None:
    p = prepared()
    _, parts = run_identity(REQUEST, p, 1)
    assert parts["method"] == method_identity(p)
    assert parts["task"] == task_identity(REQUEST, p, 1)
    assert (parts["source_data"], parts["target_data"]) == (data_identity(p.source), data_identity(p.target))


@pytest.mark.parametrize(("n", "recorded"), [(ALL_LABELS, "all"), (0, 0), (1, 1), (7, 7)])
def test_n_labeled_is_recorded_as_a_count_or_all(n: int, recorded: int | str) -> None:
    assert task_identity(REQUEST, prepared(n_labeled=n), 0).n_labeled == recorded


def test_the_source_is_always_english_and_the_target_the_prepared_language() -> None:
    p = prepared(source=language_data("english", "c_english"), target=language_data("german", "c_german"))
    task = task_identity(REQUEST, p, 0)
    assert (task.source, task.target) == ("english", "german")


# -- every field of Prepared ----------------------------------------------------------------------

#: Prepared fields -> a change that must give another run id, or why it may not
PREPARED_CHANGES: dict[str, Any] = {
    "method_cls": lambda: dict(method_cls=get_method("crosslingual")),
    "config_dump": lambda: dict(config_dump={**prepared().config_dump, "tau": 0.75}),
    "encoder": lambda: dict(encoder=FixedInfo(INFO.model_copy(update={"options": {"layer": 10}}))),
    "mode": lambda: dict(mode="finetune"),
    "device": "where it runs, not what runs",
    "source": lambda: dict(source=language_data("english", "c_english", per_class=3)),
    "target": lambda: dict(target=language_data("italian", "c_italian", per_class=3)),
    "classes": lambda: dict(classes=EMOTIONS_4),
    "n_labeled": lambda: dict(n_labeled=6),
    "notes": "messages shown to the user",
    "encoder_name": "the built encoder's info (name, options, weights) stands for it",
    "encoder_options": "the built encoder's info (name, options, weights) stands for it",
}


def test_every_prepared_field_is_classified() -> None:
    assert set(PREPARED_CHANGES) == {f.name for f in dataclasses.fields(Prepared)}


IDENTITY_FIELDS = [k for k, v in PREPARED_CHANGES.items() if callable(v)]
DESCRIPTIVE_FIELDS = [k for k, v in PREPARED_CHANGES.items() if isinstance(v, str)]


@pytest.mark.parametrize("name", IDENTITY_FIELDS)
def test_run_id_follows_every_identity_field_of_prepared(name: str) -> None:
    assert rid(prepared(**PREPARED_CHANGES[name]())) != rid(prepared())


@pytest.mark.parametrize("name", DESCRIPTIVE_FIELDS)
def test_run_id_ignores_how_a_prepared_run_is_run(name: str) -> None:
    other = {"device": torch.device("meta"), "notes": ["a note"], "encoder_name": "other",
             "encoder_options": (("layer", "10"),)}
    assert rid(prepared(**{name: other[name]})) == rid(prepared())


def test_run_id_follows_the_seed_the_selection_and_the_class_order() -> None:
    base = rid(prepared())
    assert rid(prepared(), seed=1) != base
    assert rid(prepared(), dataclasses.replace(REQUEST, selection="strict")) != base
    assert rid(prepared(classes=tuple(reversed(EMOTIONS_5)))) != base
    assert rid(prepared()) == base  # and the same inputs give the same id


# -- every field of a language's data and of a manifest row -----------------------------------

#: LanguageData fields -> a change that must give another run id, or why it may not
DATA_CHANGES: dict[str, Any] = {
    "language": lambda d: dict(language="german"),
    "corpora": lambda d: dict(corpora=(*d.corpora, "another")),
    "synthetic": lambda d: dict(synthetic=not d.synthetic),
    "parts": lambda d: dict(parts={**d.parts, "test": d.parts["test"][1:]}),
    "split_hashes": lambda d: dict(split_hashes={k: "8" * 64 for k in d.split_hashes}),
    "note": "a message shown to the user",
}


def test_every_language_data_field_is_classified() -> None:
    assert set(DATA_CHANGES) == {f.name for f in dataclasses.fields(LanguageData)}


DATA_CASES = [(side, k) for side in ("source", "target") for k, v in DATA_CHANGES.items() if callable(v)]


@pytest.mark.parametrize(("side", "name"), DATA_CASES, ids=[f"{s}.{n}" for s, n in DATA_CASES])
def test_run_id_follows_every_data_field_on_both_sides(side: str, name: str) -> None:
    p = prepared()
    d = getattr(p, side)
    changed = dataclasses.replace(d, **DATA_CHANGES[name](d))
    assert rid(prepared(**{side: changed})) != rid(p)


@pytest.mark.parametrize("side", ["source", "target"])
def test_run_id_ignores_a_data_note(side: str) -> None:
    p = prepared()
    assert rid(prepared(**{side: dataclasses.replace(getattr(p, side), note="hello")})) == rid(p)


#: Utterance fields -> whether a change of it must change the manifest hash (the rows a run reads)
ROW_FIELDS: dict[str, bool | str] = {
    "id": True,
    "sha": True,  # the audio's content
    "emotion": True,
    "speaker": True,
    "path": "where the file is: the sha says what it holds",
    "corpus": "part of the id already",
    "language": "DataIdentity.language",
    "gender": "not read by a run",
    "raw_label": "the emotion it maps to is hashed",
    "text": "the transcript: not read by a run (the splits check it)",
    "duration": "a property of the audio (sha)",
    "sample_rate": "a property of the audio (sha)",
    "channels": "a property of the audio (sha)",
    "subtype": "a property of the audio (sha)",
    "synthetic": "DataIdentity.synthetic",
}


def test_every_manifest_row_field_is_classified() -> None:
    assert set(ROW_FIELDS) == set(Utterance.model_fields)


def other_value(u: Utterance, name: str) -> Any:
    value = getattr(u, name)
    if name == "emotion":
        return next(e for e in Emotion if e != value)
    if name == "gender":
        return "male" if value == "female" else "female"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return (value or "") + "-changed"


@pytest.mark.parametrize("name", list(ROW_FIELDS))
@pytest.mark.parametrize("index", [0, -1])
def test_manifest_hash_follows_exactly_the_hashed_fields_of_any_row(name: str, index: int) -> None:
    utts = all_utts(language_data("italian", "c_italian"))
    i = index % len(utts)
    changed = [*utts[:i], utts[i].model_copy(update={name: other_value(utts[i], name)}), *utts[i + 1:]]
    assert getattr(changed[i], name) != getattr(utts[i], name)
    assert (manifest_sha(changed) != manifest_sha(utts)) == (ROW_FIELDS[name] is True)


def test_manifest_hash_is_of_the_sorted_rows_whatever_their_order() -> None:
    utts = all_utts(language_data("italian", "c_italian"))
    shuffled = utts[:]
    random.Random(0).shuffle(shuffled)
    assert manifest_sha(utts) == manifest_sha(shuffled) == manifest_sha(utts[::-1]) == rows_sha(utts)
    assert manifest_sha([]) == hashlib.sha256(b"").hexdigest()[:20]
    one = utts[0]
    line = f"{one.id}\t{one.sha}\t{one.emotion.value}\t{one.speaker}\n"
    assert manifest_sha([one]) == hashlib.sha256(line.encode()).hexdigest()[:20]


def test_data_identity_hashes_every_part() -> None:
    d = language_data("italian", "c_italian")
    ident = data_identity(d)
    assert ident.manifest_sha == rows_sha(all_utts(d))
    for part in d.parts:
        fewer = dataclasses.replace(d, parts={**d.parts, part: d.parts[part][:-1]})
        assert data_identity(fewer).manifest_sha != ident.manifest_sha, part
    two = dataclasses.replace(d, corpora=("b", "a"), split_hashes={"b": "1" * 64, "a": "2" * 64})
    assert data_identity(two).corpora == ["b", "a"]  # as resolved, in the order given
    assert data_identity(two).split_hashes == {"b": "1" * 64, "a": "2" * 64}
