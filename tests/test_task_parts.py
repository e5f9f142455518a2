"""Every part of a TransferTask and of the harness's TaskTruth: names, languages, the task's own
fields, what an undeclared part becomes (over every subset of the parts a method can declare),
pinned K_t, the refusals' messages, and the K_t draw itself (a protocol constant: records made
with one draw are compared with records made later)."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter

import numpy as np
import pytest

from tests.method_utils import fake_utterance as utt
from xlbench.errors import ConfigError, DataError
from xlbench.languages import LanguageData
from xlbench.manifest import Utterance
from xlbench.protocol import EMOTIONS_5, Emotion
from xlbench.splits import SPLITS
from xlbench.tasks import ALL_LABELS, LabeledSet, TransferTask, UnlabeledSet, build_task, stratified_sample

PARTS = ("source_train", "target_labeled", "target_unlabeled", "validation")


def language(lang: str, n: int) -> LanguageData:
    parts = {s: [utt(lang, s, e, k) for e in EMOTIONS_5 for k in range(n)] for s in SPLITS}
    return LanguageData(lang, (f"c_{lang}",), False, parts, {f"c_{lang}": "0" * 64})


SRC, TGT = language("english", 4), language("italian", 4)
SUBSETS = [frozenset(c) for r in range(len(PARTS) + 1) for c in itertools.combinations(PARTS, r)]


@pytest.mark.parametrize("needs", SUBSETS, ids=lambda s: "+".join(sorted(s)) or "nothing")
def test_every_part_named_and_emptied_when_undeclared(needs: frozenset[str]) -> None:
    task, truth = build_task(SRC, TGT, classes=EMOTIONS_5, n_labeled=5, seed=2, selection="paper", needs=needs)
    assert (task.source, task.target, task.classes, task.n_labeled, task.seed, task.selection) == (
        "english", "italian", EMOTIONS_5, 5, 2, "paper")
    expected = {
        "source_train": ("english", 20),
        "target_labeled": ("italian", 5),
        "target_unlabeled": ("italian", 15),
    }
    for name, (lang, size) in expected.items():
        part = getattr(task, name)
        assert isinstance(part, UnlabeledSet if name == "target_unlabeled" else LabeledSet)
        assert (part.name, part.language) == (name, lang)
        assert len(part) == (size if name in needs else 0), name
        if isinstance(part, LabeledSet):
            assert part.labels.dtype == np.int64 and len(part.labels) == len(part)
    if "validation" in needs:
        assert [(s.name, s.language, len(s)) for s in task.validation] == [
            ("source_val", "english", 20), ("target_val", "italian", 20)]
        assert {n: (s.name, s.language, len(s)) for n, s in truth.validation.items()} == {
            "source_val": ("source_val", "english", 20), "target_val": ("target_val", "italian", 20)}
    else:
        assert task.validation == () and truth.validation == {}
    # the harness keeps its truth whatever the method declared
    assert (truth.target_test.name, truth.target_test.language, len(truth.target_test.keys)) == (
        "target_test", "italian", 20)
    assert (truth.source_test.name, truth.source_test.language, len(truth.source_test.keys)) == (
        "source_test", "english", 20)
    assert truth.target_test.labels.dtype == np.int64
    assert len(truth.unlabeled_labels) == 15 and len(truth.by_key) == 6 * 20
    assert set(task.fit_keys()) <= set(truth.by_key) and list(task.fit_keys()) == sorted(task.fit_keys())


def test_task_fields_follow_the_request() -> None:
    assert [f.name for f in dataclasses.fields(TransferTask)] == [
        "source", "target", "classes", "n_labeled", "seed", "selection", "source_train", "target_labeled",
        "target_unlabeled", "validation"]
    task, _ = build_task(SRC, TGT, classes=EMOTIONS_5, n_labeled=ALL_LABELS, seed=7, selection="strict",
                         needs=frozenset(PARTS))
    assert (task.n_labeled, task.seed, task.selection) == (ALL_LABELS, 7, "strict")
    assert [(s.name, s.language) for s in task.validation] == [("source_val", "english"),
                                                               ("target_labeled", "italian")]
    assert task.n_classes == 5


def test_pinned_k_t() -> None:
    pinned = [u.sha for u in TGT.parts["train"][:3]]
    task, truth = build_task(SRC, TGT, classes=EMOTIONS_5, n_labeled=3, seed=0, selection="paper",
                             needs=frozenset(PARTS), labeled_keys=pinned)
    assert set(task.target_labeled.keys) == set(pinned)
    assert not set(pinned) & set(truth.unlabeled_labels) and len(truth.unlabeled_labels) == 17
    with pytest.raises(ConfigError, match=r"^2 pinned K_t key.s. are not in the target training split$"):
        build_task(SRC, TGT, classes=EMOTIONS_5, n_labeled=3, seed=0, selection="paper", needs=frozenset(PARTS),
                   labeled_keys=[*pinned, "x" * 32, "y" * 32])


def test_refusals_say_why() -> None:
    kw = dict(classes=EMOTIONS_5, seed=0, needs=frozenset(PARTS))
    with pytest.raises(ConfigError, match=r"^--selection must be paper or strict, not 'test'$"):
        build_task(SRC, TGT, n_labeled=5, selection="test", **kw)
    with pytest.raises(ConfigError, match=r"^--n-labeled must be >= 0, not -2$"):
        build_task(SRC, TGT, n_labeled=-2, selection="paper", **kw)
    for split, name in (("test", "target test"), ("train", "target train")):
        parts = {s: [u for u in TGT.parts[s] if not (s == split and u.emotion in (Emotion.FEAR, Emotion.ANGER))]
                 for s in SPLITS}
        tgt = dataclasses.replace(TGT, parts=parts)
        with pytest.raises(DataError, match=rf"^the {name} split has no anger, fear utterance; cannot score"):
            build_task(SRC, tgt, n_labeled=0, selection="paper", **kw)
    parts = {s: [u for u in SRC.parts[s] if not (s == "test" and u.emotion == Emotion.SADNESS)] for s in SPLITS}
    with pytest.raises(DataError, match=r"^the source test split has no sadness utterance"):
        build_task(dataclasses.replace(SRC, parts=parts), TGT, n_labeled=0, selection="paper", **kw)


def test_the_k_t_draw_is_a_protocol_constant() -> None:
    """K_t of seed 0 and 1 on this data, as first drawn (a change re-draws every benchmark's K_t)."""
    ids = {}
    for seed in (0, 1):
        task, truth = build_task(SRC, TGT, classes=EMOTIONS_5, n_labeled=5, seed=seed, selection="paper",
                                 needs=frozenset(PARTS))
        ids[seed] = sorted(truth.by_key[k].id for k in task.target_labeled.keys)
    assert ids == {
        0: ["italian/train/anger-0", "italian/train/fear-0", "italian/train/happiness-0", "italian/train/neutral-0",
            "italian/train/sadness-2"],
        1: ["italian/train/anger-1", "italian/train/fear-0", "italian/train/happiness-2", "italian/train/neutral-3",
            "italian/train/sadness-1"],
    }


# -- the stratified K_t draw ------------------------------------------------------------------


def pool(counts: dict[Emotion, int]) -> list[Utterance]:
    return [utt("italian", "train", e, k) for e, n in counts.items() for k in range(n)]


def test_stratified_draw_is_as_even_as_the_pool_allows_whatever_the_seed() -> None:
    big = pool(dict.fromkeys(EMOTIONS_5, 10))
    for seed in range(30):
        # 7 = 5 x 1 + 2: two classes, drawn without replacement, get a second utterance
        counts = Counter(u.emotion for u in stratified_sample(big, 7, EMOTIONS_5, np.random.default_rng(seed)))
        assert sorted(counts.values()) == [1, 1, 1, 2, 2], seed
    short = pool({**dict.fromkeys(EMOTIONS_5, 10), Emotion.FEAR: 2})
    for seed in range(30):
        # 13: level 2 for everyone (fear has exactly 2), the 3 left over go to 3 of the 4 others
        counts = Counter(u.emotion for u in stratified_sample(short, 13, EMOTIONS_5, np.random.default_rng(seed)))
        assert counts[Emotion.FEAR] == 2 and sum(counts.values()) == 13, seed
        assert sorted(v for e, v in counts.items() if e != Emotion.FEAR) == [2, 3, 3, 3], seed


def test_stratified_draw_of_the_whole_pool_and_its_refusals() -> None:
    small = pool(dict.fromkeys(EMOTIONS_5, 2))
    # N_k = the whole pool once looped forever (the level kept rising past the largest class)
    everything = stratified_sample(small, 10, EMOTIONS_5, np.random.default_rng(0))
    assert sorted(u.id for u in everything) == sorted(u.id for u in small)
    task, _ = build_task(SRC, TGT, classes=EMOTIONS_5, n_labeled=20, seed=0, selection="paper",
                         needs=frozenset(PARTS))
    assert len(task.target_labeled) == 20 and len(task.target_unlabeled) == 0
    with pytest.raises(ConfigError, match=r"^--n-labeled 11 is larger than the target training set \(10 utterances\)$"):
        stratified_sample(small, 11, EMOTIONS_5, np.random.default_rng(0))
    no_fear = [u for u in small if u.emotion != Emotion.FEAR]
    with pytest.raises(DataError, match=r"^the target training split has no fear utterance: K_t cannot cover every"):
        stratified_sample(no_fear, 5, EMOTIONS_5, np.random.default_rng(0))
    assert stratified_sample(small, 0, EMOTIONS_5, np.random.default_rng(0)) == []


def test_a_labeled_set_refuses_keys_and_labels_of_different_lengths() -> None:
    with pytest.raises(ValueError, match=r"^x: 2 keys but 1 labels$"):
        LabeledSet("x", "italian", ("a", "b"), np.array([0]))
    s = LabeledSet("x", "italian", ("a", "b"), np.array([0, 2]))
    assert s.class_counts(4).tolist() == [1, 0, 1, 0] and not s.labels.flags.writeable
