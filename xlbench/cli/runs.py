"""`xlbench run` and `xlbench runs list|show`."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import click
from tabulate import tabulate

from xlbench import progress
from xlbench.cli import offline_option
from xlbench.errors import ConfigError
from xlbench.method import config_label, get_method, parse_overrides
from xlbench.protocol import TARGET_LANGUAGES, data_label
from xlbench.records import CorruptRecord, RunRecord, find_record, iter_records, read_record
from xlbench.runner import Outcome, RunRequest, execute
from xlbench.stats import mean_std_over_seeds
from xlbench.tasks import ALL_LABELS

BOUNDS = ("crosslingual", "multilingual")


#: --seeds bounds (docs/reliability.md): a seed is a numpy/torch seed, so 0 .. 2**32 - 1; a
#: command runs at most this many seeds (each one is a whole training run)
MAX_SEED = 2**32 - 1
MAX_SEEDS = 1000


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0,1,2`` or ``0-4`` (or both) -> distinct seeds; ranges are sized before they are expanded."""
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("-"):
            raise ConfigError(f"--seeds: seeds must be non-negative, got {part!r}")
        lo_text, sep, hi_text = part.partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if sep else lo
        except ValueError:
            raise ConfigError(f"--seeds expects integers like 0,1,2 or 0-4 (none negative), got {text!r}") from None
        if not 0 <= lo <= MAX_SEED or not 0 <= hi <= MAX_SEED:
            raise ConfigError(f"--seeds: seeds must be between 0 and {MAX_SEED}, got {part!r}")
        if hi < lo:
            raise ConfigError(f"--seeds: the range {part!r} is empty (write it low-high)")
        spans.append((lo, hi))
    count = sum(hi - lo + 1 for lo, hi in spans)
    if count > MAX_SEEDS:
        raise ConfigError(f"--seeds {text!r} asks for {count:,} runs; at most {MAX_SEEDS} seeds per command")
    seeds = [s for lo, hi in spans for s in range(lo, hi + 1)]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must list distinct integers, got {text!r}")
    return tuple(seeds)


def parse_n_labeled(text: str) -> int:
    if text.strip().lower() == "all":
        return ALL_LABELS
    try:
        n = int(text)
    except ValueError:
        raise ConfigError(f"--n-labeled expects a number or 'all', got {text!r}") from None
    if n < 0:
        raise ConfigError(f"--n-labeled must be >= 0, got {n}")
    return n


