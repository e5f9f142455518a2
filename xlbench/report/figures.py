"""Figures from run records (matplotlib, Agg backend; every figure as PNG and SVG).

- Fig. 3: target UA by N_k per language, hard and soft pseudo-labels, with narrow black bars for
  the source UA (the paper's layout);
- Fig. 4: lower bound, pseudolabel (hard, largest N_k) and upper bound per language;
- Fig. 5: learning curves from the records' per-epoch history (validation UA of source and
  target, mean ± std over seeds, pseudo-label rounds marked);
- Fig. 6: PCA of test-set representations before and after adaptation with silhouette scores
  (the arrays come from :func:`xlbench.representations.embed_for_pca`; this module only draws);
- confusion matrices per leaderboard table (summed over seeds, row-normalised).

A renderer of the report: like the markdown, the figures read records (and the tables of
:mod:`xlbench.report.tables`) and draw; nothing here trains a model or computes a test.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from xlbench.errors import DataError
from xlbench.home import atomic_write_text
from xlbench.protocol import SOURCE_LANGUAGE
from xlbench.records import RunRecord
from xlbench.report.formatting import nk_text
from xlbench.report.identity import TARGET_ORDER, config_hash, n_labeled_order, setting_key
from xlbench.report.tables import build_tables
from xlbench.report.validate import Loaded

FORMATS = ("png", "svg")
NK_COLORS = {0: "#c6dbef", 25: "#6baed6", 50: "#2171b5", 100: "#08306b"}
BAR_COLORS = {"crosslingual": "#bdbdbd", "pseudolabel": "#3182bd", "multilingual": "#31a354"}
# Reproducible files: no creation date in SVG/PNG metadata, a fixed SVG id salt, text kept as text.
plt.rcParams.update({"svg.hashsalt": "xlbench", "svg.fonttype": "none", "font.size": 8})
_META = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def _save(fig: plt.Figure, stem: Path) -> Path:
    stem.parent.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS:
        fig.savefig(stem.with_suffix(f".{fmt}"), format=fmt, dpi=110, metadata=_META[fmt])
    plt.close(fig)
    return stem.with_suffix(".png")


def slug(*parts: Any) -> str:
    text = "-".join(str(p) for p in parts if p != "")
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


# -- selecting records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """Runs that may share a figure: corpus kind, encoder, mode, selection, emotion set."""

    synthetic: bool
    encoder: str  # with the weights' revision where there is one
    mode: str
    selection: str
    emotions: int
    source: str = SOURCE_LANGUAGE  # "english (ravdess only)" for a named subset of the source corpora

    @property
    def slug(self) -> str:
        source = () if self.source == SOURCE_LANGUAGE else (self.source,)
        return slug("synthetic" if self.synthetic else "real", *source, self.encoder, self.mode, self.selection,
                    f"{self.emotions}emo")

    @property
    def caption(self) -> str:
        kind = "SYNTHETIC corpus" if self.synthetic else "real corpora"
        source = "" if self.source == SOURCE_LANGUAGE else f"source {self.source} · "
        return (f"{kind} · {source}{self.encoder} ({self.mode}) · selection {self.selection} · "
                f"{self.emotions} emotions")


def section_of(rec: RunRecord) -> Section:
    """The figure section of a run: its setting without target and N_k."""
    s = setting_key(rec)
    return Section(s.synthetic, s.encoder_text, s.mode, s.selection, s.emotions, s.source)


def _paper_default(cfg: Mapping[str, Any]) -> bool:
    """The paper's pseudolabel defaults for the options the ablations vary (τ 0.5, rebalancing)."""
    return cfg.get("tau", 0.5) == 0.5 and cfg.get("rebalance", True) is True and not cfg.get("accumulate", False)


def pseudolabel_runs(records: Sequence[Loaded], mode: str) -> list[Loaded]:
    """Pseudolabel runs of one mode at the paper's defaults; where several configs remain (e.g.
    different epochs), the one with the most records, so bars never mix configurations."""
    cands = [(p, r) for p, r in records if r.method.name == "pseudolabel" and r.method.config.get("mode") == mode
             and _paper_default(r.method.config)]
    by_cfg: dict[str, list[Loaded]] = defaultdict(list)
    for p, r in cands:
        by_cfg[config_hash(r.method.config)].append((p, r))
    if not by_cfg:
        return []
    return sorted(by_cfg.values(), key=lambda v: (-len(v), config_hash(v[0][1].method.config)))[0]


