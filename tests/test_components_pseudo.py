"""The pseudo-labelling components on hand-made numbers: Eq. 2 selection, R_A / R_H (Eq. 3-4),
mixup (Eq. 6-7), rebalancing (Sec. 3.2.3) and the K'_t pool update (replace / accumulate)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from xlbench.components.mixup import mix_targets, mixup
from xlbench.components.pseudo_labels import hard_pseudo_labels, soft_pseudo_labels, update_pseudo_pool
from xlbench.components.rebalance import oversample, oversample_indices
from xlbench.components.regularizers import (
    entropy_regularizer,
    entropy_regularizer_from_logits,
    prior_regularizer,
    prior_regularizer_from_logits,
)
from xlbench.inputs import Batch
from xlbench.training import Pool

# -- Eq. 2: hard pseudo-labels ---------------------------------------------------------------

PROBS = np.array(
    [
        [0.50, 0.30, 0.20],  # max exactly τ = 0.5: kept (>=)
        [0.49, 0.51, 0.00],  # just above: kept, class 1
        [0.40, 0.40, 0.20],  # tie at 0.4: class 0 (lowest index), below τ: dropped
        [0.50, 0.50, 0.00],  # tie at exactly τ: class 0, kept
        [0.20, 0.20, 0.60],  # class 2, kept
        [0.45, 0.10, 0.45],  # tie at 0.45: class 0, dropped
    ]
)


def test_hard_selection_threshold_boundary_and_ties() -> None:
    pl = hard_pseudo_labels(PROBS, 0.5)
    assert pl.labels.tolist() == [0, 1, 0, 0, 2, 0]
    assert pl.mask.tolist() == [True, True, False, True, True, False]
    assert pl.n_selected == 4
    np.testing.assert_allclose(pl.confidence, [0.5, 0.51, 0.4, 0.5, 0.6, 0.45], rtol=1e-6)
    np.testing.assert_array_equal(pl.targets, np.eye(3, dtype=np.float32)[[0, 1, 0, 0, 2, 0]])
    # τ = 0.51: the exact-0.5 rows go; 0.51 >= 0.51 stays
    assert hard_pseudo_labels(PROBS, 0.51).mask.tolist() == [False, True, False, False, True, False]
    # τ above every confidence: nothing; τ = 0: everything
    assert hard_pseudo_labels(PROBS, 0.61).n_selected == 0
    assert hard_pseudo_labels(PROBS, 0.0).n_selected == 6


def test_hard_selection_boundary_in_float32() -> None:
    # softmax outputs are float32: float32(0.65) must count as >= τ = 0.65
    probs = np.array([[0.65, 0.35], [0.6499, 0.3501]], dtype=np.float32)
    assert hard_pseudo_labels(probs, 0.65).mask.tolist() == [True, False]


def test_selected_pool_keeps_key_order_and_targets() -> None:
    keys = [f"u{i}" for i in range(len(PROBS))]
    pool = hard_pseudo_labels(PROBS, 0.5).selected(keys)
    assert pool.keys == ["u0", "u1", "u3", "u4"]
    assert pool.targets.argmax(1).tolist() == [0, 1, 0, 2] and pool.targets.dtype == np.float32
    with pytest.raises(ValueError):
        hard_pseudo_labels(PROBS, 0.5).selected(keys[:2])


def test_soft_pseudo_labels_are_the_probability_vectors() -> None:
    pl = soft_pseudo_labels(PROBS)
    assert pl.mask.all() and pl.n_selected == 6
    np.testing.assert_allclose(pl.targets, PROBS, atol=1e-7)
    np.testing.assert_allclose(pl.targets.sum(1), 1.0, atol=1e-6)
    assert pl.labels.tolist() == [0, 1, 0, 0, 2, 0]


# -- Eq. 3-4: the regularisers ---------------------------------------------------------------

# A 2 × 3 batch. h̄ = mean over rows = (0.3, 0.425, 0.275).
# R_A = Σ_c (1/3) ln((1/3) / h̄_c) = (1/3)(ln 1.11111 + ln 0.78431 + ln 1.21212)
#     = (1/3)(0.105361 - 0.242946 + 0.192372) = 0.0182621
# R_H = mean of the row entropies:
#     row 1: -(0.5 ln 0.5 + 2 · 0.25 ln 0.25) = 0.346574 + 0.693147 = 1.039721
#     row 2: -(0.1 ln 0.1 + 0.6 ln 0.6 + 0.3 ln 0.3) = 0.230259 + 0.306495 + 0.361192 = 0.897946
#     mean = 0.968833 (Eq. 4's sum would be 1.937667; PROTOCOL.md §6 fixes the mean)
P = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]], dtype=torch.float64)
R_A = 0.0182621
R_H = 0.968833


def test_prior_regularizer_hand_computed() -> None:
    assert prior_regularizer(P).item() == pytest.approx(R_A, abs=1e-6)
    assert prior_regularizer_from_logits(torch.log(P)).item() == pytest.approx(R_A, abs=1e-6)
    # zero when the batch mean is the uniform prior, whatever the rows look like
    balanced = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert prior_regularizer(balanced).item() == pytest.approx(0.0, abs=1e-9)
    # a batch piled on one class: Σ (1/3) ln((1/3) / h̄) with h̄ = (0.98, 0.01, 0.01)
    piled = torch.tensor([[0.98, 0.01, 0.01]] * 4, dtype=torch.float64)
    expected = (math.log((1 / 3) / 0.98) + 2 * math.log((1 / 3) / 0.01)) / 3
    assert prior_regularizer(piled).item() == pytest.approx(expected, rel=1e-9)
    # a non-uniform prior
    prior = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    expected = 0.5 * math.log(0.5 / 0.3) + 0.25 * math.log(0.25 / 0.425) + 0.25 * math.log(0.25 / 0.275)
    assert prior_regularizer(P, prior).item() == pytest.approx(expected, rel=1e-9)


def test_entropy_regularizer_hand_computed_is_a_mean() -> None:
    assert entropy_regularizer(P).item() == pytest.approx(R_H, abs=1e-6)
    assert entropy_regularizer_from_logits(torch.log(P)).item() == pytest.approx(R_H, abs=1e-6)
    # the mean does not grow with the batch: the same rows twice give the same value
    assert entropy_regularizer(torch.cat([P, P])).item() == pytest.approx(R_H, abs=1e-6)
    # one-hot rows have no entropy; uniform rows have ln C
    assert entropy_regularizer(torch.eye(3, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-9)
    assert entropy_regularizer(torch.full((2, 4), 0.25)).item() == pytest.approx(math.log(4), rel=1e-6)


def test_regularizers_from_logits_are_finite_and_differentiable() -> None:
    logits = torch.tensor([[80.0, -80.0, 0.0], [90.0, -50.0, -70.0]], requires_grad=True)  # softmax underflows
    loss = prior_regularizer_from_logits(logits) + entropy_regularizer_from_logits(logits)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


# -- Eq. 6-7: mixup --------------------------------------------------------------------------

def _batch(rows: int, width: int = 4) -> tuple[Batch, torch.Tensor]:
    x = torch.arange(rows * width, dtype=torch.float32).view(rows, width)
    lengths = torch.tensor([width - (i % 2) for i in range(rows)])
    labels = torch.tensor([i % 3 for i in range(rows)])
    y = torch.eye(3)[labels]
    y[0] = torch.tensor([0.2, 0.5, 0.3])  # a soft target too
    return Batch(x, lengths), y


def test_mixup_targets_are_the_convex_combination_per_pair() -> None:
    batch, y = _batch(6)
    m = mixup(batch, y, np.random.default_rng(0))
    assert sorted(m.partner.tolist()) == list(range(6))  # a permutation of the batch
    assert ((m.alpha >= 0) & (m.alpha < 1)).all() and len(set(m.alpha.tolist())) == 6  # one α per pair
    a = m.alpha[:, None]
    torch.testing.assert_close(m.batch.x, a * batch.x + (1 - a) * batch.x[m.partner])  # Eq. 6
    torch.testing.assert_close(m.targets, a * y + (1 - a) * y[m.partner])  # Eq. 7
    torch.testing.assert_close(m.targets.sum(1), torch.ones(6))  # still distributions
    assert torch.equal(m.batch.lengths, torch.maximum(batch.lengths, batch.lengths[m.partner]))
    # hand-made: α = (0.25, 1), partner = (1, 0)
    y2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    torch.testing.assert_close(mix_targets(y2, torch.tensor([1, 0]), torch.tensor([0.25, 1.0])),
                               torch.tensor([[0.25, 0.75], [0.0, 1.0]]))


def test_mixup_is_deterministic_per_rng_and_handles_waveforms() -> None:
    batch, y = _batch(5)
    a, b = mixup(batch, y, np.random.default_rng(3)), mixup(batch, y, np.random.default_rng(3))
    assert torch.equal(a.batch.x, b.batch.x) and torch.equal(a.alpha, b.alpha)
    c = mixup(batch, y, np.random.default_rng(4))
    assert not torch.equal(a.alpha, c.alpha)
    wave = Batch(torch.randn(3, 8, 2), torch.tensor([8, 5, 3]))  # (B, T, D) inputs mix per row too
    m = mixup(wave, torch.eye(3), np.random.default_rng(0))
    a3 = m.alpha.view(-1, 1, 1)
    torch.testing.assert_close(m.batch.x, a3 * wave.x + (1 - a3) * wave.x[m.partner])
    with pytest.raises(ValueError):
        mixup(batch, y[:2], np.random.default_rng(0))


# -- Sec. 3.2.3: rebalancing -----------------------------------------------------------------

def test_oversampling_counts_are_exact() -> None:
    idx = oversample_indices(25, 300, np.random.default_rng(0))
    assert len(idx) == 300 and set(Counter(idx.tolist()).values()) == {12}  # γ = 1, 12 copies each
    idx = oversample_indices(7, 30, np.random.default_rng(0))
    counts = Counter(idx.tolist())
    assert len(idx) == 30 and set(counts) == set(range(7))
    assert sorted(counts.values()) == [4, 4, 4, 4, 4, 5, 5]  # 30 = 7 · 4 + 2
    assert idx[:7].tolist() == list(range(7))  # every original first, once
    idx = oversample_indices(7, 30, np.random.default_rng(0), replace=True)
    assert len(idx) == 30 and set(idx.tolist()) == set(range(7))


def test_oversampling_never_drops_and_is_deterministic() -> None:
    assert oversample_indices(400, 300, np.random.default_rng(0)).tolist() == list(range(400))  # larger: as is
    assert oversample_indices(300, 300, np.random.default_rng(0)).tolist() == list(range(300))
    assert oversample_indices(0, 300, np.random.default_rng(0)).tolist() == []  # nothing to replicate
    one, two = (oversample_indices(7, 30, np.random.default_rng(5)) for _ in range(2))
    assert one.tolist() == two.tolist()
    others = {tuple(oversample_indices(7, 30, np.random.default_rng(s)).tolist()) for s in range(6)}
    assert len(others) > 1
    with pytest.raises(ValueError):
        oversample_indices(-1, 3, np.random.default_rng(0))


def test_oversample_pool_copies_keys_with_their_targets() -> None:
    pool = Pool(["a", "b", "c"], np.eye(3, dtype=np.float32))
    big = oversample(pool, 10, np.random.default_rng(1))
    assert len(big) == 10 and big.keys[:3] == ["a", "b", "c"]
    for k, t in zip(big.keys, big.targets, strict=True):
        assert t.argmax() == "abc".index(k)


# -- Algorithm 1 line 9: the K'_t update -----------------------------------------------------

def _pool(items: dict[str, int]) -> Pool:
    return Pool(list(items), np.eye(3, dtype=np.float32)[list(items.values())])


def _labels(pool: Pool) -> dict[str, int]:
    return dict(zip(pool.keys, pool.targets.argmax(1).tolist(), strict=True))


def test_pool_update_replace_versus_accumulate() -> None:
    first = _pool({"u1": 0, "u2": 1, "u3": 2})
    second = _pool({"u2": 2, "u4": 0})  # u2 relabelled, u1/u3 below τ this time, u4 new
    replaced = update_pseudo_pool(first, second, accumulate=False)
    assert _labels(replaced) == {"u2": 2, "u4": 0}
    merged = update_pseudo_pool(first, second, accumulate=True)
    assert _labels(merged) == {"u1": 0, "u3": 2, "u2": 2, "u4": 0}  # latest label wins, once each
    assert len(merged) == len(set(merged.keys)) == 4
    empty = Pool([], np.zeros((0, 3), np.float32))
    assert len(update_pseudo_pool(first, empty, accumulate=False)) == 0
    assert _labels(update_pseudo_pool(empty, first, accumulate=True)) == _labels(first)
    assert _labels(update_pseudo_pool(first, empty, accumulate=True)) == _labels(first)
