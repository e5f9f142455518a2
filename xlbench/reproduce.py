"""Reproduce the paper's tables and Fig. 3: run its grids, put our numbers beside the published ones.

Each table is a list of :class:`Cell` s (a method configuration at an N_k and emotion set) run on
every target for the chosen seeds through :mod:`xlbench.grid` (existing records are reused).
The markdown is rendered from the records alone, matched by method, exact configuration,
target, N_k, emotion set, encoder, mode, selection and corpus kind, so ``xlbench leaderboard
check`` can re-render it. Paper numbers appear only for real corpora and a paper encoder.

:func:`embed_for_pca` is the one place that fits models without writing records: Fig. 6 needs
representations, which records do not hold. It trains one seed in-process and returns arrays
for :func:`xlbench.plots.pca_figure`; no number of it reaches the leaderboard.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from xlbench.aggregate import TARGET_ORDER, Loaded, encoder_label
from xlbench.errors import ConfigError, DataError
from xlbench.grid import ALL, GridJob, run_grid, split_overrides
from xlbench.paper import ENCODER_TITLES, TABLE8_CAPTION_NOTE, TABLE8_MATCH_NOTE, PaperResult, paper_results
from xlbench.stats import mean_std_over_seeds

TAUS = (0.5, 0.65, 0.85)
FIG3_NK = (0, 25, 50, 100)


@dataclass(frozen=True)
class Cell:
    """One method configuration the table needs, on every target."""

    method: str
    options: tuple[tuple[str, Any], ...]
    n_labeled: int
    emotions: str = "5"
    column: str = ""  # the column or row it fills


TABLES: dict[str, tuple[str, tuple[Cell, ...]]] = {
    "table4": ("Table 4: cross-lingual (train on English only), per target", (Cell("crosslingual", (), 0),)),
    "table5": (
        "Table 5: multi-lingual (English + all labelled target data), source and target UA",
        (Cell("multilingual", (), ALL), Cell("crosslingual", (), 0, column="English alone")),
    ),
    "table6": (
        "Table 6: 4 emotions (fear dropped), N_k = 0",
        (
            Cell("dann", (), 0, "4", "DANN"),
            Cell("nnpm", (), 0, "4", "NNPM"),
            Cell("pseudolabel", (("mode", "hard"),), 0, "4", "pseudolabel (hard)"),
            Cell("crosslingual", (), 0, "4", "crosslingual (lower bound)"),
        ),
    ),
    "table7": (
        "Table 7: N_k = 100, hard pseudo-labels, τ = 0.50 / 0.65 / 0.85",
        tuple(Cell("pseudolabel", (("mode", "hard"), ("tau", t)), 100, column=f"τ = {t:g}") for t in TAUS),
    ),
    "table8": (
        "Table 8: N_k = 100, hard pseudo-labels (τ = 0.5), without / with rebalancing",
        tuple(
            Cell("pseudolabel", (("mode", "hard"), ("tau", 0.5), ("rebalance", r)), 100,
                 column="with rebalancing" if r else "w/o rebalancing")
            for r in (False, True)
        ),
    ),
    "fig3": (
        "Fig. 3: pseudolabel, hard and soft, by N_k (numbers behind the figure)",
        tuple(Cell("pseudolabel", (("mode", m),), nk, column=f"{m}|{nk}") for m in ("hard", "soft") for nk in FIG3_NK),
    ),
}
ORDER = ("table4", "table5", "table6", "table7", "table8", "fig3")


def table_names(name: str) -> list[str]:
    if name == "all":
        return list(ORDER)
    if name not in TABLES:
        from xlbench.errors import unknown_name

        raise unknown_name("table", name, [*ORDER, "all"])
    return [name]


# -- planning -----------------------------------------------------------------------------------


@dataclass
class Plan:
    name: str
    jobs: list[GridJob]
    unavailable: dict[str, str] = field(default_factory=dict)  # method -> why
    configs: dict[Cell, dict[str, Any]] = field(default_factory=dict)  # expected config per cell


def _method_class(name: str):
    from xlbench.method import get_method

    return get_method(name)


def expected_configs(
    cells: Iterable[Cell], sets: Mapping[str, Any]
) -> tuple[dict[Cell, dict[str, Any]], dict[str, str]]:
    """The exact config each cell runs with (``--set`` values plus the cell's own options)."""
    from xlbench.method import make_config

    cells = list(cells)
    spread, missing = _spread(cells, sets)
    out: dict[Cell, dict[str, Any]] = {}
    for cell in cells:
        if cell.method in missing:
            continue
        clash = [k for k, _ in cell.options if k in spread[cell.method]]
        if clash:
            raise ConfigError(f"--set {', '.join(clash)}: this table sets {', '.join(clash)} itself")
        cfg = make_config(_method_class(cell.method), {**spread[cell.method], **dict(cell.options)})
        out[cell] = cfg.model_dump(mode="json")
    return out, missing


def _spread(cells: Sequence[Cell], sets: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``--set`` values per available method of the table, and the methods that are unavailable."""
    classes: dict[str, type] = {}
    missing: dict[str, str] = {}
    for m in dict.fromkeys(c.method for c in cells):
        try:
            classes[m] = _method_class(m)
        except ConfigError as exc:  # not installed, or a plugin that fails to import
            missing[m] = str(exc)
    if not sets or not classes:
        return {m: {} for m in classes}, missing
    fields = {m: set(c.Config.model_fields) for m, c in classes.items()}
    return split_overrides(dict(sets), list(classes), fields), missing


def plan(
    name: str,
    targets: Sequence[str],
    seeds: Sequence[int],
    sets: Mapping[str, Any] | None = None,
    results: Path | None = None,
    **common: Any,
) -> Plan:
    """The grid jobs of one table; methods that are not installed are listed, not fatal."""
    from xlbench.grid import effective_n_labeled

    _, cells = TABLES[name]
    configs, missing = expected_configs(cells, sets or {})
    spread, _ = _spread(cells, sets or {})
    jobs: list[GridJob] = []
    for cell in cells:
        if cell.method in missing:
            continue
        overrides = tuple({**spread[cell.method], **dict(cell.options)}.items())
        nk = effective_n_labeled(_method_class(cell.method), cell.n_labeled)
        for t in targets:
            job = GridJob(cell.method, t, nk, tuple(seeds), overrides, emotions=cell.emotions, results=results,
                          **common)
            if job not in jobs:
                jobs.append(job)
    return Plan(name, jobs, missing, configs)


# -- matching records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a reproduction's runs share; records outside it are ignored."""

    encoder: str  # encoder label as in the records
    mode: str
    selection: str
    synthetic: bool
    seeds: tuple[int, ...]


def cell_records(records: Sequence[Loaded], cell: Cell, config: Mapping[str, Any], target: str,
                 scope: Scope) -> list:
    emotions = int(cell.emotions)
    # The upper bound runs with every label whatever N_k the cell names.
    want_nk = "all" if cell.n_labeled == ALL or cell.method == "multilingual" else cell.n_labeled
    out = []
    for _, r in records:
        t = r.task
        if (r.method.name == cell.method and r.method.config == dict(config) and t.target == target
                and t.n_labeled == want_nk and len(t.emotions) == emotions and encoder_label(r) == scope.encoder
                and t.mode == scope.mode and t.selection == scope.selection and r.synthetic == scope.synthetic
                and t.seed in scope.seeds):
            out.append(r)
    return sorted(out, key=lambda r: r.task.seed)


def _cell_text(recs: Sequence, side: str = "target") -> str:
    if not recs:
        return "not run"
    return mean_std_over_seeds(r.metrics[side].ua for r in recs).format()


def _paper(table: str, target: str, scope: Scope, **kw: Any) -> list[PaperResult]:
    if scope.synthetic or scope.encoder not in ENCODER_TITLES:
        return []
    return [p for p in paper_results(table=table, target=target, **kw) if p.encoder in (scope.encoder, None)]


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


# -- rendering ----------------------------------------------------------------------------------


def render_tables(name: str, records: Sequence[Loaded], configs: Mapping[Cell, Mapping[str, Any]],
                  missing: Mapping[str, str], scope: Scope, targets: Sequence[str]) -> str:
    """The markdown body of one reproduction table (our numbers, and the paper's where they apply)."""
    heading, cells = TABLES[name]
    show_paper = not scope.synthetic and scope.encoder in ENCODER_TITLES
    kind = "SYNTHETIC corpus: no paper numbers apply" if scope.synthetic else "real corpora"
    lines = [f"## {heading}", "",
             f"Ours: {scope.encoder} ({scope.mode}), selection {scope.selection}, seeds "
             f"{','.join(map(str, scope.seeds))}, UA % mean ± std over seeds; {kind}."
             + ("" if scope.synthetic or show_paper else f" The paper has no {scope.encoder} numbers."), ""]

    def recs(cell: Cell, target: str) -> list:
        if cell.method in missing:
            return []
        return cell_records(records, cell, configs[cell], target, scope)

    def cell_or_missing(cell: Cell, target: str, side: str = "target") -> str:
        if cell.method in missing:
            return "not available"
        return _cell_text(recs(cell, target), side)

    rows: list[list[str]] = []
    if name in ("table4", "table5"):
        cell = cells[0]
        pt = "table4" if name == "table4" else "table5"
        headers = ["target", "ours: target UA", *(["paper: target UA"] if show_paper else []),
                   "ours: source UA", *(["paper: source UA"] if show_paper else []), "seeds"]
        if name == "table5":
            lower = cells[1]
            english = [r for t in targets for r in recs(lower, t)]
            p_eng = _paper("table4", targets[0], scope) if targets else []
            rows.append(["English alone (crosslingual, all targets' runs)", "—", *(["—"] if show_paper else []),
                         _cell_text(english, "source"), *([_num(p_eng[0].source_ua if p_eng else None)]
                                                          if show_paper else []), str(len(english))])
        for t in targets:
            rs = recs(cell, t)
            p = _paper(pt, t, scope)
            pr = p[0] if p else None
            paper_t = [_num(pr.target_ua if pr else None)] if show_paper else []
            paper_s = [_num(pr.source_ua if pr else None)] if show_paper else []
            rows.append([t.title(), cell_or_missing(cell, t), *paper_t, cell_or_missing(cell, t, "source"), *paper_s,
                         str(len(rs))])
    elif name == "table6":
        headers = ["method", *[t.title() for t in targets]]
        for cell in cells:
            rows.append([f"ours: {cell.column}", *[cell_or_missing(cell, t) for t in targets]])
        if show_paper:
            labels: dict[str, dict[str, float | None]] = {}
            for t in targets:
                for p in _paper("table6", t, scope):
                    labels.setdefault(f"{p.row_label}: {p.label}", {})[t] = p.target_ua
            for label, vals in labels.items():
                rows.append([label, *[_num(vals.get(t)) for t in targets]])
    elif name in ("table7", "table8"):
        headers = ["pair", "language"]
        for cell in cells:
            headers += [f"ours: {cell.column}", *([f"paper: {cell.column}"] if show_paper else [])]
        for t in targets:
            for side, lang in (("source", "English"), ("target", t.title())):
                row = [f"English → {t.title()}", lang]
                for cell in cells:
                    row.append(cell_or_missing(cell, t, side))
                    if show_paper:
                        cfg = configs.get(cell, dict(cell.options))
                        ps = [p for p in _paper(name, t, scope) if p.matches_options(cfg)]
                        row.append(_num((ps[0].source_ua if side == "source" else ps[0].target_ua) if ps else None))
                rows.append(row)
    else:  # fig3
        headers = ["target", "mode", *[f"N_k = {nk}" for nk in FIG3_NK]]
        for t in targets:
            for mode in ("hard", "soft"):
                row = [t.title(), mode]
                for nk in FIG3_NK:
                    cell = next(c for c in cells if c.column == f"{mode}|{nk}")
                    rs = recs(cell, t)
                    row.append(f"{_cell_text(rs)} (source {_cell_text(rs, 'source')})" if rs else
                               ("not available" if cell.method in missing else "not run"))
                rows.append(row)
    lines.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
    lines.append("")
    if name in ("table7", "table8"):
        lines.append(f"- {TABLE8_CAPTION_NOTE}" + (f" {TABLE8_MATCH_NOTE}" if show_paper else ""))
    if name == "fig3":
        lines.append("- Fig. 3 exists only as an image in the paper: there are no published numbers to compare. "
                     "`xlbench leaderboard plots` draws the figure from these records.")
    if name == "table6" and show_paper:
        lines.append("- The paper does not say which backbone its DANN and NNPM reimplementations used.")
    if show_paper and scope.mode == "frozen":
        lines.append("- The paper fine-tuned its encoder; these runs train a head on frozen features (`--finetune` "
                     "to match).")
    for m, why in sorted(missing.items()):
        lines.append(f"- {m}: not available ({why}).")
    lines.append("")
    return "\n".join(lines)


def document(names: Sequence[str], records: Sequence[Loaded], sets: Mapping[str, Any], scope: Scope,
             targets: Sequence[str], records_dir: Path, out_path: Path) -> str:
    """A whole generated reproduction page, marker and banner included."""
    from xlbench.leaderboard import _marker, _project_relative, _relative_to, banner

    meta = {
        "kind": "reproduce",
        "tables": list(names),
        "records": _relative_to(records_dir, out_path.parent),
        "encoder": scope.encoder,
        "mode": scope.mode,
        "selection": scope.selection,
        "synthetic": scope.synthetic,
        "seeds": list(scope.seeds),
        "targets": list(targets),
        "sets": dict(sets),
    }
    cells = [c for n in names for c in TABLES[n][1]]
    configs, missing = expected_configs(cells, sets)
    sets_text = "".join(f" --set {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sets.items())
    cmd = (f"reproduce {'all' if list(names) == list(ORDER) else names[0]} --encoder {scope.encoder} "
           f"--seeds {','.join(map(str, scope.seeds))} --results {_project_relative(records_dir, out_path.parent)}"
           f"{' --data synthetic' if scope.synthetic else ''}{' --finetune' if scope.mode == 'finetune' else ''}"
           f"{' --selection strict' if scope.selection == 'strict' else ''}{sets_text}")
    title = "Reproduction of Agarla et al. (2024)" + (" — SYNTHETIC corpus" if scope.synthetic else "")
    lines = [_marker(meta), f"# {title}", "", banner(cmd, f"the run records in `{meta['records']}`"), ""]
    if scope.synthetic:
        from xlbench.leaderboard import SYNTHETIC_WARNING

        lines += [SYNTHETIC_WARNING, ""]
    for n in names:
        tcells = TABLES[n][1]
        lines.append(render_tables(n, records, {c: configs[c] for c in tcells if c in configs},
                                   {m: w for m, w in missing.items() if any(c.method == m for c in tcells)},
                                   scope, targets))
    return "\n".join(lines).rstrip() + "\n"


def rerender_reproduction(path: Path, meta: Mapping[str, Any], records_dir: Path) -> str:
    from xlbench.leaderboard import sound_records

    records = sound_records(records_dir)
    scope = Scope(meta["encoder"], meta["mode"], meta["selection"], bool(meta["synthetic"]), tuple(meta["seeds"]))
    return document(meta["tables"], records, meta.get("sets", {}), scope, meta["targets"], records_dir, path)


def scope_from_records(records: Sequence[Loaded], run_ids: set[str], seeds: Sequence[int], mode: str,
                       selection: str) -> Scope:
    """The encoder and corpus kind the runs actually used (``--encoder auto`` resolves at run time)."""
    used = [r for _, r in records if r.run_id in run_ids]
    if not used:
        raise DataError("none of the reproduction's runs produced a record")
    encoders = {encoder_label(r) for r in used}
    kinds = {r.synthetic for r in used}
    if len(encoders) > 1 or len(kinds) > 1:
        raise DataError(f"the runs used several encoders or corpus kinds ({sorted(encoders)}); pass --encoder/--data")
    return Scope(encoders.pop(), mode, selection, kinds.pop(), tuple(seeds))


def reproduce(
    name: str,
    *,
    targets: Sequence[str] = TARGET_ORDER,
    seeds: Sequence[int] = (0, 1, 2),
    sets: Mapping[str, Any] | None = None,
    encoder: str = "auto",
    data: str = "auto",
    device: str = "auto",
    finetune: bool = False,
    selection: str = "paper",
    results: Path | None = None,
    out: Path | None = None,
    dry_run: bool = False,
    workers: int = 1,
    emit: Callable[[str], None] = print,
) -> tuple[str, Path | None]:
    """Run (or reuse) the grid of a table (or ``all``) and write the markdown; returns it and its path."""
    from xlbench.grid import with_results
    from xlbench.home import atomic_write_text, results_dir
    from xlbench.leaderboard import sound_records
    from xlbench.protocol import TARGET_LANGUAGES

    names = table_names(name)
    bad = [t for t in targets if t not in TARGET_LANGUAGES]
    if bad or not targets:
        raise ConfigError(f"--targets must be among {', '.join(TARGET_LANGUAGES)} (got {', '.join(bad) or 'none'})")
    sets = dict(sets or {})
    res_dir = Path(results or results_dir()).resolve()
    common = dict(encoder=encoder, data=data, device=device, finetune=finetune, selection=selection)
    plans = [plan(n, targets, seeds, sets, res_dir, **common) for n in names]
    jobs: list[GridJob] = []
    for p in plans:
        for j in p.jobs:
            if j not in jobs:
                jobs.append(j)
        for m, why in p.unavailable.items():
            emit(f"{p.name}: method {m} is not available ({why}); its cells will say so")
    jobs = with_results(jobs, res_dir)
    emit(f"reproduce {name}: {len(jobs)} job(s), {sum(len(j.seeds) for j in jobs)} run(s); records in {res_dir}")
    if dry_run:
        for i, j in enumerate(jobs, 1):
            emit(f"[{i}/{len(jobs)}] {j.label}")
        return "", None
    if not jobs:
        raise ConfigError(f"nothing to run for {name}: none of its methods is available")
    summary = run_grid(jobs, workers=workers, emit=emit)
    emit(summary.line())
    records = sound_records(res_dir)
    run_ids = {rid for r in summary.results for rid in r.run_ids}
    scope = scope_from_records(records, run_ids, seeds, "finetune" if finetune else "frozen", selection)
    if scope.encoder and not any(r.ok for r in summary.results):
        raise DataError("every job of the reproduction failed")
    out_dir = Path(out) if out is not None else Path("leaderboards") / "reproduction"
    fname = f"{'all' if name == 'all' else name}-{scope.encoder}-{'synthetic' if scope.synthetic else 'real'}.md"
    out_path = out_dir / fname
    text = document(names, records, sets, scope, targets, res_dir, out_path)
    atomic_write_text(out_path, text)
    if "fig3" in names:
        from xlbench.plots import fig3_nk_bars, section_of

        used = [(p, r) for p, r in records if r.run_id in run_ids and r.method.name == "pseudolabel"]
        if used:
            fig3_nk_bars(used, section_of(used[0][1]), out_dir)
    failed = summary.failed
    if failed:
        from xlbench.grid import GridError

        emit(text)
        raise GridError(f"{len(failed)} job(s) failed; the table shows 'not run' where records are missing")
    return text, out_path


# -- Fig. 6: representations before and after adaptation -------------------------------------------


def embed_for_pca(
    target: str,
    *,
    seed: int = 0,
    n_labeled: int = 0,
    sets: Mapping[str, Any] | None = None,
    encoder: str = "auto",
    data: str = "auto",
    device: str = "auto",
    finetune: bool = False,
    emotions: str = "5",
    methods: tuple[str, str] = ("crosslingual", "pseudolabel"),
    emit: Callable[[str], None] = print,
):
    """Fit the lower bound and pseudolabel (hard) for one seed in-process and return the test
    sets' representations (:class:`xlbench.plots.Embedded`), plus class names and languages.

    Fine-tune mode gives the encoder's embeddings (``Method.embed``). A frozen encoder does not
    change with adaptation, so there the representation is the head's output (log-probabilities):
    the only part that learned. No record is written.
    """
    import numpy as np

    from xlbench.plots import Embedded
    from xlbench.runner import RunRequest, make_backbone_factory, make_inputs, prepare
    from xlbench.tasks import build_task
    from xlbench.training import FitContext, TrainConfig, seed_everything

    out = []
    names: list[str] = []
    langs = ("english", target)
    for method in methods:
        overrides = dict(sets or {})
        cls = _method_class(method)
        fields = set(cls.Config.model_fields)
        overrides = {k: v for k, v in overrides.items() if k in fields}
        if method == "pseudolabel":
            overrides.setdefault("mode", "hard")
        req = RunRequest(method=method, target=target, encoder=encoder, n_labeled=n_labeled, seeds=(seed,),
                         emotions=emotions, overrides=tuple(overrides.items()), finetune=finetune, data=data,
                         device=device, show_progress=False)
        p = prepare(req)
        cfg = p.method_cls.Config(**p.config_dump)
        crop = cfg.crop_seconds if isinstance(cfg, TrainConfig) else 2.0
        utts = [u for d in (p.source, p.target) for part in d.parts.values() for u in part if u.emotion in p.classes]
        inputs = make_inputs(p, utts, crop, False)
        task, truth = build_task(p.source, p.target, classes=p.classes, n_labeled=p.n_labeled, seed=seed,
                                 selection=req.selection, needs=p.method_cls.needs)
        seed_everything(seed)
        model = p.method_cls(cfg)
        ctx = FitContext(inputs=inputs, device=p.device, seed=seed, n_classes=len(p.classes),
                         make_backbone=make_backbone_factory(p, inputs, task), show_progress=False,
                         label=f"{method} · {target}")
        emit(f"fitting {method} on {target} (seed {seed}) for the PCA figure")
        model.fit(task, ctx)
        sets_ = (truth.source_test, truth.target_test)
        if p.mode == "finetune":
            reps = [model.embed(s.keys) for s in sets_]
            space = "encoder embedding"
        else:
            reps = [np.log(np.clip(model.predict_proba(s.keys), 1e-8, 1.0)) for s in sets_]
            space = "head log-probabilities (frozen encoder)"
        if any(r is None for r in reps):
            raise ConfigError(f"method {method} gives no embeddings (Method.embed returned None)")
        stage = "before adaptation (crosslingual)" if method == methods[0] else f"after adaptation ({method} hard)"
        out.append(Embedded(stage, np.asarray(reps[0]), truth.source_test.labels, np.asarray(reps[1]),
                            truth.target_test.labels, space))
        names = [c.value for c in p.classes]
        synthetic = p.target.synthetic
        enc = p.encoder.info().name
    return out, names, langs, {"synthetic": synthetic, "encoder": enc}
