"""The leaderboard page: scored tables -> markdown.

A renderer: it formats what :mod:`xlbench.report.tables` and :mod:`xlbench.report.significance`
computed and adds nothing of its own. The page is a pure function of the records and the paths
(no dates; seeded resampling; sorted output), so :mod:`xlbench.report.check` can render it again
in memory and compare byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from xlbench.paper import ENCODER_TITLES, TABLE8_CAPTION_NOTE, TABLE8_MATCH_NOTE, PaperResult
from xlbench.protocol import SOURCE_LANGUAGE
from xlbench.report.formatting import (
    DASH,
    fmt_delta,
    fmt_interval,
    fmt_p,
    nk_text,
    paper_number,
    title,
)
from xlbench.report.generated import SYNTHETIC_WARNING, banner, marker, project_relative, relative_to
from xlbench.report.identity import config_labels, split_prefix, system_key
from xlbench.report.significance import N_BOOTSTRAP, N_PERMUTATIONS, RowStats, ScoredTable, score_tables
from xlbench.report.tables import System, Table, build_tables
from xlbench.report.validate import Loaded

HEADERS = [
    "method", "N_k", "target UA %", "UA 95% CI", "Δ vs lower", "Δ 95% CI", "p vs lower (Holm)", "McNemar p",
    "gap closed", "source UA %", "seeds", "encoder", "version", "audit", "records", "target split",
]
ROLE_SUFFIX = {"lower": " (lower bound)", "upper": " (upper bound)", "method": ""}
VARIANT_SUFFIX = {"lower": " (lower-bound variant)", "upper": " (upper-bound variant)", "method": ""}


def role_suffix(s: System, t: Table) -> str:
    """A bound's other configurations are variants, compared with the reference like any method."""
    return ROLE_SUFFIX[s.role] if s is t.lower or s is t.upper or s.role == "method" else VARIANT_SUFFIX[s.role]

LEGEND = f"""\
How to read a table (details: docs/leaderboard.md, statistics: docs/statistics.md):

- **target UA %**: unweighted accuracy (mean per-class recall) on the target test set, mean ± sample
  std over seeds. Bold: the highest mean UA (the upper bound, which sees every target label, is not
  a contender); it is a description, not a test.
- **UA 95% CI**: percentile bootstrap interval of the seed-pooled UA, resampling whole test speakers.
- **Δ vs lower**: UA points above the lower bound (crosslingual, English only), means over seeds.
- **Δ 95% CI**: percentile bootstrap interval of ΔUA against the lower bound, on the predictions
  pooled over the common seeds, resampling whole test speakers ({N_BOOTSTRAP:,} resamples).
- **p vs lower (Holm)**: the pre-specified test of every system against the lower bound: a paired
  permutation test of ΔUA on the same pooled predictions (an utterance's seed replicates swap
  together, {N_PERMUTATIONS:,} resamples), Holm-adjusted over the systems of the table. The upper
  bound is a reference: its interval is shown, it is not tested. **McNemar p**: accuracy (WA)
  against the lower bound on the same pairs, unadjusted, a cross-check.
- **gap closed**: (UA − lower) / (upper − lower), the share of the transfer gap the method closes
  (upper bound = multilingual, every target label).
- **seeds** ⚠: fewer than 3 seeds, or not the same seeds as the other systems in the table.
- **version**: method version · distribution that provided it; **audit**: the verdict of the
  hidden-label invariance audit on the method's version, code and config, with its fingerprint
  (`validate` admits passing audits only); **target split**: split-file hash prefix.
- The bounds (crosslingual at N_k = 0, multilingual with every label) are repeated in each N_k table
  of their target as references."""


