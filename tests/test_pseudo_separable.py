"""Pseudo-labels where right and wrong can be told apart.

The task is built by ``build_task`` from hand-made utterances whose frozen frames are separable
(class means 8 apart, noise 0.3): a head trained on D_s labels U_t almost perfectly, so correct
pseudo-labels score >= 95 % against the hidden truth and any misalignment of keys and labels
(shifted, reversed, sorted by label) falls to chance. Thresholds, replace/accumulate and the
rebalancing counts are checked against values worked out by hand.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from xlbench_methods.pseudolabel import PseudoLabel, PseudoLabelConfig

from tests.method_utils import fake_utterance as utt
from tests.method_utils import hide_validation_labels
from xlbench.components.pseudo_labels import PseudoLabels, hard_pseudo_labels, soft_pseudo_labels, update_pseudo_pool
from xlbench.components.rebalance import oversample, oversample_indices
from xlbench.inputs import Backbone, FrozenInputs
from xlbench.languages import LanguageData
from xlbench.method import FitReport, PseudoLabelRound
from xlbench.protocol import EMOTIONS_5
from xlbench.runner import pseudo_label_stats
from xlbench.splits import SPLITS
from xlbench.tasks import LabeledSet, build_task
from xlbench.training import FitContext, Pool, seed_everything

C = len(EMOTIONS_5)
DIM = 8
NAMES = [e.value for e in EMOTIONS_5]
ALL_PARTS = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})


def separable(n_labeled: int = 5, seed: int = 0):
    """A task, its truth and the frame store: every class a point 8 apart, noise 0.3; 12 source
    and 8 target utterances per class and split (N_s = 60, |U_t| = 40 - N_k)."""
    rng = np.random.default_rng(seed)
    means = 8.0 * np.eye(C, DIM)
    langs = {}
    frames: dict[str, np.ndarray] = {}
    for lang, shift, per_class in (("english", 0.0, 12), ("italian", 0.5, 8)):
        parts = {s: [utt(lang, s, e, k) for e in EMOTIONS_5 for k in range(per_class)] for s in SPLITS}
        for u in (u for part in parts.values() for u in part):
            y = EMOTIONS_5.index(u.emotion)
            frames[u.sha] = (means[y] + shift + rng.normal(0, 0.3, size=(20, DIM))).astype(np.float32)
        langs[lang] = LanguageData(lang, (f"c_{lang}",), False, parts, {f"c_{lang}": "0" * 64})
    task, truth = build_task(langs["english"], langs["italian"], classes=EMOTIONS_5, n_labeled=n_labeled, seed=seed,
                             selection="paper", needs=ALL_PARTS)
    inputs = FrozenInputs(frames, frame_rate=10.0, crop_seconds=2.0, pooling="mean")
    return task, truth, inputs


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fit(task, truth, inputs, **overrides) -> FitReport:
    cfg = PseudoLabelConfig(**{"epochs": 4, "every": 2, "batch_size": 16, "tau": 0.9, "lr": 0.05, **overrides})
    seed_everything(0)
    # the harness's view: validation sets as keys, their labels kept by the scorer
    labeled = dataclasses_replace_validation(task, truth)
    view, scorer = hide_validation_labels(labeled)
    ctx = FitContext(inputs=inputs, device=torch.device("cpu"), seed=0, n_classes=C,
                     make_backbone=lambda: Backbone(None, DIM, C, "mean"), score_validation=scorer,
                     show_progress=False)
    return PseudoLabel(cfg).fit(view, ctx)


def dataclasses_replace_validation(task, truth):
    import dataclasses

    return dataclasses.replace(task, validation=tuple(truth.validation[s.name] for s in task.validation))


def accuracy(keys, labels, truth) -> float:
    return float(np.mean([truth.unlabeled_labels[k] == int(y) for k, y in zip(keys, labels, strict=True)]))


@pytest.fixture(scope="module")
def hard_run(one_torch_thread_per_module):
    task, truth, inputs = separable()
    return task, truth, fit(task, truth, inputs)


def test_correct_pseudo_labels_are_at_least_95_percent_right(hard_run) -> None:
    task, truth, report = hard_run
    assert [r.epoch for r in report.pseudo_labels] == [2, 4]
    for rnd in report.pseudo_labels:
        assert len(rnd.keys) >= 0.9 * len(task.target_unlabeled)  # separable: nearly all pass τ = 0.9
        assert accuracy(rnd.keys, rnd.labels, truth) >= 0.95
    # the harness's own scoring of the rounds (xlbench.runner) agrees
    stats = pseudo_label_stats(report, truth, len(task.target_unlabeled), NAMES)
    assert all(s.accuracy is not None and s.accuracy >= 0.95 for s in stats)
    assert [s.n_selected for s in stats] == [len(r.keys) for r in report.pseudo_labels]
    for s, rnd in zip(stats, report.pseudo_labels, strict=True):
        assert s.class_counts == {n: int((rnd.labels == i).sum()) for i, n in enumerate(NAMES)}
        assert all(v is None or v >= 0.9 for v in s.per_class_accuracy.values())


@pytest.mark.parametrize("misalign", ["shift", "reverse", "by_label"])
def test_misaligned_keys_and_labels_are_caught(hard_run, misalign: str) -> None:
    """The same labels paired with the wrong keys score near chance: the 95 % check can fail."""
    task, truth, report = hard_run
    rnd = report.pseudo_labels[-1]
    keys = list(rnd.keys)
    if misalign == "shift":
        keys = keys[1:] + keys[:1]
    elif misalign == "reverse":
        keys = keys[::-1]
    else:  # keys in label order, labels in key order: what a label-sorted U_t would do
        keys = sorted(keys, key=lambda k: truth.unlabeled_labels[k])
    bad = FitReport(pseudo_labels=[PseudoLabelRound(rnd.epoch, tuple(keys), rnd.labels, rnd.confidence)])
    (s,) = pseudo_label_stats(bad, truth, len(task.target_unlabeled), NAMES)
    assert s.accuracy is not None and s.accuracy < 0.5


def test_keys_outside_u_t_are_not_scored() -> None:
    truth_labels = {"u1": 0, "u2": 1}
    from xlbench.tasks import EvalSet, TaskTruth

    empty = EvalSet("t", "italian", (), np.zeros(0, np.int64), ())
    truth = TaskTruth(empty, empty, unlabeled_labels=truth_labels)
    report = FitReport(pseudo_labels=[
        PseudoLabelRound(2, ("u1", "u2", "nope"), np.array([0, 0, 1])),
        PseudoLabelRound(4, ("nope",), np.array([1])),
    ])
    first, second = pseudo_label_stats(report, truth, 2, ["a", "b"])
    # u1 right, u2 wrong, "nope" (not in U_t) left out of the accuracy but counted as selected
    assert first.accuracy == 0.5 and first.n_selected == 3 and first.n_unlabeled == 2
    assert first.class_counts == {"a": 2, "b": 1}
    assert first.per_class_accuracy == {"a": 0.5, "b": None}  # "b" only on the unknown key
    assert second.accuracy is None and second.per_class_accuracy == {"a": None, "b": None}
    assert (first.epoch, second.epoch) == (2, 4)


def test_u_t_truth_is_aligned_with_its_keys() -> None:
    task, truth, _ = separable()
    by_key = {u.sha: EMOTIONS_5.index(u.emotion) for u in truth.by_key.values()}
    assert truth.unlabeled_labels == {k: by_key[k] for k in task.target_unlabeled.keys}
    assert len(task.target_unlabeled) == 5 * 8 - 5


# -- τ at and around the boundary ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tau_exactly_at_and_either_side_of_a_confidence(dtype) -> None:
    c = dtype(0.8)
    probs = np.array([[c, 1 - c, 0], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], dtype=dtype)
    at = hard_pseudo_labels(probs, 0.8)
    assert at.mask.tolist() == [True, False, False] and at.labels.tolist() == [0, 2, 2]
    above = float(np.nextafter(c, dtype(1)))
    below = float(np.nextafter(c, dtype(0)))
    assert hard_pseudo_labels(probs, above).mask.tolist() == [False, False, False]
    assert hard_pseudo_labels(probs, below).mask.tolist() == [True, False, False]
    assert hard_pseudo_labels(probs, 0.7).mask.tolist() == [True, True, False]
    assert hard_pseudo_labels(probs, 0.4).mask.tolist() == [True, True, True]
    assert hard_pseudo_labels(probs, 0.41).n_selected == 2


def test_selected_rows_keep_their_keys() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.1, 0.9]])
    pl = hard_pseudo_labels(probs, 0.6)
    pool = pl.selected(["a", "b", "c", "d"])
    assert pool.keys == ["a", "b", "d"]
    assert pool.targets.tolist() == [[1, 0], [0, 1], [0, 1]] and pool.targets.dtype == np.float32
    with pytest.raises(ValueError, match="3 keys for 4 pseudo-labels"):
        pl.selected(["a", "b", "c"])
    with pytest.raises(ValueError, match=r"expected \(N, C\) probabilities, got shape \(4,\)"):
        hard_pseudo_labels(probs[:, 0], 0.5)
    ints = hard_pseudo_labels(np.array([[1, 0], [0, 1]]), 1.0)  # integer input is read as probabilities
    assert ints.mask.tolist() == [True, True] and ints.confidence.dtype == np.float32


def test_the_method_keeps_only_rows_at_or_above_tau(hard_run) -> None:
    _, _, report = hard_run
    for rnd in report.pseudo_labels:
        assert rnd.confidence is not None and (rnd.confidence >= np.float32(0.9)).all()


def test_a_tau_no_prediction_reaches_selects_nothing() -> None:
    task, truth, inputs = separable()
    report = fit(task, truth, inputs, tau=1.0, rebalance=False)
    rows = {int(r["epoch"]): r for r in report.history}
    assert [len(r.keys) for r in report.pseudo_labels] == [0, 0]  # softmax never reaches 1.0 here
    assert rows[3]["n_pseudo"] == 0 and rows[3]["target_pool_size"] == 5 and rows[3]["pool_size"] == 65


# -- replace versus accumulate, by hand ----------------------------------------------------


def pool(items: dict[str, int]) -> Pool:
    return Pool(list(items), np.eye(3, dtype=np.float32)[list(items.values())])


def test_replace_and_accumulate_by_hand() -> None:
    old = pool({"a": 0, "b": 1, "c": 2})
    new = pool({"c": 0, "d": 1})
    replaced = update_pseudo_pool(old, new)  # the default is replace
    assert replaced.keys == ["c", "d"] and replaced.targets.argmax(1).tolist() == [0, 1]
    assert replaced.targets is not new.targets  # a copy: later edits of the round do not leak
    acc = update_pseudo_pool(old, new, accumulate=True)
    assert acc.keys == ["a", "b", "c", "d"] and acc.targets.argmax(1).tolist() == [0, 1, 0, 1]
    assert acc.targets.dtype == np.float32
    both_empty = update_pseudo_pool(Pool([], np.zeros((0, 3), np.float32)), Pool([], np.zeros((0, 3), np.float32)),
                                    accumulate=True)
    assert both_empty.keys == [] and both_empty.targets.shape == (0, 3)


def test_replace_versus_accumulate_in_the_method_by_count() -> None:
    """τ = 0: every U_t key every round, so replace and accumulate both hold |U_t| keys once each;
    with the pool not rebalanced, the target part is K_t plus those."""
    task, truth, inputs = separable()
    n_u = len(task.target_unlabeled)
    for accumulate in (False, True):
        report = fit(task, truth, inputs, tau=0.0, rebalance=False, accumulate=accumulate)
        rows = {int(r["epoch"]): r for r in report.history}
        assert [len(r.keys) for r in report.pseudo_labels] == [n_u, n_u]
        assert rows[3]["n_pseudo"] == n_u and rows[4]["n_pseudo"] == n_u
        assert rows[3]["target_pool_size"] == 5 + n_u and rows[3]["pool_size"] == 60 + 5 + n_u


# -- rebalancing counts, by hand -----------------------------------------------------------


def test_even_oversampling_counts_by_hand() -> None:
    # 3 items to 10: 10 = 3·3 + 1 -> two items 3 times, one item 4 times; originals first
    idx = oversample_indices(3, 10, np.random.default_rng(0))
    assert idx[:3].tolist() == [0, 1, 2] and len(idx) == 10
    assert sorted(Counter(idx.tolist()).values()) == [3, 3, 4]
    assert idx.dtype == np.int64
    # the remainder goes to distinct items: counts never differ by more than one, whatever the seed
    for seed in range(20):
        counts = Counter(oversample_indices(10, 19, np.random.default_rng(seed)).tolist())
        assert sorted(counts.values()) == [1] + [2] * 9, seed


def test_oversampling_with_replacement_draws_every_item() -> None:
    idx = oversample_indices(2, 1000, np.random.default_rng(0), replace=True)
    counts = Counter(idx.tolist())
    assert idx[:2].tolist() == [0, 1] and sum(counts.values()) == 1000
    assert counts[0] > 400 and counts[1] > 400 and counts[0] != counts[1]  # drawn, not dealt evenly
    p = Pool(["a", "b"], np.eye(2, dtype=np.float32))
    replaced = oversample(p, 1000, np.random.default_rng(0), replace=True)
    even = oversample(p, 1000, np.random.default_rng(0))
    assert Counter(replaced.keys) == {"a": counts[0], "b": counts[1]}
    assert Counter(even.keys) == {"a": 500, "b": 500}


def test_oversampling_refuses_negative_counts_and_keeps_small_targets() -> None:
    rng = np.random.default_rng(0)
    for n, target in ((-1, 3), (3, -1)):
        with pytest.raises(ValueError, match=rf"counts must be non-negative \(n={n}, target={target}\)"):
            oversample_indices(n, target, rng)
    assert oversample_indices(3, 0, rng).tolist() == [0, 1, 2]
    assert oversample_indices(3, 3, rng, replace=True).tolist() == [0, 1, 2]


def test_rebalanced_pool_sizes_in_the_method() -> None:
    """N_s = 60 source utterances; K_t (5) is oversampled to 60 from the start; after a round
    K_t ∪ K'_t (5 + 35 = 40) is oversampled to 60 again."""
    task, truth, inputs = separable()
    report = fit(task, truth, inputs)
    rows = {int(r["epoch"]): r for r in report.history}
    n1 = len(report.pseudo_labels[0].keys)
    assert n1 == 35 and len(report.pseudo_labels[1].keys) == 35  # separable: all of U_t passes τ
    assert rows[1]["target_pool_size"] == 60 and rows[1]["pool_size"] == 120
    assert rows[3]["n_pseudo"] == 35 and rows[3]["target_pool_size"] == 60 and rows[3]["pool_size"] == 120
    without = fit(task, truth, inputs, rebalance=False)
    rows = {int(r["epoch"]): r for r in without.history}
    n = len(without.pseudo_labels[0].keys)
    assert rows[1]["target_pool_size"] == 5 and rows[3]["target_pool_size"] == 5 + n
    assert rows[3]["pool_size"] == 60 + 5 + n


