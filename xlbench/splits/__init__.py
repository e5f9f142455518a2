"""Fixed, versioned, hashed speaker splits (PROTOCOL.md section 3).

Every speaker of every corpus is assigned to train, val or test in a JSON file shipped with
the package (``xlbench/splits/v1/<corpus>.json``, made once by ``tools/make_splits.py``), so
every user gets the same split and a run records the file's hash. A corpus with fewer than
three speakers (TESS) names an utterance-level rule for one speaker: that speaker's
utterances are divided between validation and test by text (word), never into train.

``apply_split`` refuses data whose speakers the split file does not know, and
``check_disjoint`` refuses any speaker found in two splits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from xlbench.errors import DataError
from xlbench.manifest import Utterance

SPLITS_VERSION = "1"
Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


class TextHalfRule(BaseModel):
    """Divide one speaker's utterances between val and test by their text id.

    The distinct texts are ordered by a salted hash; the first half goes to validation, the
    rest to test. Every utterance of one text lands in one split (a word is never both
    heard in validation and tested), and the rule needs no list of words in the package.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["text-hash-half"] = "text-hash-half"
    salt: str
    splits: tuple[Split, Split] = ("val", "test")


class SplitFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus: str
    version: str
    protocol_version: str
    description: str
    speakers: dict[str, Split | Literal["rule"]]
    rules: dict[str, TextHalfRule] = {}


@dataclass(frozen=True)
class LoadedSplit:
    spec: SplitFile
    sha256: str  # hash of the file's bytes, recorded in every run

    def split_of(self, utt: Utterance, text_rank: dict[str, int] | None = None) -> Split:
        where = self.spec.speakers.get(utt.speaker)
        if where is None:
            raise DataError(
                f"{utt.corpus}: speaker {utt.speaker!r} ({utt.id}) is not in split file "
                f"v{self.spec.version}; refusing to guess a split for an unknown speaker"
            )
        if where != "rule":
            return where
        rule = self.spec.rules[utt.speaker]
        if utt.text is None or text_rank is None:
            raise DataError(f"{utt.id}: the split rule for speaker {utt.speaker} needs a text id")
        first, second = rule.splits
        return first if text_rank[utt.text] < (len(text_rank) + 1) // 2 else second


def _splits_package(version: str):
    return resources.files("xlbench.splits").joinpath(f"v{version}")


@cache
def load_split(corpus: str, version: str = SPLITS_VERSION) -> LoadedSplit:
    """The shipped split file of a corpus, validated and hashed."""
    ref = _splits_package(version).joinpath(f"{corpus}.json")
    try:
        raw = ref.read_bytes()
    except (FileNotFoundError, OSError):
        raise DataError(f"no split file v{version} for corpus {corpus!r}") from None
    try:
        spec = SplitFile.model_validate_json(raw)
    except ValidationError as exc:
        raise DataError(f"split file {corpus}.json v{version} is malformed: {str(exc).splitlines()[0]}") from None
    if spec.corpus != corpus:
        raise DataError(f"split file {corpus}.json names corpus {spec.corpus!r}")
    for speaker, where in spec.speakers.items():
        if where == "rule" and speaker not in spec.rules:
            raise DataError(f"split file {corpus}.json: speaker {speaker} has no rule")
    return LoadedSplit(spec, hashlib.sha256(raw).hexdigest())


def _text_ranks(utts: Iterable[Utterance], split: LoadedSplit) -> dict[str, dict[str, int]]:
    """For each rule speaker: text id -> rank of its salted hash."""
    texts: dict[str, set[str]] = {}
    for u in utts:
        if split.spec.speakers.get(u.speaker) == "rule" and u.text is not None:
            texts.setdefault(u.speaker, set()).add(u.text)
    ranks = {}
    for speaker, ts in texts.items():
        salt = split.spec.rules[speaker].salt

        def key(t: str, salt: str = salt) -> str:
            return hashlib.sha256(f"{salt}:{t}".encode()).hexdigest()

        ranks[speaker] = {t: i for i, t in enumerate(sorted(ts, key=key))}
    return ranks


def apply_split(
    utterances: Sequence[Utterance], corpus: str, version: str = SPLITS_VERSION
) -> dict[Split, list[Utterance]]:
    """Divide one corpus's utterances into train/val/test by its split file."""
    split = load_split(corpus, version)
    ranks = _text_ranks(utterances, split)
    out: dict[Split, list[Utterance]] = {s: [] for s in SPLITS}
    for u in utterances:
        out[split.split_of(u, ranks.get(u.speaker))].append(u)
    check_disjoint(out, rule_speakers={f"{corpus}:{s}" for s in split.spec.rules})
    return out


def check_disjoint(parts: dict[Split, list[Utterance]], rule_speakers: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse any speaker present in two splits (rule speakers may share val and test only)."""
    owners: dict[str, set[str]] = {}
    for name, utts in parts.items():
        for u in utts:
            owners.setdefault(u.speaker_key, set()).add(name)
    for speaker, where in sorted(owners.items()):
        if len(where) > 1 and not (speaker in rule_speakers and "train" not in where):
            raise DataError(
                f"speaker {speaker} appears in {' and '.join(sorted(where))}: the splits are not "
                "speaker-independent; refusing to run"
            )
    # Texts of a rule speaker must not cross val/test either.
    seen: dict[tuple[str, str], str] = {}
    for name, utts in parts.items():
        for u in utts:
            if u.speaker_key in rule_speakers and u.text is not None:
                prev = seen.setdefault((u.speaker_key, u.text), name)
                if prev != name:
                    raise DataError(f"text {u.text!r} of speaker {u.speaker_key} is in {prev} and {name}")


def split_hashes(corpora: Iterable[str], version: str = SPLITS_VERSION) -> dict[str, str]:
    return {c: load_split(c, version).sha256 for c in sorted(set(corpora))}


def combined_hash(hashes: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
