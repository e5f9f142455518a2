"""xlbench.report.markdown: the leaderboard page. Paper rows only for real corpora and a paper
encoder; the synthetic corpus said so; no NaN printed; a golden markdown snapshot whose numbers
are checked independently (below, and cell by cell in test_report_significance.py).

Regenerate the golden file after an intended change of the markdown with
``XLBENCH_UPDATE_GOLDEN=1 pytest tests/test_report_markdown.py -k golden``, review the diff, and
check every changed number by an independent computation, as
``test_golden_numbers_are_independently_checked`` does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy import stats as sps

from tests.data.fake_records import BASE_CONFIG, fake_test_set, make_record, predictions_with_accuracy, table_scenario
from tests.report_utils import cells, golden_board, hand_holm, header, loaded, pooled, scenario_groups
from xlbench.paper import TABLE8_CAPTION_NOTE, paper_results
from xlbench.report.board import render
from xlbench.report.markdown import render_markdown

GOLDEN = Path(__file__).parent / "data" / "leaderboard_golden.md"


def column(md: str, label: str, name: str) -> str:
    return cells(md, label)[header(md).index(name)]


def test_synthetic_tables_say_so_and_show_no_paper_rows() -> None:
    md = render_markdown(loaded(table_scenario()), Path("/x/records"), Path("/x"))
    assert md.splitlines()[1] == "# xlbench leaderboard (synthetic corpus)"
    assert "### Italian · N_k = 0 · 5 emotions (synthetic corpus;" in md
    assert "paper (" not in md and "published" not in md.split("## Configurations")[0].split("How to read")[1]


def test_real_corpus_tables_show_the_matching_paper_numbers() -> None:
    recs = table_scenario(target="italian", synthetic=False, encoder="hubert", n_labeled=100)
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    assert "### Italian · N_k = 100 · 5 emotions (real corpora; hubert, frozen" in md
    # Table 7 (τ) and Table 8 (rebalancing) at N_k = 100, with the note on Table 8's caption
    for p in paper_results(target="italian", n_labeled=100, emotions=5):
        row = dict(zip(header(md), cells(md, f"{p.row_label}: Table {p.table[-1]}, {p.label}"), strict=True))
        assert row["target UA %"] == f"{p.target_ua:.2f}" and row["source UA %"] == f"{p.source_ua:.2f}"
        assert row["version"] == "published" and row["p vs lower (Holm)"] == "—"  # never tested
    assert cells(md, "paper (HuBERT, published): Table 7, hard pseudo-labels, τ = 0.65")[2] == "68.81"
    assert cells(md, "paper (HuBERT, published): Table 8, hard pseudo-labels, without rebalancing")[2] == "53.64"
    assert TABLE8_CAPTION_NOTE in md
    # the bounds' own paper numbers (Tables 4 and 5) beside the bounds repeated in this table
    assert cells(md, "paper (HuBERT, published): Table 4")[2] == "52.14"
    assert cells(md, "paper (HuBERT, published): Table 5")[2] == "74.29"
    assert column(md, "paper (HuBERT, published): Table 5", "source UA %") == "81.02"
    assert "fine-tuned its encoder" in md
    # N_k = 0 real: Table 4 and 5 only, no Table 7/8 note
    md0 = render_markdown(loaded(table_scenario("french", False, 0, "hubert")), Path("/x/r"), Path("/x"))
    assert cells(md0, "paper (HuBERT, published): Table 4")[2] == "58.02"
    assert column(md0, "paper (HuBERT, published): Table 4", "source UA %") == "81.50"
    assert TABLE8_CAPTION_NOTE not in md0
    # another encoder: only its own numbers (BYOL-S Table 4 French = 54.32)
    mdb = render_markdown(loaded(table_scenario("french", False, 0, "byols")), Path("/x/r"), Path("/x"))
    assert cells(mdb, "paper (BYOL-S, published): Table 4")[2] == "54.32" and "HuBERT, published" not in mdb
    # an encoder the paper never used: no paper row at all
    mdl = render_markdown(loaded(table_scenario("french", False, 0, "logmel-stats")), Path("/x/r"), Path("/x"))
    assert "published):" not in mdl


def test_table6_setting_shows_the_comparison_rows() -> None:
    recs = [make_record(m, "german", s, emotions=4, synthetic=False, encoder="hubert",
                        config={**BASE_CONFIG, "m": m}) for m in ("crosslingual", "dann") for s in (0, 1, 2)]
    md = render_markdown(loaded(recs), Path("/x/r"), Path("/x"))
    assert "### German · N_k = 0 · 4 emotions" in md
    assert cells(md, "paper (published): Table 6, DANN (paper's reimplementation)")[2] == "32.60"
    assert cells(md, "paper (HuBERT, published): Table 6, Ours (HuBERT)")[2] == "89.00"
    assert cells(md, "paper (published): Table 6, NNPM (Li et al. 2021")[2] == "50.60"
    assert "backbone not stated" in md


def test_no_nan_or_inf_in_rendered_numbers() -> None:
    md = render_markdown(loaded(table_scenario()), Path("/x/r"), Path("/x"))
    tables = md.split("## Configurations")[0]
    assert " nan" not in tables.lower() and " inf" not in tables.lower() and "-0.00" not in tables
    _, _, y = fake_test_set("italian", 5)
    assert int(tables.count("| ")) > 0 and len(y) == 40


# -- golden snapshot --------------------------------------------------------------------------------


def test_golden_markdown_snapshot(tmp_path: Path) -> None:
    board, records = golden_board(tmp_path)
    path = render(records, board, plots=False)
    text = path.read_text(encoding="utf-8")
    if os.environ.get("XLBENCH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the leaderboard markdown changed; if intended, regenerate with XLBENCH_UPDATE_GOLDEN=1, review the diff "
        "and check the changed numbers independently"
    )
    assert text.startswith("<!-- xlbench:generated ")
    assert "Generated file: do not edit" in text
    assert "`xlbench leaderboard render --records leaderboards/golden/records --out leaderboards/golden" in text


def golden_rows() -> dict[tuple[str, str], dict[str, str]]:
    """(table heading, method cell) -> {column: cell} for every system row of the golden file."""
    out, head, table = {}, None, None
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        if line.startswith("## Configurations"):
            table = None
        elif line.startswith("### "):
            table = line
        elif line.startswith("| method"):
            head = [c.strip() for c in line.strip("|").split("|")]
        elif table and line.startswith("|") and not line.startswith("|--") and "published" not in line:
            row = [c.strip() for c in line.strip("|").split("|")]
            out[(table, row[0])] = dict(zip(head, row, strict=True))
    return out


def speaker_bootstrap_by_hand(systems: list[list], n_classes: int = 5) -> tuple[float, float]:
    """Percentile interval of UA(system 0) [- UA(system 1)], seed-pooled, resampling speakers.

    Written out with counts per (speaker, class), on the same 2,000 draws as the code (numpy's
    multinomial over the speakers, seed 0; speakers numbered in order of first appearance): the
    arithmetic is independent of xlbench.stats, the random draws are shared so the numbers match.
    """
    speakers = sorted({p.speaker for r in systems[0] for p in r.predictions["target"]})
    correct = np.zeros((len(systems), len(speakers), n_classes))
    total = np.zeros((len(speakers), n_classes))
    for r in systems[0]:
        for p in r.predictions["target"]:
            total[speakers.index(p.speaker), p.true] += 1
    for k, recs in enumerate(systems):
        for r in recs:
            for p in r.predictions["target"]:
                correct[k, speakers.index(p.speaker), p.true] += p.pred == p.true
    draws = np.random.default_rng(0).multinomial(len(speakers), [1 / len(speakers)] * len(speakers), size=2000)
    values = []
    for w in draws:
        uas = [np.mean((w @ correct[k]) / (w @ total)) for k in range(len(systems))]  # every class is drawn
        values.append(uas[0] - (uas[1] if len(uas) > 1 else 0.0))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def permutation_p_by_scipy(rs: list, lower: list) -> float:
    """The paired permutation test of ΔUA with scipy, exact: an utterance (all its seeds) is one unit."""
    ids = sorted(p.id for p in rs[0].predictions["target"])
    truth = {p.id: p.true for p in rs[0].predictions["target"]}
    n_c = np.bincount([truth[i] for i in ids])

    def per_unit(recs):  # each utterance's UA contribution, summed over seeds: correct / (C * n_c * seeds)
        out = np.zeros(len(ids))
        for r in recs:
            pred = {p.id: p.pred for p in r.predictions["target"]}
            out += [(pred[i] == truth[i]) / (len(n_c) * n_c[truth[i]] * len(recs)) for i in ids]
        return out

    scale = len(n_c) * int(np.lcm.reduce(n_c)) * len(rs)  # integer contributions: ties are exact
    a, b = np.round(per_unit(rs) * scale), np.round(per_unit(lower) * scale)
    differ = a != b  # swapping a unit where both systems score alike changes nothing
    assert differ.sum() <= 20  # small enough for scipy to enumerate every swap
    res = sps.permutation_test((a[differ], b[differ]), lambda x, y, axis: x.sum(axis) - y.sum(axis),
                               permutation_type="samples", vectorized=True, n_resamples=np.inf)
    return float(res.pvalue)


def test_golden_numbers_are_independently_checked() -> None:
    """Every number of the golden tables, recomputed without xlbench.stats: numpy by hand, scipy's
    permutation test and binomial/chi-square McNemar, Holm written out."""
    rows = golden_rows()
    boards = {"Italian · N_k = 0": table_scenario(),
              "French · N_k = 100": table_scenario("french", False, 100, "hubert")}
    checked = 0
    for heading, recs in boards.items():
        table = next(t for t, _ in rows if heading in t)
        groups = scenario_groups(recs)
        mean = {k: np.mean([r.metrics["target"].ua for r in v]) for k, v in groups.items()}
        lower = groups["crosslingual (lower bound)"]
        lo, up = mean["crosslingual (lower bound)"], mean["multilingual (upper bound)"]
        raw_p = {}
        for label, rs in groups.items():
            row = rows[(table, label)]
            uas = [r.metrics["target"].ua for r in rs]
            assert row["target UA %"].strip("*") == f"{100 * np.mean(uas):.2f} ± {100 * np.std(uas, ddof=1):.2f}"
            low, high = speaker_bootstrap_by_hand([rs])
            assert row["UA 95% CI"] == f"[{100 * low:.1f}, {100 * high:.1f}]"
            assert row["Δ vs lower"] == f"{100 * (mean[label] - lo):+.2f}"
            assert row["gap closed"] == f"{100 * (mean[label] - lo) / (up - lo):.0f}%"
            checked += 1
            if rs is lower:
                assert row["Δ 95% CI"] == "—" and row["p vs lower (Holm)"] == "(reference)"
                continue
            low, high = speaker_bootstrap_by_hand([rs, lower])
            assert row["Δ 95% CI"] == f"[{100 * low:+.1f}, {100 * high:+.1f}]"
            if label.startswith("multilingual"):
                assert row["p vs lower (Holm)"] == "(not tested)"
                continue
            raw_p[label] = permutation_p_by_scipy(rs, lower)
            yt, yp, _, _ = pooled(rs)
            _, lp, _, _ = pooled(lower)
            n_ab, n_ba = int(np.sum((yp == yt) & (lp != yt))), int(np.sum((yp != yt) & (lp == yt)))
            mc = (sps.binomtest(min(n_ab, n_ba), n_ab + n_ba).pvalue if n_ab + n_ba < 25
                  else sps.chi2.sf((abs(n_ab - n_ba) - 1) ** 2 / (n_ab + n_ba), df=1))
            assert row["McNemar p"] == ("<0.001" if mc < 0.001 else f"{mc:.3g}")
        for label, adj in zip(raw_p, hand_holm(list(raw_p.values())), strict=True):
            # the exact p and our Monte Carlo one (10,000 resamples) must print the same
            assert rows[(table, label)]["p vs lower (Holm)"] == ("<0.001" if adj < 0.001 else f"{adj:.3g}")
    assert checked == 10


def test_the_reference_bound_is_the_one_trained_like_the_methods() -> None:
    """Two configs of the lower bound in one table: the reference is the one whose options the methods
    share (here the MLP head, which also sorts after "linear"), the other is a variant tested against it."""
    recs = [r for r in table_scenario() if r.method.name not in ("crosslingual", "pseudolabel")]
    _, _, y = fake_test_set("italian", 5, True)
    for head, correct, methods in (("linear", [4, 3, 4, 5, 4], ["crosslingual"]),
                                   ("mlp", [5, 5, 5, 5, 5], ["crosslingual", "pseudolabel"])):
        for method in methods:
            cfg = {**BASE_CONFIG, "head_type": head} | ({"mode": "hard"} if method == "pseudolabel" else {})
            for seed in (0, 1, 2):
                pred = predictions_with_accuracy(y, correct if method == "crosslingual" else [7, 7, 7, 7, 7], 5)
                recs.append(make_record(method, "italian", seed, config=cfg, target_pred=pred))
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    reference = cells(md, "crosslingual head_type=mlp")
    variant = cells(md, "crosslingual head_type=linear")
    col = header(md).index("p vs lower (Holm)")
    assert reference[0].endswith("(lower bound)") and reference[col] == "(reference)"
    assert variant[0].endswith("(lower-bound variant)") and variant[col] not in ("(reference)", "—")
    # Δ vs lower of the methods is against the MLP bound: 25/40 right per seed -> 35/40 right, +25 points
    delta = header(md).index("Δ vs lower")
    assert cells(md, "pseudolabel")[delta] == "+25.00"
