from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter

import numpy as np
import pytest

from xlbench.errors import ConfigError, DataError
from xlbench.languages import LanguageData
from xlbench.manifest import Utterance
from xlbench.protocol import EMOTIONS_4, EMOTIONS_5, Emotion
from xlbench.tasks import ALL_LABELS, UnlabeledSet, build_task, stratified_sample

ALL_PARTS = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})


def utt(lang: str, split: str, speaker: str, emotion: Emotion, i: int) -> Utterance:
    uid = f"{lang}/{split}/{speaker}/{emotion.value}-{i}"
    return Utterance(
        id=uid,
        path=f"/nowhere/{uid}.wav",
        corpus=f"c_{lang}",
        language=lang,
        speaker=speaker,
        gender="female",
        raw_label=emotion.value,
        emotion=emotion,
        duration=1.0,
        sample_rate=16000,
        channels=1,
        subtype="PCM_16",
        sha=hashlib.blake2b(uid.encode(), digest_size=16).hexdigest(),
    )


def language_data(lang: str, per_class: dict[str, int]) -> LanguageData:
    parts = {}
    for split, n in per_class.items():
        parts[split] = [utt(lang, split, f"{split}{k % 2}", e, k) for e in EMOTIONS_5 for k in range(n)]
    return LanguageData(lang, (f"c_{lang}",), False, parts, {f"c_{lang}": "0" * 64})


@pytest.fixture
def data():
    return language_data("english", {"train": 20, "val": 6, "test": 6}), language_data(
        "italian", {"train": 12, "val": 4, "test": 4}
    )


def test_unlabeled_set_has_no_labels_and_keys_are_opaque(data) -> None:
    src, tgt = data
    task, truth = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=25, seed=0, selection="paper", needs=ALL_PARTS)
    u = task.target_unlabeled
    assert isinstance(u, UnlabeledSet)
    field_names = {f.name for f in dataclasses.fields(UnlabeledSet)}
    assert field_names == {"name", "language", "keys"}  # no label field at all
    assert not hasattr(u, "labels")
    # Keys are the audio's content hashes, nothing else: not a manifest id, speaker or file name.
    sha_of = {u.sha: u for u in tgt.parts["train"]}
    assert set(u.keys) <= set(sha_of)
    for key in u.keys:
        utt = sha_of[key]
        assert key not in (utt.id, utt.speaker, utt.speaker_key) and utt.id not in key
    # The harness keeps the truth for every unlabelled key.
    assert set(truth.unlabeled_labels) == set(u.keys)
    assert len(u) == 60 - 25


def test_k_t_is_stratified_and_seeded(data) -> None:
    src, tgt = data
    task, _ = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=25, seed=3, selection="paper", needs=ALL_PARTS)
    assert sorted(Counter(task.target_labeled.labels.tolist()).values()) == [5, 5, 5, 5, 5]
    again, _ = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=25, seed=3, selection="paper", needs=ALL_PARTS)
    other, _ = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=25, seed=4, selection="paper", needs=ALL_PARTS)
    assert again.target_labeled.keys == task.target_labeled.keys
    assert other.target_labeled.keys != task.target_labeled.keys
    # K_t and U_t partition the target training split.
    assert not set(task.target_labeled.keys) & set(task.target_unlabeled.keys)
    assert len(task.target_labeled) + len(task.target_unlabeled) == 60


def test_stratified_remainder_and_short_class() -> None:
    rng = np.random.default_rng(0)
    pool = [utt("x", "train", "s", e, k) for e in EMOTIONS_5 for k in range(10 if e != Emotion.FEAR else 2)]
    picked = stratified_sample(pool, 27, EMOTIONS_5, rng)
    counts = Counter(u.emotion for u in picked)
    assert counts[Emotion.FEAR] == 2  # all it has; its shortfall goes to the others
    assert sum(counts.values()) == 27
    assert max(counts.values()) - min(c for e, c in counts.items() if e != Emotion.FEAR) <= 1


def test_bad_n_labeled(data) -> None:
    src, tgt = data
    with pytest.raises(ConfigError, match="larger than the target training set"):
        build_task(src, tgt, classes=EMOTIONS_5, n_labeled=61, seed=0, selection="paper", needs=ALL_PARTS)
    with pytest.raises(ConfigError, match="cannot give every one of the 5 classes"):
        build_task(src, tgt, classes=EMOTIONS_5, n_labeled=3, seed=0, selection="paper", needs=ALL_PARTS)


def test_class_missing_from_target_train_is_refused(data) -> None:
    src, tgt = data
    tgt.parts["train"] = [u for u in tgt.parts["train"] if u.emotion != Emotion.SADNESS]
    with pytest.raises(DataError, match="target train split has no sadness"):
        build_task(src, tgt, classes=EMOTIONS_5, n_labeled=25, seed=0, selection="paper", needs=ALL_PARTS)


@pytest.mark.parametrize("selection", ["paper", "strict"])
def test_selection_policies_never_hand_over_test(data, selection: str) -> None:
    src, tgt = data
    task, truth = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=25, seed=0, selection=selection, needs=ALL_PARTS)
    test_keys = set(truth.target_test.keys) | set(truth.source_test.keys)
    handed = set(task.source_train.keys) | set(task.target_labeled.keys) | set(task.target_unlabeled.keys)
    for s in task.validation:
        handed |= set(s.keys)
    assert not handed & test_keys
    names = [s.name for s in task.validation]
    if selection == "paper":
        assert names == ["source_val", "target_val"]
        assert set(task.validation[1].keys) == {u.sha for u in tgt.parts["val"]}
    else:
        assert names == ["source_val", "target_labeled"]  # no target labels beyond K_t
        target_val = {u.sha for u in tgt.parts["val"]}
        assert not any(set(s.keys) & target_val for s in task.validation)


def test_strict_with_no_labels_validates_on_source_only(data) -> None:
    src, tgt = data
    task, _ = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=0, seed=0, selection="strict", needs=ALL_PARTS)
    assert [s.name for s in task.validation] == ["source_val"]


def test_undeclared_parts_arrive_empty(data) -> None:
    src, tgt = data
    task, truth = build_task(
        src,
        tgt,
        classes=EMOTIONS_5,
        n_labeled=25,
        seed=0,
        selection="paper",
        needs=frozenset({"source_train", "validation"}),
    )
    assert len(task.target_labeled) == 0 and len(task.target_unlabeled) == 0
    assert len(task.source_train) == 100
    assert len(truth.unlabeled_labels) == 35  # the harness still knows, for scoring


def test_upper_bound_gets_all_target_labels(data) -> None:
    src, tgt = data
    task, _ = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=ALL_LABELS, seed=0, selection="paper", needs=ALL_PARTS)
    assert len(task.target_labeled) == 60 and len(task.target_unlabeled) == 0


def test_four_emotions_drop_fear_everywhere(data) -> None:
    src, tgt = data
    task, truth = build_task(src, tgt, classes=EMOTIONS_4, n_labeled=20, seed=0, selection="paper", needs=ALL_PARTS)
    assert task.n_classes == 4
    assert len(task.source_train) == 80
    assert set(task.target_labeled.labels.tolist()) == {0, 1, 2, 3}
    assert all(truth.by_key[k].emotion != Emotion.FEAR for k in task.target_unlabeled.keys)
    assert all(u.emotion != Emotion.FEAR for u in truth.target_test.utterances)


def test_labels_are_read_only(data) -> None:
    src, tgt = data
    task, _ = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=25, seed=0, selection="paper", needs=ALL_PARTS)
    with pytest.raises(ValueError):
        task.target_labeled.labels[0] = 3
