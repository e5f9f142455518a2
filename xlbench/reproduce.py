"""Reproduce the paper's tables and Fig. 3: run their grids, then write our numbers beside the published ones.

The running half of a reproduction: each table of :mod:`xlbench.report.paper_tables` becomes grid
jobs (:mod:`xlbench.grid`) on every target for the chosen seeds, existing records are reused, and
the page is rendered from the records by :mod:`xlbench.report.paper_pages`, which
``xlbench leaderboard check`` can do again without running anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xlbench.errors import ConfigError, DataError
from xlbench.grid import GridError, GridJob, run_grid, with_results
from xlbench.home import atomic_write_text, results_dir
from xlbench.method import get_method
from xlbench.method_options import effective_n_labeled
from xlbench.protocol import TARGET_LANGUAGES
from xlbench.recipes import (
    CPU_LIMIT_S,
    PAPER_TRAINING,
    RunSize,
    check_recipe,
    cpu_gflops,
    estimate,
    get_recipe,
    human_duration,
)
from xlbench.report.figures import fig3_nk_bars, section_of
from xlbench.report.paper_pages import reproduction_page, scope_from_records
from xlbench.report.paper_tables import TABLES, Cell, expected_configs, spread_sets, table_names
from xlbench.report.validate import sound_records


@dataclass
class Plan:
    """The grid jobs of one paper table, and what cannot run."""

    name: str
    jobs: list[GridJob]
    unavailable: dict[str, str] = field(default_factory=dict)  # method -> why
    configs: dict[Cell, dict[str, Any]] = field(default_factory=dict)  # expected config per cell


def plan(
    name: str,
    targets: Sequence[str],
    seeds: Sequence[int],
    sets: Mapping[str, Any] | None = None,
    results: Path | None = None,
    **common: Any,
) -> Plan:
    """The grid jobs of one table; methods that are not installed are listed, not fatal."""
    _, cells = TABLES[name]
    configs, missing = expected_configs(cells, sets or {})
    spread, _ = spread_sets(cells, sets or {})
    jobs: list[GridJob] = []
    for cell in cells:
        if cell.method in missing:
            continue
        # options equal to the method's defaults are left out (a recipe sets the paper's values,
        # the defaults of the built-ins): the same runs, shorter labels
        defaults = get_method(cell.method).Config().model_dump(mode="json")
        overrides = tuple((k, v) for k, v in {**spread[cell.method], **dict(cell.options)}.items()
                          if defaults.get(k, object()) != v)
        nk = effective_n_labeled(get_method(cell.method), cell.n_labeled)
        for t in targets:
            job = GridJob(cell.method, t, nk, tuple(seeds), overrides, emotions=cell.emotions, results=results,
                          **common)
            if job not in jobs:
                jobs.append(job)
    return Plan(name, jobs, missing, configs)


def run_sizes(jobs: Sequence[GridJob], data: str, source_corpora: tuple[str, ...] | None) -> list[RunSize]:
    """The size of every run of ``jobs`` (one per seed), from the manifests (no audio is read)."""
    from xlbench.languages import load_language
    from xlbench.protocol import SOURCE_LANGUAGE, emotion_set

    source = load_language(SOURCE_LANGUAGE, data, source_corpora)  # type: ignore[arg-type]
    targets: dict[str, Any] = {}
    sizes = []
    for job in jobs:
        target = targets.setdefault(job.target, load_language(job.target, data))  # type: ignore[arg-type]
        classes = emotion_set(job.emotions)

        def part(d: Any, split: str, classes: Any = classes) -> list[Any]:
            return [u for u in d.parts[split] if u.emotion in classes]

        trains_on_target = bool(get_method(job.method).needs & {"target_labeled", "target_unlabeled"})
        n_train = len(part(source, "train")) + (len(part(target, "train")) if trains_on_target else 0)
        val = sum(u.duration for u in part(source, "val") + part(target, "val"))
        test = sum(u.duration for u in part(source, "test") + part(target, "test"))
        sizes += [RunSize(n_train, val, test)] * len(job.seeds)
    return sizes


def cpu_check(
    jobs: Sequence[GridJob], data: str, source_corpora: tuple[str, ...] | None, encoder_options: dict[str, str],
    device: Any, dry_run: bool,
) -> str:
    """One line with the estimated time of fine-tuning ``jobs`` on a CPU; a ConfigError when a
    CPU would take longer than ``CPU_LIMIT_S`` (on a GPU: what the plan is, without an estimate)."""
    n = sum(len(j.seeds) for j in jobs)
    if device.type != "cpu":
        return f"recipe paper: {n} fine-tuning run(s) of hubert on {device}"
    from xlbench.encoders.cost import flops_per_audio_second

    flops = flops_per_audio_second("hubert", encoder_options) or math.inf
    cfg = PAPER_TRAINING
    seconds = estimate(run_sizes(jobs, data, source_corpora), flops, cpu_gflops(), cfg["epochs"], cfg["crop_seconds"])
    line = (f"recipe paper: {n} fine-tuning run(s) of hubert ({flops / 1e9:.3g} GFLOP per audio second) would take "
            f"about {human_duration(seconds)} on this CPU (estimate at {cpu_gflops():.0f} GFLOP/s)")
    if seconds > CPU_LIMIT_S and not dry_run:
        raise ConfigError(f"{line}: refused; run it where a GPU is (--device cuda), or drop --recipe for the "
                          "frozen recipe, which runs on a CPU")
    return line


def reproduce(
    name: str,
    *,
    targets: Sequence[str] = TARGET_LANGUAGES,
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
    source_corpora: tuple[str, ...] | None = None,
    recipe: str | None = None,
    encoder_options: tuple[tuple[str, str], ...] = (),
) -> tuple[str, Path | None]:
    """Run (or reuse) the grid of a table (or ``all``) and write the markdown; returns it and its path.

    ``recipe`` (xlbench.recipes): ``paper`` fine-tunes HuBERT base with the paper's E, batch and
    crop, and is refused on a CPU when its estimated time is over ``CPU_LIMIT_S``.
    """
    names = table_names(name)
    bad = [t for t in targets if t not in TARGET_LANGUAGES]
    if bad or not targets:
        raise ConfigError(f"--targets must be among {', '.join(TARGET_LANGUAGES)} (got {', '.join(bad) or 'none'})")
    sets = dict(sets or {})
    chosen = get_recipe(recipe) if recipe else None
    if chosen is not None:
        encoder = check_recipe(chosen, encoder, sets, finetune)
        finetune = chosen.finetune
        sets = {**sets, **chosen.fixed}
    res_dir = Path(results or results_dir()).resolve()
    common = dict(encoder=encoder, data=data, device=device, finetune=finetune, selection=selection,
                  source_corpora=source_corpora, encoder_options=tuple(encoder_options))
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
    if chosen is not None and chosen.finetune and jobs:
        from xlbench.features import resolve_device

        emit(cpu_check(jobs, data, source_corpora, dict(encoder_options), resolve_device(device), dry_run))
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
    if chosen is not None and chosen.name != "frozen":
        scope = replace(scope, recipe=chosen.name)
    if scope.encoder and not any(r.ok for r in summary.results):
        raise DataError("every job of the reproduction failed")
    out_dir = Path(out) if out is not None else Path("leaderboards") / "reproduction"
    # fine-tuned and frozen pages of one encoder are different settings: different files
    tuned = "-finetune" if finetune else ""
    fname = f"{'all' if name == 'all' else name}-{scope.encoder}{tuned}-{'synthetic' if scope.synthetic else 'real'}.md"
    out_path = out_dir / fname
    text = reproduction_page(names, records, sets, scope, targets, res_dir, out_path)
    atomic_write_text(out_path, text)
    if "fig3" in names:
        used = [(p, r) for p, r in records if r.run_id in run_ids and r.method.name == "pseudolabel"]
        if used:
            fig3_nk_bars(used, section_of(used[0][1]), out_dir)
    failed = summary.failed
    if failed:
        emit(text)
        raise GridError(f"{len(failed)} job(s) failed; the table shows 'not run' where records are missing")
    return text, out_path
