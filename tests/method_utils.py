"""Helpers for tests that call a method's ``fit`` directly on a hand-made task."""

from __future__ import annotations

import dataclasses
import hashlib

from xlbench.isolation import Scorer, score_sets
from xlbench.manifest import Utterance
from xlbench.protocol import Emotion
from xlbench.tasks import TaskTruth, TransferTask, ValidationSet


def hide_validation_labels(task: TransferTask) -> tuple[TransferTask, Scorer]:
    """A task whose validation sets are given with labels (``LabeledSet``) -> the view a method
    gets (``ValidationSet``, keys only) and the harness's scorer for them."""
    labels = {s.name: (s.keys, s.labels) for s in task.validation}
    view = dataclasses.replace(
        task, validation=tuple(ValidationSet(s.name, s.language, s.keys) for s in task.validation)
    )
    return view, score_sets(labels, task.n_classes)


def fake_utterance(lang: str, split: str, emotion: Emotion, i: int) -> Utterance:
    """A manifest row for a file that does not exist; its key is a hash of its id."""
    uid = f"{lang}/{split}/{emotion.value}-{i}"
    return Utterance(
        id=uid, path=f"/nowhere/{uid}.wav", corpus=f"c_{lang}", language=lang, speaker=f"{split}{i % 2}",
        gender="female", raw_label=emotion.value, emotion=emotion, duration=1.0, sample_rate=16000, channels=1,
        subtype="PCM_16", sha=hashlib.sha256(uid.encode()).hexdigest()[:32],
    )


def key_sequences(task: TransferTask, truth: TaskTruth) -> dict[str, tuple[str, ...] | list[str]]:
    """Every key sequence a method (or, for the test sets, the harness) holds, by part name."""
    return {
        "source_train": task.source_train.keys,
        "target_labeled": task.target_labeled.keys,
        "target_unlabeled": task.target_unlabeled.keys,
        **{f"validation {s.name}": s.keys for s in task.validation},
        "target_test": truth.target_test.keys,
        "source_test": truth.source_test.keys,
    }
