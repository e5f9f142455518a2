"""Reproduction pages: our numbers for the paper's tables beside the published ones.

A renderer of the report. Records are matched to the cells of :mod:`xlbench.report.paper_tables`
by method, exact configuration, target, N_k, emotion set and the page's :class:`Scope` (encoder,
mode, selection, corpus kind, seeds), so the page is a pure function of the records and its
marker, and ``xlbench leaderboard check`` can render it again. Paper numbers appear only for real
corpora and a paper encoder. Running the grids is :mod:`xlbench.reproduce`'s job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from xlbench.errors import DataError
from xlbench.method_options import ALL
from xlbench.paper import ENCODER_TITLES, TABLE8_CAPTION_NOTE, TABLE8_MATCH_NOTE, PaperResult, paper_results
from xlbench.protocol import SOURCE_LANGUAGE
from xlbench.recipes import RECIPES
from xlbench.records import RunRecord
from xlbench.report.formatting import paper_number
from xlbench.report.generated import SYNTHETIC_WARNING, banner, marker, project_relative, relative_to
from xlbench.report.identity import Setting, setting_key
from xlbench.report.paper_tables import FIG3_NK, ORDER, TABLES, Cell, expected_configs
from xlbench.report.validate import Loaded
from xlbench.stats import mean_std_over_seeds


@dataclass(frozen=True)
class Scope:
    """What a reproduction's runs share; records outside it are ignored."""

    encoder: str  # encoder label as in the records
    mode: str
    selection: str
    synthetic: bool
    seeds: tuple[int, ...]
    source: str = SOURCE_LANGUAGE  # "english (ravdess only)" for a named subset of the source corpora
    encoder_version: str = ""  # the weights' revision, where the encoder has weights
    recipe: str = ""  # xlbench.recipes name when the reproduction ran one (e.g. "paper")


def cell_records(records: Sequence[Loaded], cell: Cell, config: Mapping[str, Any], target: str,
                 scope: Scope) -> list[RunRecord]:
    """The records of one cell on one target within the scope, by seed: same method and exact config,
    and the setting (:func:`xlbench.report.identity.setting_key`) the cell and the scope describe."""
    # The upper bound runs with every label whatever N_k the cell names.
    want_nk = "all" if cell.n_labeled == ALL or cell.method == "multilingual" else cell.n_labeled
    want = Setting(synthetic=scope.synthetic, source=scope.source, encoder=scope.encoder, mode=scope.mode,
                   selection=scope.selection, emotions=int(cell.emotions), target=target, n_labeled=want_nk,
                   encoder_version=scope.encoder_version)
    # validate refuses boards on which settings read alike but differ in split files or encoder
    # identity, so matching on what a heading shows is exact
    out = [r for _, r in records
           if r.method.name == cell.method and r.method.config == dict(config) and setting_key(r).shown() == want
           and r.task.seed in scope.seeds]
    return sorted(out, key=lambda r: r.task.seed)


def cell_text(recs: Sequence[RunRecord], side: str = "target") -> str:
    """UA % mean ± std over the cell's seeds, or "not run"."""
    if not recs:
        return "not run"
    return mean_std_over_seeds(r.metrics[side].ua for r in recs).format()


def paper_for(table: str, target: str, scope: Scope, **kw: Any) -> list[PaperResult]:
    """The published numbers of a table for a target: real corpora and a paper encoder only."""
    if scope.synthetic or scope.encoder not in ENCODER_TITLES:
        return []
    return [p for p in paper_results(table=table, target=target, **kw) if p.encoder in (scope.encoder, None)]


# -- rendering ----------------------------------------------------------------------------------