def row_cells(scored: ScoredTable, r: RowStats) -> list[str]:
    """The cells of one system's row."""
    t, s, vs = scored.table, r.system, r.versus_lower
    ua = f"**{s.ua_text}**" if s is t.best else s.ua_text
    ua_ci = DASH if r.ua_ci is None else fmt_interval(*r.ua_ci)
    delta_ci = DASH if vs is None else fmt_interval(vs.ci_low, vs.ci_high, signed=True)
    if s is t.lower:
        p, mc = "(reference)", DASH
    elif vs is not None and not vs.tested:
        p, mc = "(not tested)", DASH
    elif vs is None:
        p, mc = (DASH, DASH) if t.lower is None else ("n/a", "n/a")
    else:
        p, mc = fmt_p(vs.p_holm), fmt_p(vs.mcnemar_p)
    gap = DASH if r.gap_closed is None else f"{100 * r.gap_closed:.0f}%"
    seeds = str(len(s.seeds)) + (" ⚠" if t.seed_flag(s) else "")
    rec0 = s.records[0][1]
    version = f"v{s.version} · {rec0.method.distribution} {rec0.method.distribution_version or ''}".strip()
    audits = sorted({(rec.audit.verdict, rec.audit.fingerprint[:8]) for _, rec in s.records})
    audit = ", ".join(f"{verdict} {fp}" for verdict, fp in audits)
    return [
        s.label + role_suffix(s, t), nk_text(s.n_labeled), ua, ua_ci, fmt_delta(r.delta_lower), delta_ci, p, mc,
        gap, s.source_text, seeds, t.setting.encoder_text, version, audit, str(len(s.records)),
        split_prefix(rec0.target_data.split_hashes),
    ]


def paper_cells(p: PaperResult) -> list[str]:
    """A published row: its UA numbers, dashes elsewhere (the paper gives no predictions to test)."""
    name = f"{p.row_label}: Table {p.table[-1]}, {p.label}"
    enc = ENCODER_TITLES[p.encoder] if p.encoder else DASH
    row = [DASH] * len(HEADERS)
    row[0], row[1], row[2] = name, nk_text(p.n_labeled), paper_number(p.target_ua)
    row[HEADERS.index("source UA %")] = paper_number(p.source_ua)
    row[HEADERS.index("encoder")] = enc
    row[HEADERS.index("version")] = "published"
    return row


def table_heading(scored: ScoredTable) -> str:
    t = scored.table
    kind = "synthetic corpus" if t.synthetic else "real corpora"
    source = "" if t.setting.source == SOURCE_LANGUAGE else f"source {t.setting.source}; "
    return (
        f"### {title(t.target)} · N_k = {nk_text(t.n_labeled)} · {t.emotions} emotions "
        f"({kind}; {source}{t.setting.encoder_text}, {t.mode}; selection {t.selection})"
    )


def section_heading(section: tuple) -> str:
    synthetic, source, encoder, mode, selection = section
    kind = "synthetic corpus (generated speech)" if synthetic else "real corpora"
    source_text = "" if source == SOURCE_LANGUAGE else f" · source {source}"
    return f"## {kind}{source_text} · encoder {encoder} ({mode}) · selection {selection}"


def notes(scored: ScoredTable) -> list[str]:
    """The lines under a table: test set and detectability, the Holm family, caveats, paper notes."""
    t, ts = scored.table, scored.test_set
    out = [
        f"Test set: {ts.n_utterances} {title(t.target)} utterances from {ts.n_speakers} speakers "
        f"(per class {', '.join(map(str, ts.class_counts))}); {ts.detectability} "
        f"(evaluated at the {'lower bound' if ts.at_lower_bound else 'best system'}'s UA of "
        f"{100 * ts.baseline_ua:.1f})."
    ]
    if t.lower is None:
        out.append("No lower bound (crosslingual) was run in this setting: no system is tested.")
    elif scored.family_size:
        out.append(f"p vs lower: Holm correction over the {scored.family_size} comparison(s) with the lower bound "
                   "in this table.")
    for r in scored.rows:
        if r.note:
            out.append(f"{r.system.label}: {r.note}.")
    if t.seeds_differ:
        out.append("⚠ The systems in this table were not all run with the same seeds.")
    if any(p.table in ("table7", "table8") for p in t.paper):
        out.append(f"{TABLE8_CAPTION_NOTE} {TABLE8_MATCH_NOTE}")
    if t.paper and t.mode == "frozen":
        out.append("The paper fine-tuned its encoder; the runs here train a head on frozen features.")
    for p in t.paper:
        if p.note:
            out.append(f"Paper row \"{p.label}\": {p.note}.")
    return out


