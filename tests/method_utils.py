"""Helpers for tests that call a method's ``fit`` directly on a hand-made task."""

from __future__ import annotations

import dataclasses

from xlbench.isolation import Scorer, score_sets
from xlbench.tasks import TransferTask, ValidationSet


def hide_validation_labels(task: TransferTask) -> tuple[TransferTask, Scorer]:
    """A task whose validation sets are given with labels (``LabeledSet``) -> the view a method
    gets (``ValidationSet``, keys only) and the harness's scorer for them."""
    labels = {s.name: (s.keys, s.labels) for s in task.validation}
    view = dataclasses.replace(
        task, validation=tuple(ValidationSet(s.name, s.language, s.keys) for s in task.validation)
    )
    return view, score_sets(labels, task.n_classes)
