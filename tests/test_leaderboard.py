"""The leaderboard: every printed statistic checked against xlbench.stats, scipy or a hand
computation; Holm across a table; paper rows only for real corpora; a golden markdown snapshot;
`leaderboard check` catching stale markdown; `leaderboard validate` catching each defect.

Regenerate the golden file after an intended change of the markdown with
``XLBENCH_UPDATE_GOLDEN=1 pytest tests/test_leaderboard.py -k golden`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as sps

from tests.data.fake_records import BASE_CONFIG, fake_test_set, make_record, table_scenario, write
from xlbench import stats
from xlbench.cli import main
from xlbench.errors import DataError
from xlbench.leaderboard import (
    ALPHA,
    N_BOOTSTRAP,
    N_PERMUTATIONS,
    build_tables,
    check,
    fmt_p,
    render,
    render_markdown,
    validate_records,
)
from xlbench.paper import TABLE8_CAPTION_NOTE, paper_results
from xlbench.records import compute_run_id, identity_payload

GOLDEN = Path(__file__).parent / "data" / "leaderboard_golden.md"


def loaded(records):
    return [(Path(f"{r.method.name}/{r.run_id}.json"), r) for r in records]


def cells(markdown: str, label: str) -> list[str]:
    """The cells of the first table row whose method cell starts with ``label``."""
    for line in markdown.splitlines():
        if line.startswith("|"):
            parts = [c.strip() for c in line.strip().strip("|").split("|")]
            if parts[0].startswith(label):
                return parts
    raise AssertionError(f"no row {label!r}")


def pooled(records, seeds=(0, 1, 2)):
    """Pooled (seed, utterance) arrays built by hand: sorted by seed, then utterance id."""
    yt, yp, spk, ids = [], [], [], []
    for r in sorted(records, key=lambda r: r.task.seed):
        if r.task.seed not in seeds:
            continue
        for p in sorted(r.predictions["target"], key=lambda p: p.id):
            yt.append(p.true)
            yp.append(p.pred)
            spk.append(p.speaker)
            ids.append(p.id)
    return np.array(yt), np.array(yp), spk, ids


def hand_holm(p: list[float]) -> list[float]:
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj.tolist()


# -- the statistics of one table ------------------------------------------------------------------


def test_every_statistic_in_a_table_matches_stats_scipy_or_a_hand_computation() -> None:
    recs = table_scenario()
    (table,) = build_tables(loaded(recs))
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    groups = {
        "crosslingual": [r for r in recs if r.method.name == "crosslingual"],
        "multilingual": [r for r in recs if r.method.name == "multilingual"],
        "pseudolabel mode=hard": [r for r in recs if r.method.config.get("mode") == "hard"],
        "pseudolabel mode=soft": [r for r in recs if r.method.config.get("mode") == "soft"],
        "dann": [r for r in recs if r.method.name == "dann"],
    }
    means = {k: np.mean([r.metrics["target"].ua for r in v]) for k, v in groups.items()}
    lower, upper = means["crosslingual"], means["multilingual"]
    best = max((k for k in means if k != "multilingual"), key=means.get)
    assert best == "pseudolabel mode=hard"
    raw_p = {}
    for label, rs in groups.items():
        row = cells(md, label)
        uas = [r.metrics["target"].ua for r in rs]
        # UA mean ± sample std over seeds
        text = f"{100 * np.mean(uas):.2f} ± {100 * np.std(uas, ddof=1):.2f}"
        assert row[2].strip("*").replace(" †", "") == text
        # 95% speaker-bootstrap interval of the seed-pooled UA
        yt, yp, spk, _ = pooled(rs)
        ci = stats.cluster_bootstrap_ci(yt, yp, spk, 5, metric="ua", n_resamples=N_BOOTSTRAP, seed=0)
        assert row[3] == f"[{100 * ci.low:.1f}, {100 * ci.high:.1f}]"
        # Δ against the lower bound and the share of the gap closed, by hand
        assert row[4] == f"{100 * (means[label] - lower):+.2f}"
        assert row[5] == f"{100 * (means[label] - lower) / (upper - lower):.0f}%"
        # source UA
        src = [r.metrics["source"].ua for r in rs]
        assert row[8] == f"{100 * np.mean(src):.2f} ± {100 * np.std(src, ddof=1):.2f}"
        assert row[9] == "3" and row[12] == "3" and row[11] == "v1 · xlbench 0.1.0"
        if label in (best, "multilingual"):
            continue
        # paired permutation test against the best: the same test, called directly
        bt, bp, _, ids = pooled(groups[best])
        assert np.array_equal(bt, yt)
        perm = stats.paired_permutation_test(yt, yp, bp, 5, groups=ids, n_resamples=N_PERMUTATIONS, seed=0)
        raw_p[label] = perm.pvalue
        # McNemar on accuracy: scipy's exact binomial test (or chi-square with continuity) by hand
        b = int(np.sum((yp == yt) & (bp != yt)))
        c = int(np.sum((yp != yt) & (bp == yt)))
        if b + c < stats.MCNEMAR_EXACT_BELOW:
            mc = sps.binomtest(min(b, c), b + c, 0.5).pvalue
        else:
            mc = sps.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), df=1)
        assert row[7] == fmt_p(mc)
    # Holm across the table: every comparison with the best, adjusted together
    labels = list(raw_p)
    adjusted = dict(zip(labels, hand_holm([raw_p[k] for k in labels]), strict=True))
    assert table.family_size == len(labels) == 3
    for label in labels:
        row = cells(md, label)
        assert row[6] == fmt_p(adjusted[label])
        assert row[2].endswith("†") == (adjusted[label] >= ALPHA)
    assert cells(md, "pseudolabel mode=hard")[6] == "best" and cells(md, "pseudolabel mode=hard")[2].startswith("**")
    assert cells(md, "multilingual")[6] == "(reference)"
    # detectability of the test set, at the lower bound's UA
    counts = [8] * 5
    assert stats.detectability_note(counts, lower) in md
    assert "40 Italian utterances from 4 speakers" in md


def test_holm_correction_uses_the_whole_table_as_one_family() -> None:
    recs = table_scenario()
    (table,) = build_tables(loaded(recs))
    family = [r for r in table.rows if r.p_raw is not None]
    holm = stats.holm_correction([r.p_raw for r in family])
    assert [r.p_holm for r in family] == pytest.approx(holm.adjusted.tolist())
    assert [r.p_holm for r in family] == pytest.approx(hand_holm([r.p_raw for r in family]))
    # adjusting one comparison alone would give a smaller p: the family matters
    smallest = min(family, key=lambda r: r.p_raw)
    assert smallest.p_holm == pytest.approx(min(1.0, len(family) * smallest.p_raw))


def test_seed_mismatch_is_flagged_and_compared_on_common_seeds() -> None:
    recs = table_scenario()
    recs = [r for r in recs if not (r.method.name == "dann" and r.task.seed == 2)]
    (table,) = build_tables(loaded(recs))
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    row = cells(md, "dann")
    assert row[9] == "2 ⚠"
    assert "dann: compared on the common seeds 0,1 only" in md
    assert "only 2 seeds" in md and "not all run with the same seeds" in md
    dann = next(r for r in table.rows if r.system.method == "dann")
    best = [r for r in recs if r.method.config.get("mode") == "hard"]
    yt, yp, _, ids = pooled([r for r in recs if r.method.name == "dann"], seeds=(0, 1))
    _, bp, _, _ = pooled(best, seeds=(0, 1))
    assert dann.p_raw == stats.paired_permutation_test(yt, yp, bp, 5, groups=ids, n_resamples=N_PERMUTATIONS,
                                                       seed=0).pvalue


# -- paper rows ------------------------------------------------------------------------------------


def test_synthetic_tables_say_so_and_show_no_paper_rows() -> None:
    md = render_markdown(loaded(table_scenario()), Path("/x/records"), Path("/x"))
    assert "synthetic corpus" in md.splitlines()[1] or "synthetic" in md.splitlines()[1]
    assert "### Italian · N_k = 0 · 5 emotions (synthetic corpus;" in md
    assert "paper (" not in md and "published" not in md.split("## Configurations")[0].split("How to read")[1]


def test_real_corpus_tables_show_the_matching_paper_numbers() -> None:
    recs = table_scenario(target="italian", synthetic=False, encoder="hubert", n_labeled=100)
    md = render_markdown(loaded(recs), Path("/x/records"), Path("/x"))
    assert "### Italian · N_k = 100 · 5 emotions (real corpora; hubert, frozen" in md
    # Table 7 (τ) and Table 8 (rebalancing) at N_k = 100, with the note on Table 8's caption
    for p in paper_results(target="italian", n_labeled=100, emotions=5):
        row = cells(md, f"{p.row_label}: Table {p.table[-1]}, {p.label}")
        assert row[2] == f"{p.target_ua:.2f}" and row[8] == f"{p.source_ua:.2f}" and row[11] == "published"
    assert cells(md, "paper (HuBERT, published): Table 7, hard pseudo-labels, τ = 0.65")[2] == "68.81"
    assert cells(md, "paper (HuBERT, published): Table 8, hard pseudo-labels, without rebalancing")[2] == "53.64"
    assert TABLE8_CAPTION_NOTE in md
    # the bounds' own paper numbers (Tables 4 and 5) beside the bounds repeated in this table
    assert cells(md, "paper (HuBERT, published): Table 4")[2] == "52.14"
    assert cells(md, "paper (HuBERT, published): Table 5")[2] == "74.29"
    assert cells(md, "paper (HuBERT, published): Table 5")[8] == "81.02"
    assert "fine-tuned its encoder" in md
    # N_k = 0 real: Table 4 and 5 only, no Table 7/8 note
    md0 = render_markdown(loaded(table_scenario("french", False, 0, "hubert")), Path("/x/r"), Path("/x"))
    assert cells(md0, "paper (HuBERT, published): Table 4")[2] == "58.02"
    assert cells(md0, "paper (HuBERT, published): Table 4")[8] == "81.50"
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


# -- golden snapshot, render and check ---------------------------------------------------------------


def golden_board(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "project"
    (project / "leaderboards" / "golden").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")  # paths in the banner are project-relative
    board = project / "leaderboards" / "golden"
    records = board / "records"
    write(table_scenario() + table_scenario("french", False, 100, "hubert"), records)
    return board, records


def test_golden_markdown_snapshot(tmp_path: Path) -> None:
    board, records = golden_board(tmp_path)
    path = render(records, board, plots=False)
    text = path.read_text(encoding="utf-8")
    if os.environ.get("XLBENCH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the leaderboard markdown changed; if intended, regenerate with XLBENCH_UPDATE_GOLDEN=1 and review the diff"
    )
    assert text.startswith("<!-- xlbench:generated ")
    assert "Generated file: do not edit" in text
    assert "`xlbench leaderboard render --records leaderboards/golden/records --out leaderboards/golden" in text


def test_check_catches_stale_markdown(tmp_path: Path) -> None:
    board, records = golden_board(tmp_path)
    path = render(records, board, plots=False)
    root = board.parent
    assert [r.status for r in check(root)] == ["ok"]
    cli = CliRunner()
    res = cli.invoke(main, ["leaderboard", "check", "--dir", str(root)])
    assert res.exit_code == 0, res.output
    # hand-edited markdown
    original = path.read_text(encoding="utf-8")
    path.write_text(original.replace("pseudolabel mode=hard", "pseudolabel mode=HARD", 1), encoding="utf-8")
    (result,) = check(root)
    assert result.status == "stale" and "differs" in result.detail
    res = cli.invoke(main, ["leaderboard", "check", "--dir", str(root)])
    assert res.exit_code != 0 and "stale" in res.output
    # records changed after rendering
    path.write_text(original, encoding="utf-8")
    next(records.glob("dann/*.json")).unlink()
    assert check(root)[0].status == "stale"
    # records gone: cannot be verified
    import shutil

    shutil.rmtree(records)
    assert check(root)[0].status == "error"


def test_render_refuses_defective_records_and_empty_folders(tmp_path: Path) -> None:
    records = tmp_path / "records"
    records.mkdir()
    cli = CliRunner()
    res = cli.invoke(main, ["leaderboard", "render", "--records", str(records), "--out", str(tmp_path / "b"),
                            "--no-plots"])
    assert res.exit_code == 2 and "no run records" in res.output and len(res.output.strip().splitlines()) == 1
    (path,) = write([make_record()], records)
    data = json.loads(path.read_text())
    data["method"]["config"]["epochs"] = 5  # tampered
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="tampered run id"):
        render(records, tmp_path / "b", plots=False)
    # a hand-written README is never overwritten
    (tmp_path / "hand").mkdir()
    (tmp_path / "hand" / "README.md").write_text("# mine\n")
    with pytest.raises(DataError, match="not generated by xlbench"):
        render(records, tmp_path / "hand", plots=False)


# -- validate ---------------------------------------------------------------------------------------


def _rewrite(path: Path, mutate, keep_id: bool = True) -> Path:
    """Edit a record's JSON; with ``keep_id=False`` recompute its run id (a consistent record)."""
    from xlbench.records import RunRecord

    data = json.loads(path.read_text())
    mutate(data)
    if not keep_id:
        rec = RunRecord.model_validate(data)
        data["run_id"] = compute_run_id(identity_payload(
            protocol_version=rec.protocol_version, splits_version=rec.splits_version, method=rec.method,
            encoder=rec.encoder, task=rec.task, source_data=rec.source_data, target_data=rec.target_data))
        path.unlink()
        path = path.with_name(f"{data['run_id']}.json")
    path.write_text(json.dumps(data))
    return path