def render_table_body(name: str, records: Sequence[Loaded], configs: Mapping[Cell, Mapping[str, Any]],
                      missing: Mapping[str, str], scope: Scope, targets: Sequence[str]) -> str:
    """The markdown body of one reproduction table (our numbers, and the paper's where they apply)."""
    heading, cells = TABLES[name]
    show_paper = not scope.synthetic and scope.encoder in ENCODER_TITLES
    kind = "SYNTHETIC corpus: no paper numbers apply" if scope.synthetic else "real corpora"
    lines = [f"## {heading}", "",
             f"Ours: {scope.encoder} ({scope.mode}{f', recipe {scope.recipe}' if scope.recipe else ''}), "
             f"selection {scope.selection}, seeds "
             f"{','.join(map(str, scope.seeds))}, UA % mean ± std over seeds; {kind}."
             + ("" if scope.synthetic or show_paper else f" The paper has no {scope.encoder} numbers."), ""]

    def recs(cell: Cell, target: str) -> list:
        if cell.method in missing:
            return []
        return cell_records(records, cell, configs[cell], target, scope)

    def cell_or_missing(cell: Cell, target: str, side: str = "target") -> str:
        if cell.method in missing:
            return "not available"
        return cell_text(recs(cell, target), side)

    rows: list[list[str]] = []
    if name in ("table4", "table5"):
        cell = cells[0]
        pt = "table4" if name == "table4" else "table5"
        headers = ["target", "ours: target UA", *(["paper: target UA"] if show_paper else []),
                   "ours: source UA", *(["paper: source UA"] if show_paper else []), "seeds"]
        if name == "table5":
            lower = cells[1]
            english = [r for t in targets for r in recs(lower, t)]
            p_eng = paper_for("table4", targets[0], scope) if targets else []
            rows.append(["English alone (crosslingual, all targets' runs)", "—", *(["—"] if show_paper else []),
                         cell_text(english, "source"), *([paper_number(p_eng[0].source_ua if p_eng else None)]
                                                          if show_paper else []), str(len(english))])
        for t in targets:
            rs = recs(cell, t)
            p = paper_for(pt, t, scope)
            pr = p[0] if p else None
            paper_t = [paper_number(pr.target_ua if pr else None)] if show_paper else []
            paper_s = [paper_number(pr.source_ua if pr else None)] if show_paper else []
            rows.append([t.title(), cell_or_missing(cell, t), *paper_t, cell_or_missing(cell, t, "source"), *paper_s,
                         str(len(rs))])
    elif name == "table6":
        headers = ["method", *[t.title() for t in targets]]
        for cell in cells:
            rows.append([f"ours: {cell.column}", *[cell_or_missing(cell, t) for t in targets]])
        if show_paper:
            labels: dict[str, dict[str, float | None]] = {}
            for t in targets:
                for p in paper_for("table6", t, scope):
                    labels.setdefault(f"{p.row_label}: {p.label}", {})[t] = p.target_ua
            for label, vals in labels.items():
                rows.append([label, *[paper_number(vals.get(t)) for t in targets]])
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
                        ps = [p for p in paper_for(name, t, scope) if p.matches_options(cfg)]
                        published = (ps[0].source_ua if side == "source" else ps[0].target_ua) if ps else None
                        row.append(paper_number(published))
                rows.append(row)
    else:  # fig3
        headers = ["target", "mode", *[f"N_k = {nk}" for nk in FIG3_NK]]
        for t in targets:
            for mode in ("hard", "soft"):
                row = [t.title(), mode]
                for nk in FIG3_NK:
                    cell = next(c for c in cells if c.column == f"{mode}|{nk}")
                    rs = recs(cell, t)
                    row.append(f"{cell_text(rs)} (source {cell_text(rs, 'source')})" if rs else
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


def source_corpora_flag(source: str) -> str:
    """`` --source-corpora ravdess,tess`` for a named subset of the English corpora, else ''."""
    if "(" not in source:
        return ""
    named = source.split("(", 1)[1].rstrip(")").removesuffix(" only")
    return " --source-corpora " + ",".join(c.strip() for c in named.split("+"))


def reproduction_page(names: Sequence[str], records: Sequence[Loaded], sets: Mapping[str, Any], scope: Scope,
                      targets: Sequence[str], records_dir: Path, out_path: Path) -> str:
    """A whole generated reproduction page, marker and banner included."""
    meta = {
        "kind": "reproduce",
        "tables": list(names),
        "records": relative_to(records_dir, out_path.parent),
        "encoder": scope.encoder,
        "mode": scope.mode,
        "selection": scope.selection,
        "synthetic": scope.synthetic,
        "seeds": list(scope.seeds),
        "targets": list(targets),
        "sets": dict(sets),
        # only where they differ from the protocol's English and a parameter-free encoder
        **({"source": scope.source} if scope.source != SOURCE_LANGUAGE else {}),
        **({"encoder_version": scope.encoder_version} if scope.encoder_version else {}),
        **({"recipe": scope.recipe} if scope.recipe else {}),
    }
    cells = [c for n in names for c in TABLES[n][1]]
    configs, missing = expected_configs(cells, sets)
    implied = RECIPES[scope.recipe].fixed if scope.recipe in RECIPES else {}  # said by --recipe
    sets_text = "".join(f" --set {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sets.items()
                        if implied.get(k, object()) != v)
    cmd = (f"reproduce {'all' if list(names) == list(ORDER) else names[0]} --encoder {scope.encoder} "
           f"--seeds {','.join(map(str, scope.seeds))} --results {project_relative(records_dir, out_path.parent)}"
           f"{' --data synthetic' if scope.synthetic else ''}"
           f"{f' --recipe {scope.recipe}' if scope.recipe else (' --finetune' if scope.mode == 'finetune' else '')}"
           f"{' --selection strict' if scope.selection == 'strict' else ''}{sets_text}"
           f"{source_corpora_flag(scope.source)}")
    title = "Reproduction of Agarla et al. (2024)" + (" — SYNTHETIC corpus" if scope.synthetic else "")
    lines = [marker(meta), f"# {title}", "", banner(cmd, f"the run records in `{meta['records']}`"), ""]
    if scope.synthetic:
        lines += [SYNTHETIC_WARNING, ""]
    for n in names:
        tcells = TABLES[n][1]
        lines.append(render_table_body(n, records, {c: configs[c] for c in tcells if c in configs},
                                       {m: w for m, w in missing.items() if any(c.method == m for c in tcells)},
                                       scope, targets))
    return "\n".join(lines).rstrip() + "\n"


def page_from_marker(path: Path, meta: Mapping[str, Any], records: Sequence[Loaded], records_dir: Path) -> str:
    """The page at ``path`` rendered again from its marker's ``meta`` and the (sound) records."""
    scope = Scope(meta["encoder"], meta["mode"], meta["selection"], bool(meta["synthetic"]), tuple(meta["seeds"]),
                  meta.get("source", SOURCE_LANGUAGE), meta.get("encoder_version", ""), meta.get("recipe", ""))
    return reproduction_page(meta["tables"], records, meta.get("sets", {}), scope, meta["targets"], records_dir, path)


def scope_from_records(records: Sequence[Loaded], run_ids: set[str], seeds: Sequence[int], mode: str,
                       selection: str) -> Scope:
    """The encoder and corpus kind the runs actually used (``--encoder auto`` resolves at run time)."""
    used = [r for _, r in records if r.run_id in run_ids]
    if not used:
        raise DataError("none of the reproduction's runs produced a record")
    settings = {setting_key(r) for r in used}
    encoders = {(s.encoder, s.encoder_version) for s in settings}
    kinds = {s.synthetic for s in settings}
    sources = {s.source for s in settings}
    if len(encoders) > 1 or len(kinds) > 1 or len(sources) > 1:
        raise DataError(f"the runs used several encoders, sources or corpus kinds ({sorted(encoders)}, "
                        f"{sorted(sources)}); pass --encoder/--data")
    encoder, version = encoders.pop()
    return Scope(encoder, mode, selection, kinds.pop(), tuple(seeds), sources.pop(), version)