def _method_runs(records: Sequence[Loaded], method: str) -> list[Loaded]:
    by_cfg: dict[str, list[Loaded]] = defaultdict(list)
    for p, r in records:
        if r.method.name == method:
            by_cfg[config_hash(r.method.config)].append((p, r))
    if not by_cfg:
        return []
    return sorted(by_cfg.values(), key=lambda v: (-len(v), config_hash(v[0][1].method.config)))[0]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = 100 * np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def _targets(records: Sequence[Loaded]) -> list[str]:
    found = {r.task.target for _, r in records}
    return [t for t in TARGET_ORDER if t in found] + sorted(found - set(TARGET_ORDER))


# -- Fig. 3 ---------------------------------------------------------------------------------------


def fig3_nk_bars(records: Sequence[Loaded], section: Section, out: Path) -> Path | None:
    """Target UA per language and N_k, (a) hard and (b) soft, with source UA as narrow black bars."""
    panels = [(m, pseudolabel_runs(records, m)) for m in ("hard", "soft")]
    panels = [(m, runs) for m, runs in panels if runs]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, (mode, runs) in zip(axes[0], panels, strict=True):
        targets = _targets(runs)
        nks = sorted({r.task.n_labeled for _, r in runs}, key=n_labeled_order)
        width = 0.8 / max(len(nks), 1)
        for j, nk in enumerate(nks):
            for i, t in enumerate(targets):
                sel = [r for _, r in runs if r.task.target == t and r.task.n_labeled == nk]
                if not sel:
                    continue
                m, s = _mean_std([r.metrics["target"].ua for r in sel])
                ms, ss = _mean_std([r.metrics["source"].ua for r in sel])
                x = i + (j - (len(nks) - 1) / 2) * width
                # A wide bar for the target and a narrow black one beside it for the source.
                ax.bar(x - width * 0.12, m, width * 0.62, yerr=s, color=NK_COLORS.get(nk, "#636363"), capsize=2,
                       label=f"N_k = {nk}" if i == 0 else None)
                ax.bar(x + width * 0.3, ms, width * 0.18, yerr=ss, color="black", capsize=1,
                       label="source (English)" if i == 0 and j == 0 else None)
        ax.set_xticks(range(len(targets)), [t.title() for t in targets])
        ax.set_title(f"({'ab'[panels.index((mode, runs))]}) {mode} pseudo-labels")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("UA %")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=7)
    fig.suptitle(f"Fig. 3 (reproduction): UA by N_k, mean ± std over seeds — {section.caption}", fontsize=8)
    return _save(fig, out / f"fig3-{section.slug}")


# -- Fig. 4 ---------------------------------------------------------------------------------------


def fig4_bounds(records: Sequence[Loaded], section: Section, out: Path) -> Path | None:
    """Lower bound, pseudolabel hard at its largest N_k, and upper bound, per language."""
    hard = pseudolabel_runs(records, "hard")
    lower, upper = _method_runs(records, "crosslingual"), _method_runs(records, "multilingual")
    if not (lower or upper) or not hard:
        return None
    nk = max((r.task.n_labeled for _, r in hard), key=n_labeled_order)
    series = [
        ("cross-lingual (lower)", "crosslingual", lower),
        (f"pseudolabel hard, N_k = {nk}", "pseudolabel", [(p, r) for p, r in hard if r.task.n_labeled == nk]),
        ("multi-lingual (upper)", "multilingual", upper),
    ]
    targets = _targets([x for _, _, runs in series for x in runs])
    fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
    width = 0.8 / len(series)
    for j, (label, key, runs) in enumerate(series):
        for i, t in enumerate(targets):
            sel = [r.metrics["target"].ua for _, r in runs if r.task.target == t]
            if not sel:
                continue
            m, s = _mean_std(sel)
            ax.bar(i + (j - 1) * width, m, width * 0.9, yerr=s, capsize=2, color=BAR_COLORS[key],
                   label=label if i == 0 else None)
    ax.set_xticks(range(len(targets)), [t.title() for t in targets])
    ax.set_ylabel("target UA %")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Fig. 4 (reproduction): bounds and pseudo-labelling\n{section.caption}", fontsize=8)
    return _save(fig, out / f"fig4-{section.slug}")


# -- Fig. 5 ---------------------------------------------------------------------------------------


def _curve_keys(history: Sequence[Mapping[str, float]]) -> list[str]:
    keys: list[str] = []
    for row in history:
        keys.extend(k for k in row if k not in keys)
    acc = [k for k in keys if k.endswith("_ua") or k.endswith("_acc") or k.endswith("accuracy")]
    return acc or [k for k in keys if k == "loss"]