def test_validate_accepts_sound_records_and_rejects_each_defect(tmp_path: Path) -> None:
    root = tmp_path / "records"
    write([make_record("crosslingual", seed=s) for s in (0, 1, 2)], root)
    cli = CliRunner()
    res = cli.invoke(main, ["leaderboard", "validate", "--records", str(root)])
    assert res.exit_code == 0 and "3 record(s)" in res.output

    def one_defect(method: str, mutate, keep_id: bool = True, seeds=(0, 1, 2)) -> list[str]:
        d = tmp_path / method
        paths = write([make_record("dann", seed=s, config={**BASE_CONFIG, "k": method}) for s in seeds], d)
        if mutate is not None:
            _rewrite(paths[0], mutate, keep_id)
        _good, defects = validate_records(d)
        res = cli.invoke(main, ["leaderboard", "validate", "--records", str(d)])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if not ln.startswith("error:")]
        assert len(lines) == len(defects) >= 1  # one line per defect
        return [d.message for d in defects]

    def schema2(d):
        d["schema_version"] = 2

    assert any(m.startswith("wrong schema: schema_version 2") for m in one_defect("schema", schema2))

    def drop_field(d):
        del d["metrics"]

    assert any(m.startswith("wrong schema") for m in one_defect("schema2", drop_field))

    def tamper(d):
        d["method"]["config"]["lr"] = 0.1

    assert any(m.startswith("tampered run id") for m in one_defect("tamper", tamper))

    def split(d):
        d["target_data"]["split_hashes"]["synth_it"] = "0" * 64

    msgs = one_defect("split", split, keep_id=False)
    assert any(m.startswith("split hash: target corpus synth_it") for m in msgs)
    assert not any("tampered" in m for m in msgs)

    def test_policy(d):
        d["selection"]["policy"] = "test"

    assert any("test-set selection: selection policy 'test'" in m for m in one_defect("policy", test_policy))

    def test_sets(d):
        d["selection"]["sets"] = ["source_val", "target_test"]

    assert any("model selected on target_test" in m for m in one_defect("sets", test_sets, keep_id=False))

    def val_named_test(d):
        d["sizes"]["val_target_test"] = 10

    assert any("named like a test set" in m for m in one_defect("valtest", val_named_test, keep_id=False))

    msgs = one_defect("seeds", None, seeds=(0, 1))
    assert len(msgs) == 1 and msgs[0].startswith("fewer than 3 seeds") and "seed(s) 0,1" in msgs[0]


