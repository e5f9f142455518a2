"""`xlbench leaderboard render|check|validate|plots|pca`, `xlbench reproduce` and `xlbench grid`.

The command functions only parse options and print; the work is in xlbench.report (validate,
render, check, figures), xlbench.reproduce, xlbench.representations and xlbench.grid.
"""

from __future__ import annotations

from pathlib import Path

import click

from xlbench.errors import ConfigError, DataError

RECORDS_HELP = "Folder of run records (default: $XLBENCH_RESULTS or <data home>/results)."


def _parse_sets(items: tuple[str, ...]) -> dict:
    from xlbench.method import parse_overrides

    return parse_overrides(items)


def _parse_sweeps(items: tuple[str, ...]) -> dict[str, list]:
    from xlbench.method import parse_overrides

    out: dict[str, list] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--sweep expects key=v1,v2,..., got {item!r}")
        # each value is parsed as a --set value would be (JSON where it parses, else a string)
        out[key] = [parse_overrides([f"{key}={v.strip()}"])[key] for v in raw.split(",") if v.strip()]
    return out


def _n_labeled_list(text: str) -> list[int]:
    from xlbench.cli.runs import parse_n_labeled

    return [parse_n_labeled(t) for t in text.split(",") if t.strip()] or [0]


# -- grid -------------------------------------------------------------------------------------


@click.command()
@click.option("--methods", required=True, help="Comma-separated methods, e.g. crosslingual,multilingual,pseudolabel.")
@click.option("--targets", default="french,german,italian,persian", show_default=True, help="Comma-separated targets.")
@click.option("--n-labeled", default="0", show_default=True, help="N_k values, e.g. 0,25,50,100 (bounds run once).")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds, e.g. 0,1,2 or 0-4: each 0 to 2**32-1, at most 1000 (docs/reliability.md).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option for every method that has it, or METHOD.KEY=VALUE for one (repeatable).",
)
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Option with several values: one configuration per value (repeatable; combinations multiply).",
)
@click.option("--emotions", type=click.Choice(["5", "4"]), default="5", show_default=True)
@click.option("--selection", type=click.Choice(["paper", "strict"]), default="paper", show_default=True)
@click.option(
    "--encoder", default="auto", show_default=True, help="Encoder name (auto: HuBERT on a GPU if local, else ComParE)."
)
@click.option("--encoder-option", "encoder_options", multiple=True, metavar="KEY=VALUE")
@click.option("--finetune", is_flag=True, help="Train the encoder end to end.")
@click.option("--data", type=click.Choice(["auto", "real", "synthetic"]), default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Local executor: parallel processes (1-256).")
@click.option("--per-gpu", type=click.IntRange(1, 64), default=None, metavar="N",
              help="Local executor on CUDA: N runs at a time on each visible GPU, each capped at 1/N of its "
              "memory (refused without CUDA: use --workers on a CPU).")
@click.option("--partition", default=None, help="Slurm partition.")
@click.option("--gpus-per-node", type=click.IntRange(1, 64), default=None, help="Slurm: GPUs per job.")
@click.option("--cpus-per-task", type=click.IntRange(1, 1024), default=None, help="Slurm: CPUs per job.")
@click.option("--mem-gb", type=click.FloatRange(0, 65_536, min_open=True), default=None, help="Slurm: memory per job.")
@click.option("--timeout-min", type=click.IntRange(1, 43_200), default=240, show_default=True,
              help="Slurm: time limit per job, minutes.")
@click.option("--submitit-folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Slurm: where submitit keeps scripts and logs (default <data home>/submitit).")
@click.option("--submitit-cluster", type=click.Choice(["slurm", "local", "debug"]), default="slurm", hidden=True)
@click.option("--overwrite", is_flag=True, help="Run again even where records exist.")
@click.option("--dry-run", is_flag=True, help="List the jobs and stop.")
@click.option("--source-corpora", default=None, metavar="LIST",
              help="English from these corpora only (default: RAVDESS + SAVEE + TESS; see `xlbench run --help`).")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None, help=RECORDS_HELP)