def fig5_learning_curves(records: Sequence[Loaded], section: Section, out: Path) -> Path | None:
    """Per target: every accuracy-like series in the history, mean ± std over seeds, per epoch."""
    hard = pseudolabel_runs(records, "hard")
    if not hard:
        return None
    nk = max((r.task.n_labeled for _, r in hard), key=n_labeled_order)
    runs = [r for _, r in hard if r.task.n_labeled == nk and r.history]
    if not runs:
        return None
    targets = _targets([(Path(), r) for r in runs])
    fig, axes = plt.subplots(1, len(targets), figsize=(3.2 * len(targets), 3.0), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, t in zip(axes[0], targets, strict=True):
        sel = [r for r in runs if r.task.target == t]
        keys = _curve_keys(sel[0].history)
        for key in keys:
            length = min(len(r.history) for r in sel)
            epochs = [sel[0].history[i].get("epoch", i + 1) for i in range(length)]
            vals = np.array([[r.history[i].get(key, np.nan) for i in range(length)] for r in sel], dtype=float)
            scale = 1.0 if key == "loss" else 100.0
            mean = np.nanmean(vals, axis=0) * scale
            ax.plot(epochs, mean, lw=1, label=key.replace("_ua", " UA").replace("_", " "))
            if len(sel) > 1:
                std = np.nanstd(vals, axis=0, ddof=1) * scale
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
        for rnd in sel[0].pseudo_labels:
            ax.axvline(rnd.epoch, color="grey", lw=0.6, ls=":")
        ax.set_title(f"{t.title()} (N_k = {nk}, {len(sel)} seeds)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("UA % (validation)")
    axes[0][-1].legend(fontsize=6)
    fig.suptitle(f"Fig. 5 (reproduction): learning curves, pseudolabel hard — {section.caption}; "
                 "dotted: pseudo-label rounds", fontsize=8)
    return _save(fig, out / f"fig5-{section.slug}")


# -- confusion matrices -------------------------------------------------------------------------


def confusion_figure(
    systems: Sequence[tuple[str, Sequence[Any]]], class_names: Sequence[str], heading: str, stem: Path
) -> Path:
    """One panel per system: the target confusion matrix summed over its seeds, row-normalised."""
    n = len(systems)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 2.8 * rows), squeeze=False, layout="constrained")
    short = [c[:3] for c in class_names]
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (label, recs) in zip(axes.flat, systems, strict=False):
        cm = np.sum([np.array(r.metrics["target"].confusion, dtype=float) for r in recs], axis=0)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(norm.shape[0]):
            for j in range(norm.shape[1]):
                ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(short)), short)
        ax.set_yticks(range(len(short)), short)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(textwrap.fill(f"{label} ({len(recs)} seeds)", 34), fontsize=7)
    fig.suptitle(heading, fontsize=8)
    return _save(fig, stem)


def confusion_figures(records: Sequence[Loaded], out: Path) -> list[Path]:
    """One figure per leaderboard table (same settings and systems as the markdown)."""
    paths = []
    for t in build_tables(records):
        systems = [(s.label, [rec for _, rec in s.records]) for s in t.systems]
        names = t.systems[0].records[0][1].task.emotions
        kind = "SYNTHETIC corpus" if t.synthetic else "real corpora"
        source = () if t.setting.source == SOURCE_LANGUAGE else (t.setting.source,)
        heading = (f"{t.target.title()} · N_k = {nk_text(t.n_labeled)} · {t.emotions} emotions — {kind}, "
                   f"{' · '.join(source) + ', ' if source else ''}{t.setting.encoder_text} ({t.mode}), "
                   f"selection {t.selection}\ntarget confusion, % of each true class")
        stem = out / "confusion" / slug("confusion", "synthetic" if t.synthetic else "real", *source,
                                        t.setting.encoder_text, t.mode, t.selection, f"{t.emotions}emo", t.target,
                                        f"nk{nk_text(t.n_labeled)}")
        paths.append(confusion_figure(systems, names, heading, stem))
    return paths