# -- the CLI's one-line errors -----------------------------------------------------------------------


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    cli = CliRunner()
    res = cli.invoke(main, ["reproduce", "table9"])
    assert res.exit_code == 2 and "unknown table 'table9'" in res.output and len(res.output.strip().splitlines()) == 1
    res = cli.invoke(main, ["leaderboard", "validate", "--records", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and res.output.startswith("error: no records folder")
    res = cli.invoke(main, ["reproduce", "table4", "--set", "nokey=1", "--dry-run"])
    assert res.exit_code == 2 and "nokey" in res.output and len(res.output.strip().splitlines()) == 1


def test_reproduce_table_renders_ours_beside_the_papers(tmp_path: Path) -> None:
    from xlbench.reproduce import Scope, document

    recs = table_scenario("italian", False, 100, "hubert")
    recs += [make_record("pseudolabel", "italian", s, n_labeled=100, synthetic=False, encoder="hubert",
                         config={**BASE_CONFIG, "mode": "hard"}) for s in (0, 1, 2)]
    scope = Scope("hubert", "frozen", "paper", False, (0, 1, 2))

    # the expected configs come from the installed method: match them to our fake records
    from xlbench.method import get_method

    cfg = get_method("crosslingual").Config().model_dump(mode="json")
    lower = [make_record("crosslingual", "italian", s, synthetic=False, encoder="hubert", config=cfg)
             for s in (0, 1, 2)]
    text = document(["table4"], loaded(lower + recs), {}, scope, ["italian"], tmp_path / "r", tmp_path / "t.md")
    uas = [r.metrics["target"].ua for r in lower]
    row = cells(text, "Italian")
    assert row[1] == f"{100 * np.mean(uas):.2f} ± {100 * np.std(uas, ddof=1):.2f}"
    assert row[2] == "52.14" and row[4] == "81.50" and row[5] == "3"
    assert "| French" not in text
    text7 = document(["table7"], loaded(recs), {}, scope, ["italian"], tmp_path / "r", tmp_path / "t.md")
    assert "not run" in text7 and "74.24" in text7 and TABLE8_CAPTION_NOTE in text7
    synth = Scope("hubert", "frozen", "paper", True, (0, 1, 2))
    texts = document(["table4"], loaded(lower), {}, synth, ["italian"], tmp_path / "r", tmp_path / "t.md")
    assert "SYNTHETIC" in texts and "52.14" not in texts


def test_no_nan_or_inf_in_rendered_numbers() -> None:
    md = render_markdown(loaded(table_scenario()), Path("/x/r"), Path("/x"))
    tables = md.split("## Configurations")[0]
    assert " nan" not in tables.lower() and " inf" not in tables.lower() and "-0.00" not in tables
    _, _, y = fake_test_set("italian", 5)
    assert int(tables.count("| ")) > 0 and len(y) == 40


@pytest.mark.slow
def test_committed_boards_are_valid_and_up_to_date() -> None:
    """The boards in leaderboards/ validate and match their records (what CI guards)."""
    repo = Path(__file__).resolve().parents[1]
    records = repo / "leaderboards" / "synthetic" / "records"
    _good, defects = validate_records(records)
    assert not defects
    stale = [r for r in check(repo / "leaderboards") if r.status != "ok"]
    assert not stale, [(str(r.path), r.status) for r in stale]