def grid(
    methods, targets, n_labeled, seeds, sets, sweeps, emotions, selection, encoder, encoder_options, finetune,
    data, device, executor, workers, per_gpu, partition, gpus_per_node, cpus_per_task, mem_gb, timeout_min,
    submitit_folder, submitit_cluster, overwrite, dry_run, source_corpora, results,
) -> None:
    """Run methods × targets × N_k × seeds; existing records are reused, so it resumes.

    Example: xlbench grid --methods crosslingual,multilingual,pseudolabel --sweep mode=hard,soft
    --n-labeled 0,25,50,100
    """
    from xlbench import grid as g
    from xlbench.cli.runs import parse_options, parse_seeds

    if executor == "slurm":
        g.require_submitit()  # fail in one line before planning
    slots = g.gpu_slots(per_gpu, device, executor) if per_gpu is not None else None  # refused early
    jobs = g.plan_grid(
        g.parse_list(methods, "--methods"),
        g.parse_list(targets, "--targets"),
        _n_labeled_list(n_labeled),
        parse_seeds(seeds),
        sets=_parse_sets(sets),
        sweeps=_parse_sweeps(sweeps),
        encoder=encoder,
        encoder_options=parse_options(encoder_options, "--encoder-option"),
        emotions=emotions,
        selection=selection,
        finetune=finetune,
        data=data,
        device=device,
        overwrite=overwrite,
        source_corpora=_corpora(source_corpora),
    )
    jobs = g.with_results(jobs, results)
    n_runs = sum(len(j.seeds) for j in jobs)
    click.echo(f"grid: {len(jobs)} job(s), {n_runs} run(s); records in {jobs[0].results}", err=True)
    if dry_run:
        for i, job in enumerate(jobs, 1):
            click.echo(f"[{i}/{len(jobs)}] {job.label}")
        return
    slurm = g.SlurmOptions(
        partition=partition, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task, mem_gb=mem_gb,
        timeout_min=timeout_min, folder=submitit_folder, cluster=submitit_cluster,
    )
    summary = g.run_grid(jobs, executor=executor, workers=workers, slurm=slurm, emit=lambda s: click.echo(s, err=True),
                         gpus=slots)
    click.echo(summary.line())
    if summary.failed:
        for r in summary.failed:
            click.echo(f"  failed: {r.job.label}: {r.error}", err=True)
        raise g.GridError(
            f"{len(summary.failed)} of {len(jobs)} grid job(s) failed; finished runs are kept, "
            "run the same command again to retry the rest"
        )
    click.echo(f"next: xlbench leaderboard render --records {jobs[0].results}")


def _corpora(text: str | None) -> tuple[str, ...] | None:
    """``--source-corpora ravdess,tess`` -> ("ravdess", "tess"); None when not given."""
    return tuple(c.strip() for c in text.split(",") if c.strip()) if text else None


# -- leaderboard ------------------------------------------------------------------------------

DEFAULT_BOARD = Path("leaderboards")


def _records_dir(records: Path | None) -> Path:
    if records is not None:
        return records
    from xlbench.home import results_dir

    return results_dir()


@click.group()
def leaderboard() -> None:
    """Render, check and validate the leaderboard (markdown under leaderboards/)."""


@leaderboard.command("render", short_help="Write the leaderboard markdown (and figures) from run records.")
@click.option("--records", type=click.Path(file_okay=False, path_type=Path), default=None, help=RECORDS_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_BOARD / "local",
              show_default=True, help="Folder for README.md (and plots/).")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Also draw the figures under OUT/plots.")
def render_cmd(records: Path | None, out: Path, plots: bool) -> None:
    """Write the leaderboard markdown from run records (refuses records that `validate` rejects)."""
    from xlbench.report.board import render

    path = render(_records_dir(records), out, plots=plots, emit=lambda s: click.echo(s, err=True))
    click.echo(f"wrote {path}")


@leaderboard.command("check", short_help="Exit non-zero when generated markdown is stale.")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_BOARD,
              show_default=True, help="Folder of generated markdown to verify.")
def check_cmd(root: Path) -> None:
    """Exit non-zero when generated markdown is stale (re-rendered in memory and compared)."""
    from xlbench.report.check import check

    results = check(root)
    if not results:
        click.echo(f"no generated markdown under {root}")
        return
    bad = [r for r in results if r.status != "ok"]
    for r in results:
        click.echo(f"{r.status:5}  {r.path}" + (f": {r.detail}" if r.detail else ""), err=r.status != "ok")
    if bad:
        raise DataError(
            f"{len(bad)} generated file(s) under {root} are stale or cannot be verified; "
            "regenerate them with the command in each file's banner"
        )


@leaderboard.command("validate", short_help="Reject defective run records, one line per defect.")
@click.option("--records", type=click.Path(file_okay=False, path_type=Path), default=None, help=RECORDS_HELP)
@click.option("--min-seeds", type=click.IntRange(1, 1000), default=3, show_default=True)
def validate_cmd(records: Path | None, min_seeds: int) -> None:
    """Reject records with a wrong schema, a tampered run id, metrics that disagree with their stored
    predictions, a split hash unlike the shipped split files, test-set model selection, or too few
    seeds for a setting (one line per defect)."""
    from xlbench.report.validate import validate_records

    root = _records_dir(records)
    good, defects = validate_records(root, min_seeds=min_seeds)
    for d in defects:
        click.echo(d.line())
    if defects:
        raise DataError(f"{len(defects)} defect(s) found in the records under {root}")
    click.echo(f"{len(good)} record(s) under {root}: all valid")


@leaderboard.command("plots", short_help="Draw Figs. 3-5 and confusion matrices from run records.")
@click.option("--records", type=click.Path(file_okay=False, path_type=Path), default=None, help=RECORDS_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_BOARD / "plots",
              show_default=True)
def plots_cmd(records: Path | None, out: Path) -> None:
    """Draw Figs. 3-5 and the confusion matrices (PNG and SVG) from run records."""
    from xlbench.report.figures import leaderboard_figures
    from xlbench.report.validate import sound_records

    paths = leaderboard_figures(sound_records(_records_dir(records)), out)
    for p in paths:
        click.echo(str(p))