def render_table(scored: ScoredTable) -> str:
    """One table: heading, rows (systems, then published rows), notes, seed warnings."""
    t = scored.table
    body = [row_cells(scored, r) for r in scored.rows] + [paper_cells(p) for p in t.paper]
    lines = [table_heading(scored), "", tabulate(body, headers=HEADERS, tablefmt="github", disable_numparse=True), ""]
    lines += [f"- {n}" for n in notes(scored)]
    for s in t.systems:
        flag = t.seed_flag(s)
        if flag:
            lines.append(f"- ⚠ {s.label}: {flag} (seeds {','.join(map(str, s.seeds))}).")
    lines.append("")
    return "\n".join(lines)


def configurations(records: Sequence[Loaded]) -> list[str]:
    """Every method configuration of the page, in full."""
    labels = config_labels((r.method.name, r.method.config) for _, r in records)
    seen: dict[tuple[str, str, str], Any] = {}
    for _, rec in records:
        seen.setdefault(system_key(rec), rec)
    lines = ["## Configurations", "", "Every method configuration above, in full (config hash = first 10 hex digits "
             "of the SHA-256 of its canonical JSON):", ""]
    rows = []
    for (method, version, h), rec in sorted(seen.items()):
        rows.append([labels[(method, h)], f"v{version}", rec.method.distribution, h,
                     "`" + json.dumps(rec.method.config, sort_keys=True, separators=(",", ":")) + "`"])
    lines.append(tabulate(rows, headers=["system", "version", "distribution", "config hash", "config"],
                          tablefmt="github", disable_numparse=True))
    lines.append("")
    return lines


def render_markdown(
    records: Sequence[Loaded],
    records_dir: Path,
    out_dir: Path,
    figures: Sequence[str] = (),
    title_text: str | None = None,
) -> str:
    """The whole leaderboard page for these records (a pure function of them and the paths)."""
    tables = score_tables(build_tables(records))
    rel_records = relative_to(records_dir, out_dir)
    meta: dict[str, Any] = {"kind": "leaderboard", "records": rel_records}
    if figures:
        meta["figures"] = list(figures)
    cmd = (
        f"leaderboard render --records {project_relative(records_dir, out_dir)} "
        f"--out {project_relative(out_dir, out_dir)}" + ("" if figures else " --no-plots")
    )
    synthetic_only = all(s.table.synthetic for s in tables)
    heading = title_text or ("xlbench leaderboard (synthetic corpus)" if synthetic_only else "xlbench leaderboard")
    lines = [
        marker(meta),
        f"# {heading}",
        "",
        banner(cmd, f"the {len(records)} run records in `{rel_records}`"),
        "",
    ]
    if synthetic_only:
        lines += [SYNTHETIC_WARNING, ""]
    elif any(s.table.synthetic for s in tables):
        lines += [SYNTHETIC_WARNING.replace("These runs use", "The tables headed *synthetic corpus* use"), ""]
    lines += [LEGEND, ""]
    current = None
    for s in tables:
        if s.table.section != current:
            current = s.table.section
            lines += [section_heading(current), ""]
            if s.table.synthetic:
                lines += ["Synthetic corpus: no paper numbers apply here.", ""]
        lines.append(render_table(s))
    if figures:
        lines += ["## Figures", "", "Drawn from the same records (PNG here, SVG beside each).", ""]
        for f in figures:
            if Path(f).name.startswith("fig"):
                lines += [f"![{Path(f).stem}]({f})", ""]
        confusion = [f for f in figures if not Path(f).name.startswith("fig")]
        if confusion:
            lines += ["Confusion matrices (target test set, summed over seeds), one per table:", ""]
            lines += [f"- [{Path(f).stem}]({f})" for f in confusion]
            lines.append("")
    lines += configurations(records)
    return "\n".join(lines).rstrip() + "\n"
