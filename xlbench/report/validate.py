"""Reading run records for a report, and refusing the defective ones: the first step of the report.

:func:`validate_records` is the one place that decides whether a record may reach a table
(``xlbench leaderboard validate`` prints its defects; ``render`` and ``check`` refuse a folder
that has any, through :func:`sound_records`). A new check is one more function called from it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlbench.errors import DataError
from xlbench.protocol import EMOTIONS_4, EMOTIONS_5
from xlbench.records import SCHEMA_VERSION, CorruptRecord, RunRecord, iter_records, recompute_run_id
from xlbench.report.identity import MIN_SEEDS, Setting, config_hash, setting_key, system_key
from xlbench.stats import classification_metrics

#: A record and the file it was read from.
Loaded = tuple[Path, RunRecord]


def load_records(root: Path) -> tuple[list[Loaded], list[CorruptRecord]]:
    """Every record under ``root`` (``<method>/<run_id>.json``), and the unreadable ones apart.

    No check beyond the schema: for a report use :func:`sound_records`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no records folder {root}")
    good: list[Loaded] = []
    bad: list[CorruptRecord] = []
    for path, rec in iter_records(root):
        if isinstance(rec, CorruptRecord):
            bad.append(rec)
        else:
            good.append((path, rec))
    return good, bad


@dataclass(frozen=True)
class Defect:
    """One reason a record (or a folder of them) cannot be published."""

    path: str
    message: str

    def line(self) -> str:
        return f"{self.path}: {self.message}"


def looks_like_test(name: str) -> bool:
    """A set name that refers to a test set (model selection on it is forbidden)."""
    return "test" in name.lower()


def raw_checks(raw: dict[str, Any]) -> list[str]:
    """Checks on the raw JSON, so that the reason is named even when the schema also fails."""
    out = []
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        out.append(f"wrong schema: schema_version {version!r}, this xlbench reads {SCHEMA_VERSION}")
    sel = raw.get("selection") if isinstance(raw.get("selection"), dict) else {}
    task = raw.get("task") if isinstance(raw.get("task"), dict) else {}
    policy = sel.get("policy")
    if policy not in (None, "paper", "strict"):
        out.append(f"test-set selection: selection policy {policy!r} (only paper and strict are allowed)")
    if task.get("selection") not in (None, "paper", "strict"):
        out.append(f"test-set selection: task selection {task.get('selection')!r} (only paper and strict)")
    sets = sel.get("sets") or []
    test_sets = [s for s in sets if isinstance(s, str) and looks_like_test(s)]
    if test_sets:
        out.append(f"test-set selection: model selected on {', '.join(test_sets)}")
    sizes = raw.get("sizes") if isinstance(raw.get("sizes"), dict) else {}
    val_test = [k for k in sizes if k.startswith("val_") and looks_like_test(k)]
    if val_test:
        out.append(f"test-set selection: a validation set is named like a test set ({', '.join(val_test)})")
    return out


def split_checks(rec: RunRecord) -> list[str]:
    """The record's split hashes against the split files shipped with this xlbench: every corpus of
    each side has one, and each is the shipped file's."""
    from xlbench.splits import load_split

    out = []
    for side, data in (("source", rec.source_data), ("target", rec.target_data)):
        # a corpus without a hash was split by files nobody can name: as bad as a foreign hash
        for corpus in sorted(set(data.corpora) - set(data.split_hashes)):
            out.append(f"split hash: {side} corpus {corpus} has no split hash in the record")
        for corpus, sha in sorted(data.split_hashes.items()):
            try:
                shipped = load_split(corpus, rec.splits_version).sha256
            except DataError as exc:
                out.append(f"split hash: {side} corpus {corpus}: {exc}")
                continue
            if sha != shipped:
                out.append(
                    f"split hash: {side} corpus {corpus} was split by {sha[:12]}…, the shipped split file "
                    f"v{rec.splits_version} is {shipped[:12]}…"
                )
    return out


#: validation sets each selection policy allows a method to score (PROTOCOL.md §4)
POLICY_SETS = {"paper": {"source_val", "target_val"}, "strict": {"source_val", "target_labeled"}}