@leaderboard.command("pca", short_help="Fig. 6: PCA and silhouette before/after adaptation (fits one seed).")
@click.option("--target", required=True, help="Target language.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--n-labeled", type=click.IntRange(min=0), default=0, show_default=True,
              help="N_k of the adapted model (paper: 0).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Method option for both fits.")
@click.option("--encoder", default="auto", show_default=True)
@click.option("--finetune", is_flag=True, help="Train the encoder end to end (PCA of its embeddings).")
@click.option("--data", type=click.Choice(["auto", "real", "synthetic"]), default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_BOARD / "plots",
              show_default=True)
def pca_cmd(target, seed, n_labeled, sets, encoder, finetune, data, device, out) -> None:
    """Fig. 6: fit crosslingual and pseudolabel (hard) for one seed in-process (no records written),
    and plot PCA of the test sets' representations with silhouette scores."""
    from xlbench.protocol import language
    from xlbench.report.figures import pca_figure, slug, write_json
    from xlbench.representations import embed_for_pca

    tgt = language(target).name
    stages, names, langs, info = embed_for_pca(
        tgt, seed=seed, n_labeled=n_labeled, sets=_parse_sets(sets), encoder=encoder, data=data, device=device,
        finetune=finetune, emit=lambda s: click.echo(s, err=True),
    )
    kind = "SYNTHETIC corpus" if info["synthetic"] else "real corpora"
    heading = (f"Fig. 6 (reproduction): English and {tgt.title()} test sets, before and after adaptation — "
               f"{kind}, {info['encoder']}, seed {seed}, N_k = {n_labeled}")
    stem = out / slug("fig6-pca", "synthetic" if info["synthetic"] else "real", info["encoder"], tgt, f"seed{seed}")
    png, scores = pca_figure(stages, names, langs, heading, stem)
    write_json(stem.with_suffix(".json"), {
        "target": tgt, "seed": seed, "n_labeled": n_labeled, "encoder": info["encoder"],
        "synthetic": info["synthetic"], "space": stages[0].space,
        "silhouette": {s.stage: round(v, 6) for s, v in zip(stages, scores, strict=True)},
    })
    for s, v in zip(stages, scores, strict=True):
        click.echo(f"{s.stage}: silhouette {v:.3f} ({s.space})")
    click.echo(f"wrote {png} (+ .svg, .json)")


# -- reproduce --------------------------------------------------------------------------------


@click.command()
@click.argument("table", metavar="TABLE")
@click.option("--encoder", default="auto", show_default=True, help="Encoder (the paper's: hubert, byols, emotioncnn).")
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--targets", default="french,german,italian,persian", show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Option for every method having it.")
@click.option("--encoder-option", "encoder_options", multiple=True, metavar="KEY=VALUE",
              help="Encoder option, e.g. path=/models/hubert (repeatable).")
@click.option("--finetune", is_flag=True, help="Train the encoder end to end, with your settings.")
@click.option("--recipe", type=click.Choice(["frozen", "paper"]), default=None,
              help="paper: the paper's setting end to end (HuBERT base fine-tuned, E=100, batch 100, 2 s crops; "
              "needs a GPU, refused on a CPU with the estimated time). Default: frozen encoder, cached features.")
@click.option("--selection", type=click.Choice(["paper", "strict"]), default="paper", show_default=True)
@click.option("--data", type=click.Choice(["auto", "real", "synthetic"]), default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True)
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None, help=RECORDS_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_BOARD / "reproduction",
              show_default=True)
@click.option("--dry-run", is_flag=True, help="List the runs and stop.")
@click.option("--source-corpora", default=None, metavar="LIST",
              help="English from these corpora only (default: RAVDESS + SAVEE + TESS; see `xlbench run --help`).")
def reproduce(table, encoder, seeds, targets, sets, encoder_options, finetune, recipe, selection, data, device, workers,
              results, out, dry_run, source_corpora) -> None:
    """Run the grid of a paper table and put our numbers beside the paper's.

    TABLE: table4, table5, table6, table7, table8, fig3 or all. Existing records are reused.
    """
    from xlbench.cli.runs import parse_options, parse_seeds
    from xlbench.grid import parse_list
    from xlbench.protocol import language
    from xlbench.report.paper_tables import table_names
    from xlbench.reproduce import reproduce as run_reproduction

    table_names(table)  # unknown table: one line, before anything else
    text, path = run_reproduction(
        table, targets=[language(t).name for t in parse_list(targets, "--targets")], seeds=parse_seeds(seeds),
        sets=_parse_sets(sets), encoder=encoder, data=data, device=device, finetune=finetune, selection=selection,
        results=results, out=out, dry_run=dry_run, workers=workers, emit=lambda s: click.echo(s, err=True),
        source_corpora=_corpora(source_corpora), recipe=recipe,
        encoder_options=parse_options(encoder_options, "--encoder-option"),
    )
    if text:
        click.echo(text)
        click.echo(f"wrote {path}", err=True)
