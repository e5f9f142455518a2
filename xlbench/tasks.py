"""Transfer tasks (PROTOCOL.md section 4): what a method is handed, and nothing more.

A method sees utterances only through opaque keys (the content hash of the audio file):
never paths, corpus ids or file names, which carry the label in every corpus of this
benchmark. Labelled sets (D_s, K_t) carry labels; ``UnlabeledSet`` (U_t) and
``ValidationSet`` have no label field at all (validation labels are used by the harness to
score predictions, never handed over), and the test splits are never part of a task. The
harness keeps the truth on its side (``TaskTruth``) to score validation, test and pseudo-labels.

Every key sequence a method receives is sorted by key. A key is the SHA-256 of the audio, so
the order carries no label, speaker or file-name information (the manifests are sorted by id,
and ids spell the emotion in most corpora: in that order CaFE's and EMOVO's sets arrive as
single-class blocks).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from xlbench.errors import ConfigError, DataError
from xlbench.languages import LanguageData
from xlbench.manifest import Utterance
from xlbench.protocol import Emotion

SelectionPolicy = Literal["paper", "strict"]
SELECTION_POLICIES: tuple[str, ...] = ("paper", "strict")

#: The parts of a task a method can ask for (Method.needs).
TaskPart = Literal["source_train", "target_labeled", "target_unlabeled", "validation"]
ALL_LABELS = -1  # n_labeled value meaning "every target training utterance, labelled" (upper bound)


@dataclass(frozen=True)
class LabeledSet:
    """Utterance keys with their class ids (indices into the task's ``classes``)."""

    name: str
    language: str
    keys: tuple[str, ...]
    labels: np.ndarray  # int64, same length as keys

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.keys)} keys but {len(self.labels)} labels")
        self.labels.setflags(write=False)

    def __len__(self) -> int:
        return len(self.keys)

    def class_counts(self, n_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=n_classes)

    @staticmethod
    def empty(name: str, language: str) -> LabeledSet:
        return LabeledSet(name, language, (), np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class UnlabeledSet:
    """U_t: keys only. There is deliberately no label field on this type."""

    name: str
    language: str
    keys: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class ValidationSet:
    """A model-selection set: keys only. The method scores predictions on it through
    ``FitContext.score_validation``, which returns the UA and nothing else (PROTOCOL.md §4)."""

    name: str
    language: str
    keys: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class TransferTask:
    """Everything ``Method.fit`` may use for one (target, N_k, seed, emotions, policy)."""

    source: str
    target: str
    classes: tuple[Emotion, ...]
    n_labeled: int  # N_k, or ALL_LABELS for the upper bound
    seed: int
    selection: SelectionPolicy
    source_train: LabeledSet  # D_s
    target_labeled: LabeledSet  # K_t
    target_unlabeled: UnlabeledSet  # U_t
    validation: tuple[ValidationSet, ...]  # per policy: paper = S-val + T-val; strict = S-val + K_t

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def fit_keys(self) -> tuple[str, ...]:
        """Every key the method may ask inputs for during ``fit``: its declared parts, sorted."""
        keys = {*self.source_train.keys, *self.target_labeled.keys, *self.target_unlabeled.keys}
        for s in self.validation:
            keys.update(s.keys)
        return tuple(sorted(keys))


@dataclass(frozen=True)
class EvalSet:
    """A test (or other scored) set on the harness's side: keys, truth and provenance."""

    name: str
    language: str
    keys: tuple[str, ...]
    labels: np.ndarray
    utterances: tuple[Utterance, ...]


@dataclass
class TaskTruth:
    """What the harness keeps away from the method: test sets, U_t's and validation labels."""

    target_test: EvalSet
    source_test: EvalSet
    unlabeled_labels: dict[str, int] = field(default_factory=dict)  # U_t key -> class id
    by_key: dict[str, Utterance] = field(default_factory=dict)
    validation: dict[str, LabeledSet] = field(default_factory=dict)  # set name -> keys with labels


def _by_key(utts: Sequence[Utterance]) -> list[Utterance]:
    """Utterances in key order: the one order a method ever sees (see the module docstring)."""
    return sorted(utts, key=lambda u: u.sha)


def _keep(utts: Sequence[Utterance], classes: tuple[Emotion, ...]) -> list[Utterance]:
    allowed = set(classes)
    return [u for u in utts if u.emotion in allowed]


def _labeled(name: str, language: str, utts: Sequence[Utterance], index: dict[Emotion, int]) -> LabeledSet:
    return LabeledSet(
        name, language, tuple(u.sha for u in utts), np.array([index[u.emotion] for u in utts], dtype=np.int64)
    )


def stratified_sample(
    utts: Sequence[Utterance], n: int, classes: tuple[Emotion, ...], rng: np.random.Generator
) -> list[Utterance]:
    """N_k utterances drawn class-stratified: as equal per class as the pool allows.

    Classes get n // C each; the remainder goes to classes chosen at random; a class with too
    few utterances gives its shortfall to the others evenly. Deterministic for a given rng state.
    """
    if n == 0:
        return []
    if n > len(utts):
        raise ConfigError(f"--n-labeled {n} is larger than the target training set ({len(utts)} utterances)")
    pools = {c: [u for u in utts if u.emotion == c] for c in classes}
    for c in classes:
        if not pools[c]:
            raise DataError(f"the target training split has no {c.value} utterance: K_t cannot cover every class")
    if n < len(classes):
        raise ConfigError(
            f"--n-labeled {n} cannot give every one of the {len(classes)} classes a labelled example; "
            f"use 0 or at least {len(classes)}"
        )
    # Water-filling: every class gets the same level L (or all it has), the few left over go
    # one each to classes drawn at random among those that still have utterances.
    caps = {c: len(pools[c]) for c in classes}
    level = 0
    # bounded by the largest class: when n is the whole pool the sum stops growing at that level
    while level < max(caps.values()) and sum(min(cap, level + 1) for cap in caps.values()) <= n:
        level += 1
    quota = {c: min(caps[c], level) for c in classes}
    left = n - sum(quota.values())
    room = [c for c in classes if caps[c] > level]
    for i in rng.choice(len(room), size=left, replace=False) if left else []:
        quota[room[int(i)]] += 1
    chosen: list[Utterance] = []
    for c in classes:
        order = rng.permutation(len(pools[c]))[: quota[c]]
        chosen.extend(pools[c][i] for i in sorted(order))
    return chosen


def build_task(
    source: LanguageData,
    target: LanguageData,
    *,
    classes: tuple[Emotion, ...],
    n_labeled: int,
    seed: int,
    selection: SelectionPolicy,
    needs: frozenset[str],
    labeled_keys: Sequence[str] | None = None,
) -> tuple[TransferTask, TaskTruth]:
    """Build the task a method sees and the truth the harness keeps.

    ``needs`` is what the method declared; parts it did not ask for are handed over empty.
    ``labeled_keys`` pins K_t to given keys instead of drawing it (the hidden-label audit keeps
    K_t fixed while it permutes the labels of U_t).
    """
    if selection not in SELECTION_POLICIES:
        raise ConfigError(f"--selection must be paper or strict, not {selection!r}")
    index = {c: i for i, c in enumerate(classes)}
    s_train, s_val, s_test = (_keep(source.parts[p], classes) for p in ("train", "val", "test"))
    t_train, t_val, t_test = (_keep(target.parts[p], classes) for p in ("train", "val", "test"))
    for name, part in (("source test", s_test), ("target test", t_test), ("target train", t_train)):
        missing = [c.value for c in classes if c not in {u.emotion for u in part}]
        if missing:
            raise DataError(f"the {name} split has no {', '.join(missing)} utterance; cannot score every class")

    # K_t is drawn with a generator of its own so that it depends on the seed alone.
    rng = np.random.default_rng([seed, 0x4B74])
    if labeled_keys is not None:
        wanted = set(labeled_keys)
        k_t = [u for u in t_train if u.sha in wanted]
        if len(k_t) != len(wanted):
            raise ConfigError(f"{len(wanted) - len(k_t)} pinned K_t key(s) are not in the target training split")
    elif n_labeled == ALL_LABELS:
        k_t = list(t_train)
    elif n_labeled < 0:
        raise ConfigError(f"--n-labeled must be >= 0, not {n_labeled}")
    else:
        k_t = stratified_sample(t_train, n_labeled, classes, rng)
    k_keys = {u.sha for u in k_t}
    u_t = [u for u in t_train if u.sha not in k_keys]
    s_train, s_val, s_test, t_val, t_test, k_t, u_t = map(_by_key, (s_train, s_val, s_test, t_val, t_test, k_t, u_t))

    all_keys = [u.sha for part in (s_train, s_val, s_test, t_train, t_val, t_test) for u in part]
    dup = [k for k, n in Counter(all_keys).items() if n > 1]
    if dup:
        raise DataError(f"{len(dup)} audio file(s) appear in more than one split or language (same content)")

    lbl = lambda name, lang, utts: _labeled(name, lang, utts, index)  # noqa: E731
    source_train = lbl("source_train", source.language, s_train)
    target_labeled = lbl("target_labeled", target.language, k_t)
    target_unlabeled = UnlabeledSet("target_unlabeled", target.language, tuple(u.sha for u in u_t))
    s_val_set = lbl("source_val", source.language, s_val)
    if selection == "paper":
        scored = (s_val_set, lbl("target_val", target.language, t_val))
    else:
        scored = (s_val_set, target_labeled) if len(k_t) else (s_val_set,)
    validation = tuple(ValidationSet(s.name, s.language, s.keys) for s in scored)

    if "source_train" not in needs:
        source_train = LabeledSet.empty("source_train", source.language)
    if "target_labeled" not in needs:
        target_labeled = LabeledSet.empty("target_labeled", target.language)
    if "target_unlabeled" not in needs:
        target_unlabeled = UnlabeledSet("target_unlabeled", target.language, ())
    if "validation" not in needs:
        validation = ()

    task = TransferTask(
        source=source.language,
        target=target.language,
        classes=classes,
        n_labeled=n_labeled,
        seed=seed,
        selection=selection,
        source_train=source_train,
        target_labeled=target_labeled,
        target_unlabeled=target_unlabeled,
        validation=validation,
    )

    def eval_set(name: str, lang: str, utts: list[Utterance]) -> EvalSet:
        s = lbl(name, lang, utts)
        return EvalSet(name, lang, s.keys, s.labels, tuple(utts))

    truth = TaskTruth(
        target_test=eval_set("target_test", target.language, t_test),
        source_test=eval_set("source_test", source.language, s_test),
        unlabeled_labels={u.sha: index[u.emotion] for u in u_t},
        by_key={u.sha: u for part in (s_train, s_val, s_test, t_train, t_val, t_test) for u in part},
        validation={s.name: s for s in scored} if "validation" in needs else {},
    )
    return task, truth
