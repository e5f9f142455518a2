"""xlbench.report.significance: every statistic a table prints, checked against xlbench.stats
(itself checked against scipy/statsmodels in test_stats.py), scipy or a brute-force computation;
the pre-specified family (every system against the lower bound, Holm within the table); and the
worked example of docs/statistics.md, recomputed here by enumeration."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from tests.data.fake_records import BASE_CONFIG, fake_test_set, make_record, table_scenario
from tests.report_utils import cells, hand_holm, header, loaded, pooled, scenario_groups
from xlbench import stats
from xlbench.report.formatting import fmt_p
from xlbench.report.markdown import render_markdown
from xlbench.report.significance import N_BOOTSTRAP, N_PERMUTATIONS, score_tables
from xlbench.report.tables import build_tables

DOC = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"


def column(md: str, label: str, name: str) -> str:
    return cells(md, label)[header(md).index(name)]


def mcnemar_by_hand(y, a, b) -> float:
    """McNemar as statsmodels computes it, written out: exact binomial below 25 discordant pairs,
    else chi-square with continuity correction."""
    n_ab = int(np.sum((a == y) & (b != y)))
    n_ba = int(np.sum((a != y) & (b == y)))
    if n_ab + n_ba < stats.MCNEMAR_EXACT_BELOW:
        return sps.binomtest(min(n_ab, n_ba), n_ab + n_ba, 0.5).pvalue
    return sps.chi2.sf((abs(n_ab - n_ba) - 1) ** 2 / (n_ab + n_ba), df=1)


# -- one table, every cell --------------------------------------------------------------------------


def test_every_statistic_in_a_table_matches_stats_scipy_or_a_hand_computation() -> None:
    recs = table_scenario()
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    (scored,) = score_tables(build_tables(loaded(recs)))
    versus = {r.system.label: r.versus_lower for r in scored.rows}
    groups = scenario_groups(recs)
    means = {k: np.mean([r.metrics["target"].ua for r in v]) for k, v in groups.items()}
    lower, upper = means["crosslingual (lower bound)"], means["multilingual (upper bound)"]
    ly, lp, _, lids = pooled(groups["crosslingual (lower bound)"])
    raw_p = {}
    for label, rs in groups.items():
        row = dict(zip(header(md), cells(md, label), strict=True))
        uas = [r.metrics["target"].ua for r in rs]
        # UA mean ± sample std over seeds
        assert row["target UA %"].strip("*") == f"{100 * np.mean(uas):.2f} ± {100 * np.std(uas, ddof=1):.2f}"
        # 95% speaker-bootstrap interval of the seed-pooled UA
        yt, yp, spk, ids = pooled(rs)
        ci = stats.cluster_bootstrap_ci(yt, yp, spk, 5, metric="ua", n_resamples=N_BOOTSTRAP, seed=0)
        assert row["UA 95% CI"] == f"[{100 * ci.low:.1f}, {100 * ci.high:.1f}]"
        # Δ against the lower bound (means over seeds) and the share of the gap closed, by hand
        assert row["Δ vs lower"] == f"{100 * (means[label] - lower):+.2f}"
        assert row["gap closed"] == f"{100 * (means[label] - lower) / (upper - lower):.0f}%"
        src = [r.metrics["source"].ua for r in rs]
        assert row["source UA %"] == f"{100 * np.mean(src):.2f} ± {100 * np.std(src, ddof=1):.2f}"
        assert row["seeds"] == "3" and row["records"] == "3" and row["version"] == "v1 · xlbench 0.1.0"
        if label == "crosslingual (lower bound)":
            assert row["p vs lower (Holm)"] == "(reference)" and row["Δ 95% CI"] == "—"
            continue
        # the paired speaker-bootstrap interval of ΔUA against the lower bound, same pairs
        assert np.array_equal(ly, yt) and lids == ids
        dci = stats.cluster_bootstrap_diff_ci(yt, yp, lp, spk, 5, metric="ua", n_resamples=N_BOOTSTRAP, seed=0)
        assert dci.estimate == pytest.approx(means[label] - lower)  # same seeds: pooled Δ = Δ of the means
        assert row["Δ 95% CI"] == f"[{100 * dci.low:+.1f}, {100 * dci.high:+.1f}]"
        if label == "multilingual (upper bound)":
            assert row["p vs lower (Holm)"] == "(not tested)" and row["McNemar p"] == "—"
            continue
        # the permutation test against the lower bound: the same test, called directly
        perm = stats.paired_permutation_test(yt, yp, lp, 5, groups=ids, n_resamples=N_PERMUTATIONS, seed=0)
        raw_p[label] = perm.pvalue
        assert versus[label].p_raw == perm.pvalue and versus[label].seeds == (0, 1, 2)  # not just as printed
        assert row["McNemar p"] == fmt_p(mcnemar_by_hand(yt, yp, lp))
    # Holm across the table: every method against the lower bound, adjusted together
    labels = list(raw_p)
    adjusted = dict(zip(labels, hand_holm([raw_p[k] for k in labels]), strict=True))
    for label in labels:
        assert column(md, label, "p vs lower (Holm)") == fmt_p(adjusted[label])
    # the best system is bold, and nothing is tested against it
    assert column(md, "pseudolabel mode=hard", "target UA %").startswith("**")
    assert "best" not in " ".join(header(md)) and "†" not in md
    # detectability of the test set, at the lower bound's UA
    assert stats.detectability_note([8] * 5, lower) in md
    assert "40 Italian utterances from 4 speakers" in md
    assert "Holm correction over the 3 comparison(s) with the lower bound" in md


def test_the_family_is_every_system_but_the_bounds() -> None:
    recs = table_scenario()
    # a second lower-bound configuration is a system like any other: compared, and in the family
    recs += [make_record("crosslingual", "italian", s, config={**BASE_CONFIG, "epochs": 5}) for s in (0, 1)]
    (scored,) = score_tables(build_tables(loaded(recs)))
    by_label = {r.system.label: r for r in scored.rows}
    reference = scored.table.lower
    assert reference is not None and reference.label == "crosslingual epochs=100"  # most records
    assert by_label["crosslingual epochs=100"].versus_lower is None
    upper = by_label["multilingual"].versus_lower
    assert upper is not None and not upper.tested and upper.p_holm is None
    family = [r for r in scored.rows if r.versus_lower is not None and r.versus_lower.tested]
    assert sorted(r.system.label for r in family) == [
        "crosslingual epochs=5", "dann", "pseudolabel mode=hard", "pseudolabel mode=soft"]
    assert scored.family_size == 4
    raw = [r.versus_lower.p_raw for r in family]
    assert [r.versus_lower.p_holm for r in family] == pytest.approx(stats.holm_correction(raw).adjusted.tolist())
    assert [r.versus_lower.p_holm for r in family] == pytest.approx(hand_holm(raw))
    # the extra configuration ran two seeds: compared on the common ones, and said so
    assert by_label["crosslingual epochs=5"].note == "compared with the lower bound on the common seeds 0,1 only"


def test_seed_mismatch_is_flagged_and_compared_on_common_seeds() -> None:
    recs = [r for r in table_scenario() if not (r.method.name == "dann" and r.task.seed == 2)]
    (scored,) = score_tables(build_tables(loaded(recs)))
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    assert column(md, "dann", "seeds") == "2 ⚠"
    assert "dann: compared with the lower bound on the common seeds 0,1 only" in md
    assert "only 2 seeds" in md and "not all run with the same seeds" in md
    dann = next(r for r in scored.rows if r.system.method == "dann")
    yt, yp, _, ids = pooled([r for r in recs if r.method.name == "dann"], seeds=(0, 1))
    _, lp, _, _ = pooled([r for r in recs if r.method.name == "crosslingual"], seeds=(0, 1))
    expected = stats.paired_permutation_test(yt, yp, lp, 5, groups=ids, n_resamples=N_PERMUTATIONS, seed=0)
    assert dann.versus_lower.seeds == (0, 1) and dann.versus_lower.p_raw == expected.pvalue
    assert dann.versus_lower.delta == pytest.approx(expected.delta)


def test_without_a_lower_bound_nothing_is_tested() -> None:
    recs = [r for r in table_scenario() if r.method.name != "crosslingual"]
    (scored,) = score_tables(build_tables(loaded(recs)))
    assert scored.family_size == 0 and all(r.versus_lower is None and r.delta_lower is None for r in scored.rows)
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    assert "No lower bound (crosslingual) was run in this setting: no system is tested." in md
    assert column(md, "dann", "p vs lower (Holm)") == "—" and column(md, "dann", "Δ 95% CI") == "—"
    assert "evaluated at the best system's UA" in md


# -- the worked example of docs/statistics.md ---------------------------------------------------------

#: Which of the 8 test utterances of each of the 3 speakers every system gets right (utterance
#: k of class c of a speaker is position 2c + k); docs/statistics.md shows the same table.
WORKED_CORRECT = {
    "crosslingual": ([0, 2, 4], [0, 2, 4, 6], [1, 3, 5]),
    "A": ([0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5], [0, 1, 3, 5, 7]),
    "B": ([0, 1, 2], [0, 1, 2, 4, 6, 7], [1, 3]),
}


def worked_example() -> tuple[np.ndarray, list[str], dict[str, np.ndarray], list]:
    _, speakers, y = fake_test_set("french", 4, n_speakers=3, per_class=2)
    preds, recs = {}, []
    for name, per_speaker in WORKED_CORRECT.items():
        pred = (y + 1) % 4  # wrong answers go to the next class
        for s, right in enumerate(per_speaker):
            pred[[8 * s + i for i in right]] = y[[8 * s + i for i in right]]
        preds[name] = pred
        method, cfg = ("crosslingual", BASE_CONFIG) if name == "crosslingual" else ("dann", {**BASE_CONFIG, "v": name})
        recs.append(make_record(method, "french", 0, emotions=4, config=cfg, target_pred=pred, n_speakers=3,
                                per_class=2))
    return y, speakers, preds, recs


def ua_by_hand(y, pred, rows) -> float:
    """UA of the utterances listed in ``rows`` (with repeats), by counting."""
    recalls = []
    for c in range(4):
        idx = [i for i in rows if y[i] == c]
        recalls.append(sum(pred[i] == c for i in idx) / len(idx))
    return sum(recalls) / 4


def doc_table() -> dict[str, list[str]]:
    """The worked example's table in docs/statistics.md: method -> cells."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- worked-example-table -->")[1]
    rows = [ln for ln in block.strip().splitlines() if ln.startswith("|")]
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    return {"header": head, **{c[0]: c for c in ([x.strip() for x in r.strip("|").split("|")] for r in rows[2:])}}