def parse_options(items: Sequence[str], flag: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise ConfigError(f"{flag} expects key=value, got {item!r}")
        out.append((k.strip(), v.strip()))
    return tuple(out)


def fmt_mean_std(values: Sequence[float]) -> str:
    """Percent, mean ± sample std over seeds (xlbench.stats; one seed says so)."""
    return mean_std_over_seeds(values).format()


def summary_table(groups: dict[str, list[RunRecord]]) -> str:
    rows = []
    for name, recs in groups.items():
        if not recs:
            continue
        r0 = recs[0]
        rows.append(
            [
                name,
                r0.task.n_labeled,
                len(recs),
                fmt_mean_std([r.metrics["target"].ua for r in recs]),
                fmt_mean_std([r.metrics["target"].wa for r in recs]),
                fmt_mean_std([r.metrics["source"].ua for r in recs]),
                fmt_mean_std([r.metrics["source"].wa for r in recs]),
            ]
        )
    return tabulate(
        rows,
        headers=["method", "N_k", "seeds", "target UA %", "target WA %", "source UA %", "source WA %"],
        tablefmt="github",
        disable_numparse=True,
    )


def _report(outcomes: list[Outcome], name: str) -> None:
    done = sum(o.status != "skipped" for o in outcomes)
    skipped = len(outcomes) - done
    msg = f"{name}: {done} run(s) done"
    if skipped:
        msg += f", {skipped} reused from existing records (--overwrite to rerun)"
    ran = [o.record.timings for o in outcomes if o.status != "skipped"]
    if ran:
        msg += f"; {max(t.get('run_s', 0.0) for t in ran):.1f} s per run at most"
        peaks = [t["peak_gpu_memory_gb"] for t in ran if "peak_gpu_memory_gb" in t]
        if peaks:
            msg += f", peak GPU memory {max(peaks):.2f} GiB"
    progress.note(msg)


@click.command()
@click.option("--method", required=True, help="A registered method (`xlbench methods list`).")
@click.option("--target", required=True, help=f"Target language: {', '.join(TARGET_LANGUAGES)}.")
@click.option(
    "--encoder",
    default="auto",
    show_default=True,
    help="Encoder name or hf:<id|path> (downloaded on first use unless --offline); auto = HuBERT on a GPU if "
    "its weights are local, else opensmile-compare (auto never downloads).",
)
@click.option(
    "--encoder-option",
    "encoder_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encoder option, e.g. path=/models/hubert or layer=9 (repeatable).",
)
@click.option(
    "--n-labeled", default="0", show_default=True, help="N_k labelled target utterances (0, 25, 50, 100 ... or all)."
)
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds, e.g. 0,1,2 or 0-4: each 0 to 2**32-1, at most 1000 (docs/reliability.md).")
@click.option(
    "--emotions",
    type=click.Choice(["5", "4"]),
    default="5",
    show_default=True,
    help="5 emotions, or 4 (fear dropped, Table 6).",
)
@click.option(
    "--selection",
    type=click.Choice(["paper", "strict"]),
    default="paper",
    show_default=True,
    help="Model selection: paper = S-val + T-val; strict = S-val + K_t only.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Method option (repeatable), e.g. --set epochs=50."
)
@click.option(
    "--finetune", is_flag=True, help="Train the encoder end to end instead of a head on cached frozen features."
)
@click.option(
    "--data",
    type=click.Choice(["auto", "real", "synthetic"]),
    default="auto",
    show_default=True,
    help="auto = real corpora where prepared, else the generated synthetic corpus.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--overwrite", is_flag=True, help="Run again even where a record exists.")
@click.option(
    "--bounds/--no-bounds",
    default=True,
    show_default=True,
    help="Also run (or reuse) the lower and upper bounds with the same settings, for the summary.",
)
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results folder (default: $XLBENCH_RESULTS or <data home>/results).",
)
@click.option(
    "--source-corpora",
    default=None,
    metavar="LIST",
    help="English from these corpora only, e.g. ravdess or ravdess,tess (default: all of RAVDESS, SAVEE, TESS; "
    "a run refuses a partial union unless it is named here). Recorded and shown on the board.",
)
@click.option(
    "--no-audit",
    "no_audit",
    is_flag=True,
    help="Skip the hidden-label audit of the method (records say 'skipped'; leaderboards refuse them).",
)
@offline_option
def run(
    method,
    target,
    encoder,
    encoder_options,
    n_labeled,
    seeds,
    emotions,
    selection,
    overrides,
    finetune,
    data,
    device,
    overwrite,
    bounds,
    results,
    source_corpora,
    no_audit,
) -> None:
    """Run a method on one target language for several seeds and print a summary.

    Each seed writes one run record (JSON) and a copy in MLflow; runs whose record exists
    are reused, so an interrupted command resumes where it stopped.
    """
    set_values = parse_overrides(overrides)
    common = dict(
        target=target,
        encoder=encoder,
        encoder_options=parse_options(encoder_options, "--encoder-option"),
        n_labeled=parse_n_labeled(n_labeled),
        seeds=parse_seeds(seeds),
        emotions=emotions,
        selection=selection,
        finetune=finetune,
        data=data,
        device=device,
        results=results,
        source_corpora=tuple(c.strip() for c in source_corpora.split(",") if c.strip()) if source_corpora else None,
        audit=not no_audit,
    )
    main_req = RunRequest(method=method, overrides=tuple(set_values.items()), overwrite=overwrite, **common)
    groups: dict[str, list[RunRecord]] = {}
    outcomes = execute(main_req)
    _report(outcomes, method)
    groups[method] = [o.record for o in outcomes]
    if bounds and method not in BOUNDS:
        main_fields = set(get_method(method).Config.model_fields)
        for bound in BOUNDS:
            fields = set(get_method(bound).Config.model_fields)
            shared = {k: v for k, v in set_values.items() if k in fields and k in main_fields}
            outs = execute(RunRequest(method=bound, overrides=tuple(shared.items()), **common), on_note=lambda _: None)
            _report(outs, bound)
            groups[bound] = [o.record for o in outs]
        groups = {k: groups[k] for k in ("crosslingual", method, "multilingual")}
    rec = outcomes[0].record
    click.echo("")
    source = data_label(rec.task.source, rec.source_data.corpora, rec.source_data.synthetic)
    click.echo(
        f"{source} → {rec.task.target} · encoder {rec.encoder.name} ({rec.task.mode}) · "
        f"{len(rec.task.emotions)} emotions · selection {rec.task.selection}"
    )
    click.echo(summary_table(groups))
    if rec.synthetic:
        click.secho(
            "synthetic corpus: these numbers only show that the machinery works, not how well emotions are recognised",
            fg="yellow",
        )
    click.echo(f"records: {outcomes[0].path.parent}")


@click.group()
def runs() -> None:
    """List and show run records; copy them to MLflow."""


def _filters(rec: RunRecord, method, target, seed) -> bool:
    return (
        (method is None or rec.method.name == method)
        and (target is None or rec.task.target == target)
        and (seed is None or rec.task.seed == seed)
    )


def _natural(key: tuple) -> tuple:
    """Sort numbers as numbers (N_k 0, 25, 50, 100, then 'all')."""
    return tuple((0, x, "") if isinstance(x, int) else (1, 0, str(x)) for x in key)


