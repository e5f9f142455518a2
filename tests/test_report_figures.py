"""xlbench.report.figures: PCA and the silhouette checked by hand, every leaderboard figure written as PNG and
SVG from fake records, and Fig. 6 end to end on the synthetic corpus (one seed, 2 epochs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.data.fake_records import BASE_CONFIG, make_record, table_scenario
from xlbench.cli import main
from xlbench.report.figures import Embedded, leaderboard_figures, pca_2d, pca_figure, silhouette_score


def test_silhouette_matches_a_hand_computation() -> None:
    # points on a line: cluster A = {0, 1}, cluster B = {4, 6, 7}
    x = np.array([[0.0], [1.0], [4.0], [6.0], [7.0]])
    y = [0, 0, 1, 1, 1]
    # a(i): mean distance within the cluster; b(i): mean distance to the other cluster
    a = [1.0, 1.0, (2 + 3) / 2, (2 + 1) / 2, (3 + 1) / 2]
    b = [(4 + 6 + 7) / 3, (3 + 5 + 6) / 3, (4 + 3) / 2, (6 + 5) / 2, (7 + 6) / 2]
    hand = np.mean([(bi - ai) / max(ai, bi) for ai, bi in zip(a, b, strict=True)])
    assert silhouette_score(x, y) == pytest.approx(hand)
    # a point alone in its cluster scores 0 (the usual convention)
    x2 = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    a0, b0 = 1.0, np.hypot(5, 5)
    a1, b1 = 1.0, np.hypot(5, 4)
    assert silhouette_score(x2, [0, 0, 1]) == pytest.approx(((b0 - a0) / b0 + (b1 - a1) / b1 + 0.0) / 3)
    with pytest.raises(ValueError):
        silhouette_score(x, [0] * 5)


def test_pca_matches_the_covariance_eigenvectors() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) @ np.diag([5.0, 2.0, 0.5, 0.2, 0.1]) + 3.0
    proj, ratio = pca_2d(x)
    cov = np.cov(x, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    top = vecs[:, order[:2]]
    expected = (x - x.mean(axis=0)) @ top
    for k in range(2):  # the sign of a component is arbitrary
        assert np.allclose(np.abs(proj[:, k]), np.abs(expected[:, k]), atol=1e-8)
    assert ratio == pytest.approx(vals[order[:2]] / vals.sum())


def test_leaderboard_figures_are_written_as_png_and_svg(tmp_path: Path) -> None:
    recs = table_scenario()
    history = [{"epoch": float(e), "loss": 1.0 / e, "source_val_ua": 0.5 + e / 100, "target_val_ua": 0.4 + e / 100}
               for e in range(1, 6)]
    for mode in ("hard", "soft"):
        for nk in (25, 100):
            recs += [make_record("pseudolabel", "italian", s, n_labeled=nk, history=history,
                                 config={**BASE_CONFIG, "mode": mode}) for s in (0, 1, 2)]
    paths = leaderboard_figures([(Path("x"), r) for r in recs], tmp_path)
    names = sorted(p.name for p in paths)
    section = "synthetic-logmel-stats-frozen-paper-5emo"
    assert f"fig3-{section}.png" in names and f"fig4-{section}.png" in names and f"fig5-{section}.png" in names
    confusion = [n for n in names if n.startswith("confusion")]
    assert confusion == sorted(f"confusion-{section}-italian-nk{k}.png" for k in (0, 25, 100))
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
        svg = p.with_suffix(".svg")
        assert svg.exists() and svg.read_text().lstrip().startswith("<?xml")


def test_pca_figure_reports_the_silhouette(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 10)
    tight = np.eye(3)[labels] * 5 + rng.normal(scale=0.1, size=(30, 3))
    loose = rng.normal(size=(30, 3))
    stages = [Embedded("before", loose, labels, loose[::-1], labels, "test"),
              Embedded("after", tight, labels, tight, labels, "test")]
    png, scores = pca_figure(stages, ["a", "b", "c"], ("english", "italian"), "heading", tmp_path / "fig6")
    assert png.exists() and png.with_suffix(".svg").exists()
    assert scores[1] > 0.8 > scores[0]
    assert scores[1] == pytest.approx(silhouette_score(np.vstack([tight, tight]), np.concatenate([labels, labels])))


def test_pca_command_fits_one_seed_and_writes_fig6(synthetic_home, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XLBENCH_MLFLOW", "0")
    res = CliRunner().invoke(main, ["leaderboard", "pca", "--target", "italian", "--set", "epochs=2",
                                    "--data", "synthetic", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (meta,) = tmp_path.glob("fig6-pca-*.json")
    info = json.loads(meta.read_text())
    assert info["synthetic"] is True and info["target"] == "italian" and len(info["silhouette"]) == 2
    assert all(-1 <= v <= 1 for v in info["silhouette"].values())
    assert meta.with_suffix(".png").exists() and meta.with_suffix(".svg").exists()
    assert "silhouette" in res.output
    results = Path(os.environ["XLBENCH_RESULTS"])
    assert not list(results.glob("*/*.json"))  # fitting for a figure writes no record