def test_pseudo_labels_dataclass_counts() -> None:
    pl = PseudoLabels(np.array([0, 1]), np.array([0.9, 0.4], np.float32), np.array([True, False]),
                      np.eye(2, dtype=np.float32))
    assert pl.n_selected == 1 and isinstance(pl.n_selected, int)


def test_labeled_sets_carry_their_labels_in_key_order() -> None:
    task, truth, _ = separable()
    by_key = {u.sha: EMOTIONS_5.index(u.emotion) for u in truth.by_key.values()}
    for s in (task.source_train, task.target_labeled, *truth.validation.values()):
        assert isinstance(s, LabeledSet)
        assert s.labels.tolist() == [by_key[k] for k in s.keys], s.name


# -- the PseudoLabels a pass hands back: dtypes and degenerate rows ---------------------------


def test_hard_and_soft_passes_hand_back_labels_confidence_mask_and_targets() -> None:
    probs = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]], dtype=np.float64)
    hard = hard_pseudo_labels(probs, 0.6)
    soft = soft_pseudo_labels(probs)
    for pl in (hard, soft):
        assert pl.labels.tolist() == [1, 0] and pl.labels.dtype == np.int64
        assert pl.confidence.dtype == np.float32 and pl.targets.dtype == np.float32
        np.testing.assert_allclose(pl.confidence, [0.7, 0.5], rtol=1e-6)
        assert pl.mask.dtype == np.bool_
    assert hard.mask.tolist() == [True, False] and soft.mask.tolist() == [True, True]
    np.testing.assert_array_equal(hard.targets, [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(soft.targets, probs, rtol=1e-6)
    assert soft.selected(["a", "b"]).keys == ["a", "b"]


def test_soft_targets_are_renormalised_and_an_all_zero_row_stays_finite() -> None:
    soft = soft_pseudo_labels(np.array([[0.2, 0.2], [0.0, 0.0], [0.3, 0.1]], dtype=np.float32))
    np.testing.assert_allclose(soft.targets, [[0.5, 0.5], [0.0, 0.0], [0.75, 0.25]], rtol=1e-6)


def test_integer_probabilities_are_compared_as_floats() -> None:
    """An all-zero integer row has confidence 0 < τ = 0.5 (compared in integers τ would become 0)."""
    pl = hard_pseudo_labels(np.array([[0, 0], [0, 1]]), 0.5)
    assert pl.mask.tolist() == [False, True] and pl.confidence.dtype == np.float32