@runs.command("list")
@click.option("--method", default=None)
@click.option("--target", default=None)
@click.option("--seed", type=int, default=None)
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--group/--no-group", default=False, help="Mean ± std over seeds per setting instead of one row per run.")
def list_runs(method, target, seed, results, group) -> None:
    """One line per run record (corrupt records are reported)."""
    rows, bad = [], []
    grouped: dict[tuple, list[RunRecord]] = defaultdict(list)
    for _path, rec in iter_records(results):
        if isinstance(rec, CorruptRecord):
            bad.append(str(rec))
            continue
        if not _filters(rec, method, target, seed):
            continue
        t = rec.task
        label = config_label(rec.method.name, rec.method.config)
        key = (rec.method.name, label, t.target, rec.encoder.name, t.mode, t.n_labeled, len(t.emotions), t.selection)
        grouped[key].append(rec)
        rows.append(
            [
                rec.run_id[:12],
                rec.method.name,
                label,
                t.target,
                rec.encoder.name,
                t.mode,
                t.n_labeled,
                len(t.emotions),
                t.selection,
                t.seed,
                f"{100 * rec.metrics['target'].ua:.2f}",
                f"{100 * rec.metrics['source'].ua:.2f}",
                "yes" if rec.synthetic else "no",
            ]
        )
    if group:
        rows = [
            [
                *k,
                len(v),
                fmt_mean_std([r.metrics["target"].ua for r in v]),
                fmt_mean_std([r.metrics["source"].ua for r in v]),
            ]
            for k, v in sorted(grouped.items(), key=lambda kv: _natural(kv[0]))
        ]
        headers = [
            "method",
            "options",
            "target",
            "encoder",
            "mode",
            "N_k",
            "emotions",
            "selection",
            "seeds",
            "target UA %",
            "source UA %",
        ]
    else:
        headers = [
            "run",
            "method",
            "options",
            "target",
            "encoder",
            "mode",
            "N_k",
            "emotions",
            "selection",
            "seed",
            "target UA %",
            "source UA %",
            "synthetic",
        ]
    click.echo(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) if rows else "no run records")
    for b in bad:
        click.secho(f"warning: {b}", fg="yellow", err=True)


@runs.command("show")
@click.argument("run_id")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the whole record.")
def show_run(run_id: str, results, as_json: bool) -> None:
    """Show one record (a unique prefix of its run id is enough)."""
    path = find_record(run_id, results)
    if path is None:
        raise ConfigError(f"no unique run record matches {run_id!r} (see `xlbench runs list`)")
    rec = read_record(path)
    if as_json:
        click.echo(json.dumps(json.loads(path.read_text()), indent=1))
        return
    t = rec.task
    click.echo(f"run {rec.run_id}  ({path})")
    click.echo(
        f"method {rec.method.name} v{rec.method.version} from {rec.method.distribution}; "
        f"config {json.dumps(rec.method.config)}"
    )
    click.echo(
        f"encoder {rec.encoder.name} ({t.mode}), dim {rec.encoder.dim}, weights {rec.encoder.weights_sha or '-'}"
    )
    click.echo(
        f"{t.source} → {t.target}, N_k {t.n_labeled}, seed {t.seed}, emotions {', '.join(t.emotions)}, "
        f"selection {t.selection}"
    )
    click.echo(
        f"data: source {', '.join(rec.source_data.corpora)}, target {', '.join(rec.target_data.corpora)}"
        + (" (synthetic)" if rec.synthetic else "")
    )
    click.echo(
        f"selected epoch {rec.selection.selected_epoch} on {', '.join(rec.selection.sets) or 'nothing (last epoch)'}"
    )
    for side in ("target", "source"):
        m = rec.metrics[side]
        click.echo(
            f"\n{side} test ({m.n} utterances): UA {100 * m.ua:.2f}  WA {100 * m.wa:.2f}  "
            f"macro-F1 {100 * m.macro_f1:.2f}"
        )
        click.echo(
            tabulate(
                [[c, *row] for c, row in zip(t.emotions, m.confusion, strict=True)],
                headers=["truth \\ pred", *t.emotions],
                tablefmt="github",
            )
        )
    if rec.pseudo_labels:
        click.echo("\npseudo-label rounds:")
        click.echo(
            tabulate(
                [
                    [
                        r.epoch,
                        r.n_selected,
                        r.n_unlabeled,
                        "-" if r.accuracy is None else f"{100 * r.accuracy:.1f}",
                        " ".join(f"{k[:3]}:{v}" for k, v in r.class_counts.items()),
                    ]
                    for r in rec.pseudo_labels
                ],
                headers=["epoch", "selected", "of U_t", "accuracy %", "classes"],
                tablefmt="github",
            )
        )
    click.echo(f"\ntimings {rec.timings}; device {rec.environment.device}; git {rec.environment.git_sha or '-'}")


@runs.command("sync-mlflow")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None)
def sync_mlflow(results) -> None:
    """Copy every run record that MLflow lacks (each record is copied once; run it any time)."""
    from xlbench.home import results_dir
    from xlbench.tracking import enabled, sync, tracking_uri

    if not enabled():
        raise ConfigError("MLflow tracking is switched off (XLBENCH_MLFLOW=0); unset it to sync")
    root = results or results_dir()
    res = sync(root)
    line = f"MLflow {tracking_uri()}: {res.copied} record(s) copied, {res.present} already there"
    if res.corrupt:
        line += f", {res.corrupt} corrupt record(s) skipped (`xlbench runs list` names them)"
    click.echo(line)