def trust_checks(rec: RunRecord) -> list[str]:
    """The method passed the hidden-label audit, ran in its worker, scored only the validation
    sets its policy allows, on one of the protocol's emotion sets."""
    out = []
    if rec.audit.verdict != "pass":
        detail = f" ({rec.audit.detail})" if rec.audit.detail else ""
        out.append(f"no passing audit: the hidden-label audit of {rec.method.name} says {rec.audit.verdict}{detail}")
    if rec.isolation != "worker":
        out.append(f"not isolated: the method ran {rec.isolation} (tests and debugging only)")
    allowed = POLICY_SETS[rec.selection.policy]
    scored = set(rec.selection.sets) | set(rec.selection.scoring_calls)
    if scored - allowed:
        out.append(f"selection: scored {', '.join(sorted(scored - allowed))}, which the {rec.selection.policy} "
                   f"policy does not allow")
    if set(rec.selection.sets) != {k for k, n in rec.selection.scoring_calls.items() if n > 0}:
        out.append("selection: the sets used for selection disagree with the scoring calls observed")
    if rec.task.emotions not in ([e.value for e in EMOTIONS_5], [e.value for e in EMOTIONS_4]):
        out.append(f"emotions: {rec.task.emotions} is not one of the protocol's emotion sets")
    return out


#: float metrics must equal their recomputation up to float rounding (they are stored exactly)
METRIC_TOLERANCE = 1e-9


def _same(stored: float | None, recomputed: float) -> bool:
    if stored is None or math.isnan(stored):
        return math.isnan(recomputed)  # a class absent from the test set has no recall
    return math.isclose(stored, recomputed, rel_tol=0.0, abs_tol=METRIC_TOLERANCE)


def metric_checks(rec: RunRecord) -> list[str]:
    """Every metric of the record recomputed from its per-utterance predictions (xlbench.stats,
    as the runner scores them), and each prediction the argmax of its stored probabilities."""
    out = []
    names = rec.task.emotions
    n_classes = len(names)
    for side in ("target", "source"):
        m, preds = rec.metrics.get(side), rec.predictions.get(side)
        if m is None or preds is None:
            out.append(f"metrics: no {side} metrics or predictions")
            continue
        bad = [p.id for p in preds if not (0 <= p.true < n_classes and 0 <= p.pred < n_classes)
               or len(p.probs) != n_classes]
        if bad:
            out.append(f"metrics: {side} prediction {bad[0]} has a class or probabilities outside the "
                       f"{n_classes} emotions ({len(bad)} such)")
            continue
        # stored probabilities are rounded (monotone), so the predicted class is still a maximum
        off = [p.id for p in preds if p.probs[p.pred] < max(p.probs)]
        if off:
            out.append(f"metrics: {side} prediction {off[0]} is not the argmax of its probabilities ({len(off)} such)")
        got = classification_metrics([p.true for p in preds], [p.pred for p in preds], n_classes)
        recall = dict(zip(names, (float(r) for r in got.per_class_recall), strict=True))
        differ = []
        if m.n != len(preds):
            differ.append(f"n {m.n} (there are {len(preds)} predictions)")
        for field in ("ua", "wa", "macro_f1"):
            if not _same(getattr(m, field), getattr(got, field)):
                differ.append(f"{field} {getattr(m, field)!r} (recomputed {getattr(got, field)!r})")
        if set(m.per_class_recall) != set(names) or not all(
            _same(m.per_class_recall[c], recall[c]) for c in names
        ):
            differ.append(f"per_class_recall {m.per_class_recall} (recomputed {recall})")
        if m.confusion != got.confusion.tolist():
            differ.append(f"confusion {m.confusion} (recomputed {got.confusion.tolist()})")
        if differ:
            out.append(f"metrics: the {side} numbers disagree with the stored predictions: {'; '.join(differ)}")
    return out


def record_checks(path: Path, rec: RunRecord) -> list[str]:
    """Checks on one parsed record: its run id, its file name, its split hashes, and trust."""
    problems = []
    actual = recompute_run_id(rec)
    if actual != rec.run_id:
        problems.append(f"tampered run id: the record says {rec.run_id}, its content hashes to {actual}")
    elif path.stem != rec.run_id or path.parent.name != rec.method.name:
        problems.append(f"misfiled: expected {rec.method.name}/{rec.run_id}.json")
    return problems + split_checks(rec) + trust_checks(rec) + metric_checks(rec)


def describe(rec: RunRecord) -> str:
    """A system in a setting, in words, for a defect line."""
    s = setting_key(rec)
    source = "" if s.source == rec.task.source else f"source {s.source} · "
    return (
        f"{rec.method.name} v{rec.method.version} config {config_hash(rec.method.config)} · {source}{s.target} · "
        f"N_k {s.n_labeled} · {s.emotions} emotions · {s.encoder_text} ({s.mode}) · selection {s.selection}"
    )


