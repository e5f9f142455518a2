"""Fake but valid run records, made in code: chosen per-utterance predictions, a real run id
(``compute_run_id`` over the identity), the shipped split files' real hashes, metrics computed by
xlbench.stats. Used by the report tests instead of training."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xlbench.encoders.base import EncoderInfo
from xlbench.home import atomic_write_text
from xlbench.records import (
    AuditStamp,
    DataIdentity,
    Environment,
    MethodIdentity,
    Metrics,
    Prediction,
    RunRecord,
    Selection,
    TaskIdentity,
    compute_run_id,
    identity_payload,
    record_path,
)
from xlbench.splits import load_split
from xlbench.stats import classification_metrics

EMOTIONS_5 = ["anger", "fear", "happiness", "neutral", "sadness"]
EMOTIONS_4 = ["anger", "happiness", "neutral", "sadness"]
SYNTH = {"english": "synth_en", "french": "synth_fr", "german": "synth_de", "italian": "synth_it",
         "persian": "synth_fa"}
REAL = {"english": ["ravdess", "savee", "tess"], "french": ["cafe"], "german": ["emodb"], "italian": ["emovo"],
        "persian": ["shemo"]}
BASE_CONFIG = {"epochs": 100, "batch_size": 100, "lr": 0.001}

#: A fixed test set: 4 speakers x 2 utterances per class (40 utterances with 5 classes).
N_SPEAKERS = 4
PER_CLASS_PER_SPEAKER = 2


def fake_test_set(target: str, n_classes: int, synthetic: bool = True, n_speakers: int = N_SPEAKERS,
                  per_class: int = PER_CLASS_PER_SPEAKER) -> tuple[list[str], list[str], np.ndarray]:
    """Ids, speakers and true labels of the fake target (or source) test set: ``n_speakers`` speakers
    with ``per_class`` utterances of every class each, ordered by speaker, class, utterance."""
    corpus = SYNTH[target] if synthetic else REAL[target][0]
    ids, speakers, labels = [], [], []
    for s in range(n_speakers):
        for c in range(n_classes):
            for k in range(per_class):
                ids.append(f"{corpus}/spk{s}/c{c}-{k}")
                speakers.append(f"{corpus}:spk{s}")
                labels.append(c)
    return ids, speakers, np.array(labels, dtype=np.int64)


def predictions_with_accuracy(y_true: np.ndarray, n_correct_per_class: Sequence[int], n_classes: int,
                              offset: int = 0) -> np.ndarray:
    """Predictions that get exactly ``n_correct_per_class[c]`` of class c right (the first ones,
    rotated by ``offset`` so that two systems can err on different utterances); wrong ones go to c+1."""
    pred = (y_true + 1) % n_classes
    for c in range(n_classes):
        idx = np.flatnonzero(y_true == c)
        idx = np.roll(idx, offset)
        pred[idx[: n_correct_per_class[c]]] = c
    return pred


def _data(lang: str, synthetic: bool, corpora: list[str] | None = None) -> DataIdentity:
    corpora = corpora or ([SYNTH[lang]] if synthetic else REAL[lang])
    return DataIdentity(
        language=lang, corpora=corpora, synthetic=synthetic, manifest_sha="f" * 20,
        split_hashes={c: load_split(c).sha256 for c in corpora},
    )


def _metrics(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> Metrics:
    m = classification_metrics(y_true, y_pred, len(names))
    return Metrics(
        n=len(y_true), ua=float(m.ua), wa=float(m.wa), macro_f1=float(m.macro_f1),
        per_class_recall={c: float(r) for c, r in zip(names, m.per_class_recall, strict=True)},
        confusion=m.confusion.tolist(),
    )


def make_record(
    method: str = "crosslingual",
    target: str = "italian",
    seed: int = 0,
    *,
    n_labeled: int | str = 0,
    emotions: int = 5,
    config: dict[str, Any] | None = None,
    target_pred: np.ndarray | None = None,
    source_pred: np.ndarray | None = None,
    synthetic: bool = True,
    encoder: str = "logmel-stats",
    version: str = "1",
    selection: str = "paper",
    history: list[dict[str, float]] | None = None,
    audit: str = "pass",
    source_corpora: list[str] | None = None,
    n_speakers: int = N_SPEAKERS,
    per_class: int = PER_CLASS_PER_SPEAKER,
) -> RunRecord:
    names = EMOTIONS_5 if emotions == 5 else EMOTIONS_4
    n = len(names)
    cfg = dict(BASE_CONFIG if config is None else config)
    ident = dict(
        protocol_version="1",
        splits_version="1",
        method=MethodIdentity(name=method, version=version, distribution="xlbench", distribution_version="0.1.0",
                              config=cfg),
        encoder=EncoderInfo(name=encoder, dim=8, frame_dim=8, frame_rate=100.0, params=0, pretrained=False),
        task=TaskIdentity(source="english", target=target, n_labeled=n_labeled, seed=seed, emotions=names,
                          selection=selection, mode="frozen"),
        source_data=_data("english", synthetic, source_corpora),
        target_data=_data(target, synthetic),
    )
    run_id = compute_run_id(identity_payload(**ident))
    sets = ["source_val", "target_val"] if selection == "paper" else ["source_val"]
    t_ids, t_spk, t_true = fake_test_set(target, n, synthetic, n_speakers, per_class)
    s_ids, s_spk, s_true = fake_test_set("english", n, synthetic)
    t_pred = t_true.copy() if target_pred is None else np.asarray(target_pred)
    s_pred = s_true.copy() if source_pred is None else np.asarray(source_pred)
    eye = np.eye(n)

    def preds(ids, spk, true, pred):
        return [Prediction(id=i, speaker=s, true=int(t), pred=int(p), probs=eye[p].tolist())
                for i, s, t, p in zip(ids, spk, true, pred, strict=True)]

    return RunRecord(
        run_id=run_id,
        created="2026-01-01T00:00:00+00:00",
        **ident,
        sizes={"source_train": 300, "target_labeled": 0 if n_labeled == "all" else int(n_labeled),
               "target_test": len(t_ids), "source_test": len(s_ids), "val_source_val": 20, "val_target_val": 20},
        labeled_ids=[],
        selection=Selection(policy=selection, sets=sets, scoring_calls={k: 2 for k in sets}, selected_epoch=1,
                            score=0.5),
        metrics={"target": _metrics(t_true, t_pred, names), "source": _metrics(s_true, s_pred, names)},
        predictions={"target": preds(t_ids, t_spk, t_true, t_pred), "source": preds(s_ids, s_spk, s_true, s_pred)},
        history=history or [{"epoch": 1.0, "loss": 1.5, "source_val_ua": 0.4, "target_val_ua": 0.3},
                            {"epoch": 2.0, "loss": 1.2, "source_val_ua": 0.6, "target_val_ua": 0.4}],
        timings={"fit_s": 1.0},
        environment=Environment(xlbench_version="0.1.0", python="3.11", platform="test", packages={},
                                git_sha=None, device="cpu"),
        audit=AuditStamp(verdict=audit, fingerprint="0" * 20, xlbench_version="0.1.0"),
    )


def write(records: Sequence[RunRecord], root: Path) -> list[Path]:
    """Compact JSON, where the runner would put them (``<root>/<method>/<run_id>.json``)."""
    out = []
    for rec in records:
        path = record_path(rec.run_id, rec.method.name, root)
        atomic_write_text(path, rec.model_dump_json() + "\n")
        out.append(path)
    return out


def table_scenario(target: str = "italian", synthetic: bool = True, n_labeled: int = 0,
                   encoder: str = "logmel-stats") -> list[RunRecord]:
    """Lower bound, upper bound and three methods on one target, 3 seeds each, with chosen accuracy
    per class so that every statistic of the table is known in advance."""
    n = 5
    _, _, y = fake_test_set(target, n, synthetic)
    plan = {
        # method: (config, n_labeled, correct per class out of 8, per seed offsets)
        "crosslingual": ({**BASE_CONFIG}, 0, [4, 3, 4, 5, 4]),
        "multilingual": ({**BASE_CONFIG}, "all", [7, 7, 8, 7, 7]),
        "pseudolabel": ({**BASE_CONFIG, "mode": "hard"}, n_labeled, [6, 6, 5, 6, 7]),
        "pseudolabel-soft": ({**BASE_CONFIG, "mode": "soft"}, n_labeled, [5, 5, 6, 5, 5]),
        "dann": ({**BASE_CONFIG, "lambda_max": 1.0}, n_labeled, [6, 5, 5, 6, 6]),
    }
    out = []
    for key, (cfg, nk, correct) in plan.items():
        method = "pseudolabel" if key.startswith("pseudolabel") else key
        for seed in (0, 1, 2):
            # seeds differ a little: one class loses or gains one correct answer
            c = list(correct)
            c[seed % n] = max(0, min(8, c[seed % n] + (seed - 1)))
            pred = predictions_with_accuracy(y, c, n, offset=seed)
            out.append(make_record(method, target, seed, n_labeled=nk, config=cfg, target_pred=pred,
                                   synthetic=synthetic, encoder=encoder))
    return out
