"""Tests for xlbench.stats: every statistic against scipy/statsmodels or a hand computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from xlbench import stats as st

# --------------------------------------------------------------------------------------------------
# Reference implementations written with plain loops, independent of the module's vectorised code
# --------------------------------------------------------------------------------------------------


def ua_loop(y_true, y_pred, n_classes):
    recalls = []
    for c in range(n_classes):
        idx = [i for i, t in enumerate(y_true) if t == c]
        if idx:
            recalls.append(sum(y_pred[i] == c for i in idx) / len(idx))
    return sum(recalls) / len(recalls)


def f1_loop(y_true, y_pred, n_classes):
    scores = []
    for c in range(n_classes):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred, strict=True))
        if tp + fp + fn == 0:
            continue  # class in neither y_true nor y_pred: excluded
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        scores.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
    return sum(scores) / len(scores)


def random_predictions(rng, n, n_classes, acc_a, acc_b):
    y = rng.integers(0, n_classes, n)
    a = np.where(rng.random(n) < acc_a, y, rng.integers(0, n_classes, n))
    b = np.where(rng.random(n) < acc_b, y, rng.integers(0, n_classes, n))
    return y, a, b


# Small hand example: 5 classes, class 4 never true but predicted once; class 3 absent everywhere.
Y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
P = np.array([0, 0, 1, 4, 1, 1, 0, 2, 0, 2])


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def test_confusion_matrix_by_hand():
    expected = np.zeros((5, 5), dtype=int)
    expected[0] = [2, 1, 0, 0, 1]
    expected[1] = [1, 2, 0, 0, 0]
    expected[2] = [1, 0, 2, 0, 0]
    np.testing.assert_array_equal(st.confusion_matrix(Y, P, 5), expected)


def test_recall_ua_wa_by_hand():
    recall = st.per_class_recall(Y, P, 5)
    np.testing.assert_allclose(recall[:3], [2 / 4, 2 / 3, 2 / 3])
    assert np.isnan(recall[3]) and np.isnan(recall[4])
    # Absent classes 3 and 4 are excluded: mean over 3 recalls, not 5.
    assert st.unweighted_accuracy(Y, P, 5) == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert st.unweighted_accuracy(Y, P, 5) == pytest.approx(ua_loop(Y, P, 5))
    assert st.weighted_accuracy(Y, P, 5) == pytest.approx(6 / 10)


def test_macro_f1_by_hand():
    # class 0: tp 2, fp 2, fn 2 -> 0.5; class 1: tp 2, fp 1, fn 1 -> 2/3; class 2: tp 2, fp 0, fn 1 -> 0.8;
    # class 4: predicted once, never true -> 0 (counts); class 3: in neither -> excluded.
    expected = (0.5 + 2 / 3 + 0.8 + 0.0) / 4
    assert st.macro_f1(Y, P, 5) == pytest.approx(expected)
    assert st.macro_f1(Y, P, 5) == pytest.approx(f1_loop(Y, P, 5))


def test_metrics_match_loops_on_random_data():
    rng = np.random.default_rng(1)
    for n_classes in (2, 4, 5):
        y, a, _ = random_predictions(rng, 137, n_classes, 0.6, 0.5)
        assert st.unweighted_accuracy(y, a, n_classes) == pytest.approx(ua_loop(y, a, n_classes))
        assert st.macro_f1(y, a, n_classes) == pytest.approx(f1_loop(y, a, n_classes))
        assert st.weighted_accuracy(y, a, n_classes) == pytest.approx(np.mean(y == a))


def test_classification_metrics_bundle():
    m = st.classification_metrics(Y, P, 5)
    assert m.ua == pytest.approx(st.unweighted_accuracy(Y, P, 5))
    assert m.wa == pytest.approx(0.6)
    assert m.macro_f1 == pytest.approx(st.macro_f1(Y, P, 5))
    assert m.absent_classes == (3, 4)
    assert m.n_utterances == 10 and m.n_classes == 5
    np.testing.assert_array_equal(m.confusion, st.confusion_matrix(Y, P, 5))
    d = m.to_dict()
    assert d["per_class_recall"][3] is None and d["confusion"][0] == [2, 1, 0, 0, 1]


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 5], [0, 1, 1], "outside 0..4"),
        ([0, -1], [0, 1], "outside 0..4"),
        ([0, 1], [0, 1, 1], "same length"),
        ([0.0, 1.0], [0, 1], "integer class indices"),
        ([], [], "empty"),
        ([[0, 1]], [[0, 1]], "one-dimensional"),
    ],
)
def test_metric_input_errors(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        st.unweighted_accuracy(y_true, y_pred, 5)


def test_bad_n_classes():
    with pytest.raises(ValueError, match="n_classes"):
        st.unweighted_accuracy([0], [0], 0)


# --------------------------------------------------------------------------------------------------
# Paired permutation test
# --------------------------------------------------------------------------------------------------


def test_permutation_identical_predictions_give_zero_and_p_one():
    rng = np.random.default_rng(2)
    y, a, _ = random_predictions(rng, 200, 5, 0.6, 0.6)
    for exact in (None, False):
        res = st.paired_permutation_test(y, a, a.copy(), 5, n_resamples=500, exact=exact)
        assert res.delta == 0.0 and res.pvalue == 1.0 and res.n_informative_units == 0


def test_permutation_large_difference_gives_tiny_p():
    rng = np.random.default_rng(3)
    y, a, b = random_predictions(rng, 400, 5, 0.9, 0.3)
    res = st.paired_permutation_test(y, a, b, 5, n_resamples=2000, seed=1)
    assert res.delta > 0.4 and not res.exact
    assert res.pvalue == pytest.approx(1 / 2001)  # nothing as extreme: only the +1 correction remains


def test_permutation_is_symmetric_and_deterministic():
    rng = np.random.default_rng(4)
    y, a, b = random_predictions(rng, 150, 4, 0.55, 0.45)
    ab = st.paired_permutation_test(y, a, b, 4, n_resamples=1000, seed=7)
    ba = st.paired_permutation_test(y, b, a, 4, n_resamples=1000, seed=7)
    again = st.paired_permutation_test(y, a, b, 4, n_resamples=1000, seed=7)
    assert ab.delta == pytest.approx(-ba.delta)
    assert ab.pvalue == ba.pvalue == again.pvalue
    assert ab.delta == pytest.approx(ua_loop(y, a, 4) - ua_loop(y, b, 4))


def _brute_force_p(y, a, b, n_classes, groups=None):
    """All 2^units swaps of the raw predictions, UA recomputed from scratch each time."""
    units = list(range(len(y))) if groups is None else sorted(set(groups))
    unit_of = list(range(len(y))) if groups is None else list(groups)
    obs = ua_loop(y, a, n_classes) - ua_loop(y, b, n_classes)
    count = total = 0
    for swaps in itertools.product((False, True), repeat=len(units)):
        swapped = dict(zip(units, swaps, strict=True))
        aa = [b[i] if swapped[unit_of[i]] else a[i] for i in range(len(y))]
        bb = [a[i] if swapped[unit_of[i]] else b[i] for i in range(len(y))]
        d = ua_loop(y, aa, n_classes) - ua_loop(y, bb, n_classes)
        count += abs(d) >= abs(obs) - 1e-12
        total += 1
    return count / total


def test_permutation_exact_matches_enumeration_and_scipy():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1, 0])
    a = np.array([0, 0, 1, 1, 1, 2, 2, 0, 2, 1, 0])
    b = np.array([0, 1, 1, 1, 0, 2, 0, 0, 1, 1, 2])
    res = st.paired_permutation_test(y, a, b, 3)  # 2^m <= 10000: exact enumeration
    assert res.exact and res.n_resamples == 2**res.n_informative_units
    brute = _brute_force_p(y, a, b, 3)

    def delta_ua(x, z):
        return ua_loop(y, x, 3) - ua_loop(y, z, 3)

    ref = sps.permutation_test(
        (a, b), delta_ua, permutation_type="samples", n_resamples=np.inf, vectorized=False
    )
    assert res.pvalue == pytest.approx(brute, abs=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, abs=1e-12)
    assert 0.0 < res.pvalue < 1.0
    assert res.delta == pytest.approx(ref.statistic)


def test_permutation_monte_carlo_matches_scipy():
    rng = np.random.default_rng(9)
    y, a, b = random_predictions(rng, 300, 5, 0.55, 0.50)
    res = st.paired_permutation_test(y, a, b, 5, n_resamples=20_000, seed=11)

    def delta_ua(x, z, axis):
        # per-row UA difference for scipy's vectorised calls
        out = np.zeros(np.shape(x)[:-1])
        n_present = len(np.unique(y))
        for c in np.unique(y):
            mask = y == c
            out += ((x[..., mask] == c).mean(-1) - (z[..., mask] == c).mean(-1)) / n_present
        return out

    ref = sps.permutation_test(
        (a, b),
        delta_ua,
        permutation_type="samples",
        n_resamples=5000,
        vectorized=True,
        rng=np.random.default_rng(12),
    )
    assert not res.exact
    assert 0.01 < ref.pvalue < 0.5, "the example should sit in the interesting range"
    se = math.sqrt(ref.pvalue * (1 - ref.pvalue) * (1 / 5000 + 1 / 20_000))
    assert abs(res.pvalue - ref.pvalue) < 4 * se


def test_permutation_groups():
    rng = np.random.default_rng(6)
    y, a, b = random_predictions(rng, 120, 3, 0.6, 0.5)
    # singleton groups in item order = no groups (same units, same random stream)
    plain = st.paired_permutation_test(y, a, b, 3, n_resamples=700, seed=3)
    single = st.paired_permutation_test(y, a, b, 3, groups=np.arange(120), n_resamples=700, seed=3)
    assert plain.pvalue == single.pvalue and single.n_units == 120
    # grouped exact result against brute force over group swaps
    ys, as_, bs = y[:14], a[:14], b[:14]
    groups = [f"u{i // 2}" for i in range(14)]  # 7 utterances x 2 seeds
    res = st.paired_permutation_test(ys, as_, bs, 3, groups=groups)
    assert res.exact and res.n_units == 7
    assert res.pvalue == pytest.approx(_brute_force_p(ys, as_, bs, 3, groups), abs=1e-12)


def test_permutation_groups_length_checked():
    with pytest.raises(ValueError, match="one entry per utterance"):
        st.paired_permutation_test([0, 1], [0, 1], [1, 1], 2, groups=["x"])


# --------------------------------------------------------------------------------------------------
# McNemar
# --------------------------------------------------------------------------------------------------


def _mcnemar_example(n_both, n_a, n_b, n_none):
    """Pairs with the given 2x2 table; class 0 is always the truth."""
    y = np.zeros(n_both + n_a + n_b + n_none, dtype=int)
    a = np.array([0] * n_both + [0] * n_a + [1] * n_b + [1] * n_none)
    b = np.array([0] * n_both + [1] * n_a + [0] * n_b + [1] * n_none)
    return y, a, b


def test_mcnemar_exact_against_binomtest_and_statsmodels():
    y, a, b = _mcnemar_example(40, 12, 3, 5)
    res = st.mcnemar_test(y, a, b)
    np.testing.assert_array_equal(res.table, [[40, 12], [3, 5]])
    assert res.exact and res.n_discordant == 15 and res.statistic == 3
    assert res.pvalue == pytest.approx(sps.binomtest(3, 15, 0.5).pvalue)
    # by hand: 2 * P(X <= 3), X ~ Bin(15, 1/2)
    hand = 2 * sum(math.comb(15, k) for k in range(4)) / 2**15
    assert res.pvalue == pytest.approx(hand)
    assert res.pvalue == pytest.approx(sm_mcnemar([[40, 12], [3, 5]], exact=True).pvalue)
    assert res.discordance == pytest.approx(15 / 60)


def test_mcnemar_chi_square_branch():
    y, a, b = _mcnemar_example(100, 30, 14, 20)
    res = st.mcnemar_test(y, a, b)
    assert not res.exact and res.n_discordant == 44
    stat = (abs(30 - 14) - 1) ** 2 / 44
    assert res.statistic == pytest.approx(stat)
    assert res.pvalue == pytest.approx(sps.chi2.sf(stat, 1))
    assert res.pvalue == pytest.approx(sm_mcnemar([[100, 30], [14, 20]], exact=False, correction=True).pvalue)
    forced = st.mcnemar_test(y, a, b, exact=True)
    assert forced.exact and forced.pvalue == pytest.approx(sps.binomtest(14, 44, 0.5).pvalue)


def test_mcnemar_no_discordant_pairs():
    y, a, b = _mcnemar_example(10, 0, 0, 4)
    res = st.mcnemar_test(y, a, b, exact=False)
    assert res.pvalue == 1.0 and res.n_discordant == 0


# --------------------------------------------------------------------------------------------------
# Cluster bootstrap
# --------------------------------------------------------------------------------------------------


def test_bootstrap_one_utterance_per_cluster_is_ordinary_bootstrap_wa():
    rng = np.random.default_rng(8)
    y, a, _ = random_predictions(rng, 250, 4, 0.6, 0.5)
    ci = st.cluster_bootstrap_ci(y, a, np.arange(250), 4, metric="wa", n_resamples=4000, seed=1)
    ref = sps.bootstrap(
        ((a == y).astype(float),),
        np.mean,
        method="percentile",
        n_resamples=4000,
        rng=np.random.default_rng(2),
    )
    assert ci.estimate == pytest.approx(np.mean(a == y))
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=0.012)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=0.012)
    assert ci.std_error == pytest.approx(ref.standard_error, rel=0.1)
    assert ci.method == "percentile" and ci.n_clusters == 250


def test_bootstrap_one_utterance_per_cluster_is_ordinary_bootstrap_ua():
    rng = np.random.default_rng(9)
    y, a, _ = random_predictions(rng, 200, 4, 0.6, 0.5)
    ci = st.cluster_bootstrap_ci(y, a, list(range(200)), 4, n_resamples=2000, seed=3)
    ref = sps.bootstrap(
        (y, a),
        lambda t, p: ua_loop(t, p, 4),
        paired=True,
        vectorized=False,
        method="percentile",
        n_resamples=1000,
        rng=np.random.default_rng(4),
    )
    assert ci.estimate == pytest.approx(ua_loop(y, a, 4))
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=0.02)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=0.02)
    assert ci.low <= ci.estimate <= ci.high


def test_bootstrap_two_clusters_by_hand():
    # Cluster "s1" all right, "s2" all wrong, equal sizes: a resample holds (s1,s1), (s1,s2) or
    # (s2,s2) with probabilities 1/4, 1/2, 1/4, so WA* is 1, 0.5 or 0: the 95 % interval is [0, 1]
    # and the bootstrap standard deviation sqrt(1/8).
    y = np.zeros(10, dtype=int)
    pred = np.array([0] * 5 + [1] * 5)
    clusters = ["s1"] * 5 + ["s2"] * 5
    ci = st.cluster_bootstrap_ci(y, pred, clusters, 2, metric=st.WA, n_resamples=4000, seed=0)
    assert (ci.estimate, ci.low, ci.high) == (0.5, 0.0, 1.0)
    assert ci.std_error == pytest.approx(math.sqrt(1 / 8), abs=0.02)


def test_bootstrap_wider_with_few_correlated_clusters():
    # 6 speakers x 40 utterances; correctness is decided per speaker (all right or all wrong).
    y = np.tile(np.arange(4), 60)
    speaker = np.repeat(np.arange(6), 40)
    right = np.isin(speaker, [0, 1, 2, 3])
    pred = np.where(right, y, (y + 1) % 4)
    by_speaker = st.cluster_bootstrap_ci(y, pred, speaker, 4, n_resamples=2000)
    by_utterance = st.cluster_bootstrap_ci(y, pred, np.arange(240), 4, n_resamples=2000)
    assert by_speaker.estimate == by_utterance.estimate == pytest.approx(4 / 6)
    width_s = by_speaker.high - by_speaker.low
    width_u = by_utterance.high - by_utterance.low
    assert width_s > 2.5 * width_u
    for ci in (by_speaker, by_utterance):
        assert ci.low <= ci.estimate <= ci.high


def test_bootstrap_needs_two_clusters():
    with pytest.raises(ValueError, match="at least 2 clusters"):
        st.cluster_bootstrap_ci([0, 1, 1], [0, 1, 0], ["spk"] * 3, 2)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        st.cluster_bootstrap_diff_ci([0, 1], [0, 1], [1, 1], [7, 7], 2)


def test_bootstrap_argument_errors():
    with pytest.raises(ValueError, match="unknown metric"):
        st.cluster_bootstrap_ci([0, 1], [0, 1], [0, 1], 2, metric="auc")
    with pytest.raises(ValueError, match="level"):
        st.cluster_bootstrap_ci([0, 1], [0, 1], [0, 1], 2, level=95)
    with pytest.raises(ValueError, match="one entry per utterance"):
        st.cluster_bootstrap_ci([0, 1], [0, 1], [0], 2)


def test_bootstrap_macro_f1_and_callable_metric():
    rng = np.random.default_rng(10)
    y, a, _ = random_predictions(rng, 120, 3, 0.6, 0.5)
    spk = np.repeat(np.arange(12), 10)
    f1 = st.cluster_bootstrap_ci(y, a, spk, 3, metric=st.MACRO_F1, n_resamples=300)
    assert f1.estimate == pytest.approx(f1_loop(y, a, 3))
    assert f1.low <= f1.estimate <= f1.high

    def recall_of_class_0(cm):
        return cm[..., 0, 0] / cm[..., 0, :].sum(-1)

    r0 = st.cluster_bootstrap_ci(y, a, spk, 3, metric=recall_of_class_0, n_resamples=300)
    assert r0.metric == "recall_of_class_0"
    assert r0.estimate == pytest.approx(np.mean(a[y == 0] == 0))


def test_bootstrap_diff_ci():
    rng = np.random.default_rng(11)
    y, a, b = random_predictions(rng, 400, 5, 0.75, 0.4)
    spk = np.repeat(np.arange(20), 20)
    ci = st.cluster_bootstrap_diff_ci(y, a, b, spk, 5, n_resamples=1000, seed=2)
    assert ci.difference and ci.estimate == pytest.approx(ua_loop(y, a, 5) - ua_loop(y, b, 5))
    assert 0 < ci.low <= ci.estimate <= ci.high
    same = st.cluster_bootstrap_diff_ci(y, a, a, spk, 5, n_resamples=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    again = st.cluster_bootstrap_diff_ci(y, a, b, spk, 5, n_resamples=1000, seed=2)
    assert (again.low, again.high) == (ci.low, ci.high)


# --------------------------------------------------------------------------------------------------
# Holm
# --------------------------------------------------------------------------------------------------


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    res = st.holm_correction(p, alpha=0.05)
    np.testing.assert_allclose(res.adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_array_equal(res.reject, [True, False, False, True])
    rej, adj, _, _ = multipletests(p, alpha=0.05, method="holm")
    np.testing.assert_allclose(res.adjusted, adj)
    np.testing.assert_array_equal(res.reject, rej)
    assert res.n_tests == 4


def test_holm_nan_and_edges():
    res = st.holm_correction([0.01, np.nan, 0.04])
    # family of 2: 0.01*2 = 0.02, 0.04*1 -> max(0.02, 0.04) = 0.04
    np.testing.assert_allclose(res.adjusted, [0.02, np.nan, 0.04])
    np.testing.assert_array_equal(res.reject, [True, False, True])
    assert res.n_tests == 2
    assert st.holm_correction([]).adjusted.size == 0
    assert st.holm_correction([0.3, 0.9]).adjusted.tolist() == [0.6, 0.9]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        st.holm_correction([1.5])


# --------------------------------------------------------------------------------------------------
# Minimum detectable difference
# --------------------------------------------------------------------------------------------------


def _connor_n(delta, psi, alpha=0.05, power=0.8):
    z_a, z_b = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
    return (z_a * math.sqrt(psi) + z_b * math.sqrt(psi - delta**2)) ** 2 / delta**2


def test_mdd_paired_by_hand():
    # n = 1000, psi = 0.2: worked by hand with z = 1.959964, 0.841621 -> 0.039574
    mdd = st.minimum_detectable_difference(1000, 0.5, discordance=0.2)
    assert mdd == pytest.approx(0.039574, abs=2e-6)
    assert _connor_n(mdd, 0.2) == pytest.approx(1000)  # inverse of the sample-size formula
    # default discordance 2p(1-p); large-n approximation (z_a + z_b) sqrt(psi / n)
    mdd = st.minimum_detectable_difference(5000, 0.7)
    assert _connor_n(mdd, 2 * 0.7 * 0.3) == pytest.approx(5000)
    assert mdd == pytest.approx((1.959964 + 0.841621) * math.sqrt(0.42 / 5000), rel=0.01)


def test_mdd_paired_shape():
    values = [st.minimum_detectable_difference(n, 0.6) for n in (50, 100, 400, 1600)]
    assert all(x > y for x, y in itertools.pairwise(values))
    assert st.minimum_detectable_difference(400, 0.6, discordance=0.1) < values[2]
    assert st.minimum_detectable_difference(3, 0.6) == math.inf
    with pytest.raises(ValueError, match="baseline_accuracy"):
        st.minimum_detectable_difference(100, 1.2)


def test_mdd_independent_by_hand():
    n, p = 500, 0.6
    mdd = st.minimum_detectable_difference(n, p, method="independent")
    # Cohen's h for two independent samples of n: h = (z_a + z_b) sqrt(2 / n)
    h = (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * math.sqrt(2 / n)
    hand = math.sin(math.asin(math.sqrt(p)) + h / 2) ** 2 - p
    assert mdd == pytest.approx(hand, rel=1e-3)
    # With independent errors (the paired default psi = 2p(1-p)) pairing gains nothing: the two agree;
    # systems that share errors (smaller psi) make the paired MDD clearly smaller.
    assert st.minimum_detectable_difference(n, p) == pytest.approx(mdd, rel=0.05)
    assert st.minimum_detectable_difference(n, p, discordance=0.2) < 0.75 * mdd


def test_mdd_ua_points_and_note():
    balanced = st.mdd_ua_points([100] * 4, 0.6)
    assert balanced == pytest.approx(100 * st.minimum_detectable_difference(400, 0.6))
    assert st.mdd_ua_points(400, 0.6) == pytest.approx(balanced)
    counts = [200, 100, 60, 40]  # imbalanced: n_eff = 16 / (1/200 + 1/100 + 1/60 + 1/40)
    n_eff = 16 / (1 / 200 + 1 / 100 + 1 / 60 + 1 / 40)
    assert st.mdd_ua_points(counts, 0.6) == pytest.approx(100 * st.minimum_detectable_difference(n_eff, 0.6))
    assert st.mdd_ua_points(counts, 0.6) > balanced
    note = st.detectability_note(counts, 0.6)
    assert note.startswith(f"a UA difference must reach {st.mdd_ua_points(counts, 0.6):.1f} points")
    assert "power 0.8" in note and "α = 0.05" in note
    assert "too small" in st.detectability_note(2, 0.6)


# --------------------------------------------------------------------------------------------------
# Seeds and pooling
# --------------------------------------------------------------------------------------------------


def test_mean_std_over_seeds():
    s = st.mean_std_over_seeds([0.58, 0.61, 0.55])
    assert s.mean == pytest.approx(0.58)
    assert s.std == pytest.approx(np.std([0.58, 0.61, 0.55], ddof=1))
    assert s.std == pytest.approx(0.03)  # deviations -0, +0.03, -0.03: sqrt(0.0018 / 2)
    assert s.n_seeds == 3 and not s.single_seed
    assert s.format() == "58.00 ± 3.00"
    one = st.mean_std_over_seeds([0.5])
    assert one.single_seed and math.isnan(one.std) and one.format() == "50.00 (1 seed)"
    with pytest.raises(ValueError, match="non-empty"):
        st.mean_std_over_seeds([])
    with pytest.raises(ValueError, match="not finite"):
        st.mean_std_over_seeds([0.5, float("nan")])


def _records(pred_by_seed, ids, y):
    return [(s, list(ids), list(y), list(p)) for s, p in pred_by_seed.items()]


def test_pool_predictions_aligns_by_seed_and_id():
    ids = ["u1", "u2", "u3"]
    y = [0, 1, 2]
    recs_a = _records({1: [0, 1, 1], 0: [0, 0, 2]}, ids, y)
    # system B lists its utterances in another order
    recs_b = [(0, ["u3", "u1", "u2"], [2, 0, 1], [2, 0, 0]), (1, ["u2", "u3", "u1"], [1, 2, 0], [1, 0, 1])]
    pooled = st.pool_predictions(recs_a, recs_b)
    assert pooled.seeds.tolist() == [0, 0, 0, 1, 1, 1]
    assert pooled.utterance_ids.tolist() == ["u1", "u2", "u3"] * 2
    assert pooled.y_true.tolist() == [0, 1, 2, 0, 1, 2]
    assert pooled.pred_a.tolist() == [0, 0, 2, 0, 1, 1]
    assert pooled.pred_b.tolist() == [0, 0, 2, 1, 1, 0]
    assert (pooled.n_items, pooled.n_seeds, pooled.n_utterances) == (6, 2, 3)


def test_pool_predictions_refuses_mismatches():
    ids, y = ["u1", "u2"], [0, 1]
    a = _records({0: [0, 1], 1: [0, 1]}, ids, y)
    with pytest.raises(ValueError, match="different seeds"):
        st.pool_predictions(a, _records({0: [0, 1], 2: [0, 1]}, ids, y))
    with pytest.raises(ValueError, match=r"different utterances.*'u2'.*'u9'"):
        st.pool_predictions(a, _records({0: [0, 1], 1: [0, 1]}, ["u1", "u9"], y))
    with pytest.raises(ValueError, match="y_true differs"):
        st.pool_predictions(a, _records({0: [0, 1], 1: [0, 1]}, ids, [0, 0]))
    with pytest.raises(ValueError, match="duplicate utterance ids"):
        st.pool_predictions(_records({0: [0, 1]}, ["u1", "u1"], y), a)
    with pytest.raises(ValueError, match="more than one record"):
        st.pool_predictions(a + a[:1], a)
    bad_labels = [(0, ids, [0, 1], [0, 1]), (1, ids, [1, 1], [0, 1])]
    with pytest.raises(ValueError, match="utterance 'u1' has true label 0 under seed 0 but 1 under seed 1"):
        st.pool_predictions(bad_labels, bad_labels)
    with pytest.raises(ValueError, match="no records"):
        st.pool_predictions([], a)


# --------------------------------------------------------------------------------------------------
# compare_systems
# --------------------------------------------------------------------------------------------------


def _three_seed_example(rng, n_utt=90, n_classes=4, acc_a=0.7, acc_b=0.55, identical_seeds=False):
    ids = [f"utt{i:03d}" for i in range(n_utt)]
    y = rng.integers(0, n_classes, n_utt)

    def predictions(acc):
        wrong = (y + rng.integers(1, n_classes, n_utt)) % n_classes
        return np.where(rng.random(n_utt) < acc, y, wrong)

    first = predictions(acc_a), predictions(acc_b)
    recs_a, recs_b = [], []
    for seed in range(3):
        pa, pb = first if identical_seeds else (predictions(acc_a), predictions(acc_b))
        recs_a.append((seed, ids, y, pa))
        recs_b.append((seed, ids, y, pb))
    speakers = {u: f"spk{i % 9}" for i, u in enumerate(ids)}
    return st.pool_predictions(recs_a, recs_b), speakers


def test_compare_systems_consistent_with_parts():
    pooled, speakers = _three_seed_example(np.random.default_rng(12))
    res = st.compare_systems(pooled, 4, speakers=speakers, n_permutations=2000, n_bootstrap=500, seed=5)
    assert (res.n_items, res.n_utterances, res.n_seeds, res.n_clusters) == (270, 90, 3, 9)
    assert res.cluster_unit == "speaker" and res.permutation_unit == "utterance"
    assert res.delta_ua == pytest.approx(ua_loop(pooled.y_true, pooled.pred_a, 4) - res.ua_b)
    perm = st.paired_permutation_test(
        pooled.y_true, pooled.pred_a, pooled.pred_b, 4, groups=pooled.utterance_ids, n_resamples=2000, seed=5
    )
    assert res.permutation_p == perm.pvalue
    assert res.mcnemar_p == st.mcnemar_test(pooled.y_true, pooled.pred_a, pooled.pred_b).pvalue
    ci = st.cluster_bootstrap_diff_ci(
        pooled.y_true,
        pooled.pred_a,
        pooled.pred_b,
        [speakers[u] for u in pooled.utterance_ids],
        4,
        n_resamples=500,
        seed=5,
    )
    assert (res.ci_low, res.ci_high) == (ci.low, ci.high)
    assert res.ci_low <= res.delta_ua <= res.ci_high
    assert res.wa_a == pytest.approx(np.mean(pooled.pred_a == pooled.y_true))
    no_spk = st.compare_systems(pooled, 4, n_permutations=200, n_bootstrap=100)
    assert no_spk.cluster_unit == "utterance" and no_spk.n_clusters == 90


def test_compare_systems_identical_and_large_difference():
    pooled, speakers = _three_seed_example(np.random.default_rng(13), acc_a=0.6, acc_b=0.6)
    same = st.pool_predictions(
        [(s, ids, t, p) for s, ids, t, p in _split(pooled, pooled.pred_a)],
        [(s, ids, t, p) for s, ids, t, p in _split(pooled, pooled.pred_a)],
    )
    res = st.compare_systems(same, 4, speakers=speakers, n_permutations=500, n_bootstrap=200)
    assert res.delta_ua == 0.0 and res.permutation_p == 1.0 and res.mcnemar_p == 1.0
    assert res.ci_low == res.ci_high == 0.0
    far, speakers = _three_seed_example(np.random.default_rng(14), n_utt=200, acc_a=0.95, acc_b=0.3)
    res = st.compare_systems(far, 4, speakers=speakers, n_permutations=1000, n_bootstrap=200)
    assert res.permutation_p == pytest.approx(1 / 1001) and res.mcnemar_p < 1e-10 and res.ci_low > 0.3


def _split(pooled, pred):
    for seed in np.unique(pooled.seeds):
        m = pooled.seeds == seed
        yield int(seed), pooled.utterance_ids[m].tolist(), pooled.y_true[m], pred[m]


def test_utterance_unit_does_not_count_identical_seeds_as_evidence():
    # Three seeds with identical predictions carry the evidence of one: with utterances as the
    # unit the test equals the single-seed test; swapping items independently overstates it.
    pooled, _ = _three_seed_example(
        np.random.default_rng(15), n_utt=12, acc_a=0.8, acc_b=0.4, identical_seeds=True
    )
    one = pooled.seeds == 0
    single = st.paired_permutation_test(pooled.y_true[one], pooled.pred_a[one], pooled.pred_b[one], 4)
    by_utt = st.compare_systems(pooled, 4, n_permutations=10_000, n_bootstrap=100)
    by_item = st.compare_systems(pooled, 4, permutation_unit="item", n_permutations=10_000, n_bootstrap=100)
    assert by_utt.permutation_exact and single.exact
    assert by_utt.permutation_p == pytest.approx(single.pvalue, abs=1e-12)
    assert by_item.permutation_p < by_utt.permutation_p


def test_compare_systems_argument_errors():
    pooled, speakers = _three_seed_example(np.random.default_rng(16), n_utt=20)
    with pytest.raises(ValueError, match="needs the speakers"):
        st.compare_systems(pooled, 4, permutation_unit="speaker")
    with pytest.raises(ValueError, match="no speaker for 1 utterances"):
        st.compare_systems(pooled, 4, speakers={k: v for k, v in list(speakers.items())[1:]})
    res = st.compare_systems(pooled, 4, speakers=speakers, permutation_unit="speaker", n_bootstrap=50)
    assert res.permutation_exact  # 9 speakers: 2^9 swaps enumerated