def seed_checks(good: list[Loaded], min_seeds: int) -> list[Defect]:
    """Too few or duplicate seeds: properties of a (setting, system), reported once each."""
    groups: dict[tuple[Setting, tuple[str, str, str]], list[Loaded]] = defaultdict(list)
    for path, rec in good:
        groups[(setting_key(rec), system_key(rec))].append((path, rec))
    defects = []
    for _key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        seeds = sorted({rec.task.seed for _, rec in members})
        dupes = len(members) - len(seeds)
        where = describe(members[0][1])
        folder = str(members[0][0].parent)
        if len(seeds) < min_seeds:
            listed = ",".join(map(str, seeds))
            defects.append(Defect(folder, f"fewer than {min_seeds} seeds: {where} has seed(s) {listed}"))
        if dupes:
            defects.append(Defect(folder, f"duplicate seeds: {where} has {dupes} extra record(s)"))
    return defects


def setting_checks(good: list[Loaded]) -> list[Defect]:
    """Settings that would read alike on the board (same heading) but differ in their split files
    or the encoder's identity: each would silently stand for the other, so all are refused."""
    by_shown: dict[Setting, dict[Setting, list[Loaded]]] = defaultdict(lambda: defaultdict(list))
    for path, rec in good:
        key = setting_key(rec)
        by_shown[key.shown()][key].append((path, rec))
    defects = []
    for variants in by_shown.values():
        if len(variants) < 2:
            continue
        what = []
        if len({k.splits for k in variants}) > 1:
            what.append("split files " + " vs ".join(sorted(k.splits for k in variants)))
        if len({k.encoder_id for k in variants}) > 1:
            what.append("encoder identity " + " vs ".join(sorted(k.encoder_id for k in variants)))
        for members in variants.values():
            for path, rec in members:
                defects.append(Defect(str(path), f"ambiguous setting: {describe(rec)} exists with different "
                                                 f"{'; '.join(what)}; they cannot share a board"))
    return defects


def validate_records(root: Path, min_seeds: int = MIN_SEEDS) -> tuple[list[Loaded], list[Defect]]:
    """Every record under ``root`` checked; returns the sound records and one defect per problem.

    Defects: unreadable or wrong schema, a run id that does not match the record's content
    (tampered), a file name that is not its run id, metrics that disagree with the stored
    per-utterance predictions, a corpus without a split hash or with one unlike its shipped split file,
    model selection on a test set or on a set the policy does not allow, a method without a
    passing hidden-label audit or run outside its worker, settings that read alike but differ,
    and settings with fewer than ``min_seeds`` seeds.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no records folder {root}")
    paths = sorted(root.glob("*/*.json"))
    if not paths:
        raise DataError(f"no run records under {root} (expected <method>/<run_id>.json)")
    good: list[Loaded] = []
    defects: list[Defect] = []
    for path in paths:
        rel = str(path)
        try:
            raw = json.loads(path.read_bytes())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            defects.append(Defect(rel, f"wrong schema: not readable JSON ({str(exc).splitlines()[0]})"))
            continue
        if not isinstance(raw, dict):
            defects.append(Defect(rel, "wrong schema: not a JSON object"))
            continue
        problems = raw_checks(raw)
        try:
            rec = RunRecord.model_validate(raw)
        except Exception as exc:  # pydantic's ValidationError, or anything a validator raises
            first = str(exc).splitlines()
            detail = " ".join(first[:2]) if first else type(exc).__name__
            if not any(p.startswith("wrong schema") for p in problems):
                problems.append(f"wrong schema: {detail}")
            defects.extend(Defect(rel, p) for p in problems)
            continue
        problems += record_checks(path, rec)
        if problems:
            defects.extend(Defect(rel, p) for p in problems)
        else:
            good.append((path, rec))
    ambiguous = setting_checks(good)
    refused = {d.path for d in ambiguous}
    good = [(p, r) for p, r in good if str(p) not in refused]
    return good, defects + ambiguous + seed_checks(good, min_seeds)


def sound_records(records_dir: Path) -> list[Loaded]:
    """The records a report may be built from: every validation defect except too few seeds
    (which the tables flag) refuses the whole folder, so nothing dubious is published silently."""
    good, defects = validate_records(records_dir, min_seeds=1)
    if defects:
        first = defects[0].line()
        raise DataError(
            f"{len(defects)} defect(s) in the records under {records_dir} (first: {first}); "
            f"see `xlbench leaderboard validate --records {records_dir}`"
        )
    return good