def leaderboard_figures(records: Sequence[Loaded], out: Path) -> list[Path]:
    """Every figure the records support (Figs. 3-5 per section, confusion matrices); PNG paths."""
    if not records:
        raise DataError("no run records to plot")
    out = Path(out)
    sections: dict[Section, list[Loaded]] = defaultdict(list)
    for p, r in records:
        sections[section_of(r)].append((p, r))
    paths: list[Path] = []
    for section in sorted(sections, key=lambda s: (s.synthetic, s.source, s.encoder, s.mode, s.selection, -s.emotions)):
        recs = sections[section]
        for fn in (fig3_nk_bars, fig4_bounds, fig5_learning_curves):
            path = fn(recs, section, out)
            if path is not None:
                paths.append(path)
    paths += confusion_figures(records, out)
    return paths


# -- Fig. 6: PCA and silhouette -------------------------------------------------------------------


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first two principal components (numpy SVD of the centred data) and their explained
    variance ratios."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError("PCA needs a 2-D array with at least two rows")
    centred = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    proj = centred @ vt[:k].T
    if k < 2:
        proj = np.hstack([proj, np.zeros((len(x), 2 - k))])
    var = s**2
    ratio = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return proj, np.pad(ratio, (0, 2 - k))


def silhouette_score(x: np.ndarray, labels: Sequence[int]) -> float:
    """Mean silhouette (Euclidean), written out: s(i) = (b - a) / max(a, b) with a the mean
    distance to the other members of i's cluster and b the smallest mean distance to another
    cluster; s(i) = 0 for a point alone in its cluster (the usual convention)."""
    x = np.asarray(x, dtype=np.float64)
    lab = np.asarray(labels)
    classes = np.unique(lab)
    if len(classes) < 2 or len(classes) >= len(lab):
        raise ValueError("the silhouette needs 2 <= number of clusters < number of points")
    sq = np.sum(x**2, axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    np.fill_diagonal(d, 0.0)
    members = {c: lab == c for c in classes}
    scores = np.zeros(len(lab))
    for i in range(len(lab)):
        own = members[lab[i]]
        n_own = own.sum() - 1
        if n_own == 0:
            continue
        a = d[i, own].sum() / n_own
        b = min(d[i, members[c]].mean() for c in classes if c != lab[i])
        scores[i] = (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return float(scores.mean())


@dataclass
class Embedded:
    """Test-set representations of one model: source and target, with true classes."""

    stage: str  # e.g. "before adaptation (crosslingual)"
    source: np.ndarray
    source_labels: np.ndarray
    target: np.ndarray
    target_labels: np.ndarray
    space: str  # "encoder embedding" or "head logits"


def pca_figure(stages: Sequence[Embedded], class_names: Sequence[str], languages: tuple[str, str],
               heading: str, stem: Path) -> tuple[Path, list[float]]:
    """Fig. 6: one row per stage; left coloured by emotion, right by language; the silhouette of
    the emotion clusters (in the full space, both languages together) in each row's title."""
    fig, axes = plt.subplots(len(stages), 2, figsize=(8, 3.4 * len(stages)), squeeze=False, layout="constrained")
    scores = []
    cmap = plt.get_cmap("tab10")
    for row, st in zip(axes, stages, strict=True):
        x = np.vstack([st.source, st.target])
        y = np.concatenate([st.source_labels, st.target_labels])
        lang = np.array([0] * len(st.source) + [1] * len(st.target))
        proj, ratio = pca_2d(x)
        score = silhouette_score(x, y)
        scores.append(score)
        for c, name in enumerate(class_names):
            for li, marker in ((0, "o"), (1, "^")):
                sel = (y == c) & (lang == li)
                row[0].scatter(proj[sel, 0], proj[sel, 1], s=7, marker=marker, color=cmap(c), alpha=0.7,
                               label=name if li == 0 else None, linewidths=0)
        for li, (name, color) in enumerate(zip(languages, ("#444444", "#e6550d"), strict=True)):
            sel = lang == li
            row[1].scatter(proj[sel, 0], proj[sel, 1], s=7, color=color, alpha=0.6, label=name.title(), linewidths=0)
        for ax in row:
            ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}%)")
            ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}%)")
        row[0].set_title(f"{st.stage}\nby emotion (● {languages[0]}, ▲ {languages[1]}) · silhouette {score:.3f}",
                         fontsize=7)
        row[1].set_title(f"{st.stage}\nby language", fontsize=7)
        row[0].legend(fontsize=6, markerscale=2)
        row[1].legend(fontsize=6, markerscale=2)
    fig.suptitle(textwrap.fill(f"{heading} — representation: {stages[0].space}", 110), fontsize=8)
    return _save(fig, stem), scores


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """A figure's numbers beside it (e.g. Fig. 6's silhouettes), written atomically."""
    atomic_write_text(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")