def test_worked_example_of_the_statistics_doc_by_enumeration() -> None:
    y, speakers, preds, recs = worked_example()
    md = render_markdown(loaded(recs), Path("/x/r"), Path("/x"))
    label = {"crosslingual": "crosslingual", "A": "dann v=A", "B": "dann v=B"}
    n = len(y)
    everyone = list(range(n))
    lower = preds["crosslingual"]
    raw_p, expected = {}, {}
    for name in ("A", "B"):
        a = preds[name]
        delta = ua_by_hand(y, a, everyone) - ua_by_hand(y, lower, everyone)
        # permutation test by enumeration: swap the two systems' predictions on every subset of the
        # utterances where they differ (on the others a swap changes nothing), recount UA each time
        differ = [i for i in everyone if (a[i] == y[i]) != (lower[i] == y[i])]
        hits = 0
        for swap in itertools.product((False, True), repeat=len(differ)):
            a2, l2 = a.copy(), lower.copy()
            for i, s in zip(differ, swap, strict=True):
                if s:
                    a2[i], l2[i] = lower[i], a[i]
            hits += abs(ua_by_hand(y, a2, everyone) - ua_by_hand(y, l2, everyone)) >= abs(delta) - 1e-12
        raw_p[name] = hits / 2 ** len(differ)
        # balanced classes and one seed: ΔUA is (wins - losses) / n, so the test is the sign test
        wins = sum(a[i] == y[i] for i in differ)
        assert raw_p[name] == pytest.approx(sps.binomtest(wins, len(differ), 0.5).pvalue)
        # speaker bootstrap by enumeration: all 3^3 equally likely draws of three speakers
        by_speaker = [[i for i in everyone if speakers[i] == s] for s in sorted(set(speakers))]
        draws = sorted(
            ua_by_hand(y, a, [i for g in d for i in by_speaker[g]]) - ua_by_hand(y, lower, [i for g in d for i in
                                                                                            by_speaker[g]])
            for d in itertools.product(range(3), repeat=3)
        )
        # percentile interval of the exact bootstrap distribution (inverse CDF at 2.5% and 97.5%)
        low, high = draws[int(np.ceil(0.025 * 27)) - 1], draws[int(np.ceil(0.975 * 27)) - 1]
        expected[name] = {"Δ vs lower": f"{100 * delta:+.2f}", "Δ 95% CI": f"[{100 * low:+.1f}, {100 * high:+.1f}]",
                          "McNemar p": fmt_p(mcnemar_by_hand(y, a, lower))}
    # the UA intervals of every system, by the same enumeration
    by_speaker = [[i for i in everyone if speakers[i] == s] for s in sorted(set(speakers))]
    for name, pred in preds.items():
        draws = sorted(ua_by_hand(y, pred, [i for g in d for i in by_speaker[g]])
                       for d in itertools.product(range(3), repeat=3))
        low, high = draws[0], draws[-1]  # the 2.5% and 97.5% quantiles of 27 draws: the extremes
        expected.setdefault(name, {})["UA 95% CI"] = f"[{100 * low:.1f}, {100 * high:.1f}]"
    adjusted = dict(zip(raw_p, hand_holm(list(raw_p.values())), strict=True))
    assert raw_p == {"A": pytest.approx(22 / 1024), "B": 1.0}  # the numbers the doc derives by hand
    assert adjusted["A"] == pytest.approx(44 / 1024) and adjusted["A"] < 0.05
    doc = doc_table()
    for name in ("A", "B"):
        expected[name]["p vs lower (Holm)"] = fmt_p(adjusted[name])
        expected[name]["target UA %"] = f"{100 * ua_by_hand(y, preds[name], everyone):.2f} (1 seed)"
        for col, value in expected[name].items():
            rendered = column(md, label[name], col)
            assert rendered.strip("*") == value, (name, col)
            # the doc shows exactly what the code prints
            assert doc[name][doc["header"].index(col)].strip("*") == value, (name, col)
    lower_row = {"target UA %": "41.67 (1 seed)", "UA 95% CI": expected["crosslingual"]["UA 95% CI"],
                 "Δ vs lower": "+0.00", "Δ 95% CI": "—", "p vs lower (Holm)": "(reference)", "McNemar p": "—"}
    for col, value in lower_row.items():
        assert column(md, "crosslingual", col) == value
        assert doc["crosslingual (lower bound)"][doc["header"].index(col)] == value
    # the doc's sentences quote the same numbers
    text = DOC.read_text(encoding="utf-8")
    assert re.search(r"22\s*/\s*1,?024 = 0\.0215", text) and "0.043" in text
    mdd = re.search(r"must reach (\d+\.\d) points", md).group(1)
    assert f"must reach {mdd} points" in text
