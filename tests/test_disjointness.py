"""Speaker independence over every pair of splits, content disjointness over every pair of task
parts, and the order a method receives keys in (sorted by key: the order carries no label)."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import pytest

import xlbench.splits as splits_module
from tests.method_utils import key_sequences
from xlbench.errors import DataError
from xlbench.languages import LanguageData
from xlbench.manifest import Utterance
from xlbench.protocol import EMOTIONS_5, Emotion
from xlbench.splits import SPLITS, apply_split, check_disjoint, combined_hash, load_split, split_hashes
from xlbench.tasks import ALL_LABELS, build_task

ALL_PARTS = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})


def utt(lang: str, split: str, speaker: str, emotion: Emotion, i: int, text: str | None = None) -> Utterance:
    uid = f"{lang}/{split}/{speaker}/{emotion.value}-{i}"
    return Utterance(
        id=uid, path=f"/nowhere/{uid}.wav", corpus=f"c_{lang}", language=lang, speaker=speaker, gender="female",
        raw_label=emotion.value, emotion=emotion, duration=1.0, sample_rate=16000, channels=1, subtype="PCM_16",
        sha=hashlib.sha256(uid.encode()).hexdigest(), text=text,
    )


def parts_with_own_speakers() -> dict[str, list[Utterance]]:
    return {s: [utt("x", s, f"{s}-spk", e, 0) for e in EMOTIONS_5] for s in SPLITS}


def test_own_speakers_pass() -> None:
    check_disjoint(parts_with_own_speakers())


PAIRS = list(itertools.combinations(SPLITS, 2))


def test_pairs_cover_every_two_splits() -> None:
    assert len(PAIRS) == len(SPLITS) * (len(SPLITS) - 1) // 2 == 3


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_a_speaker_in_any_two_splits_is_refused(a: str, b: str) -> None:
    parts = parts_with_own_speakers()
    parts[b].append(utt("x", b, f"{a}-spk", Emotion.ANGER, 9))  # a's speaker, also in b
    both = " and ".join(sorted((a, b)))
    with pytest.raises(DataError, match=f"speaker c_x:{a}-spk appears in {both}: the splits are not "
                                        "speaker-independent"):
        check_disjoint(parts)


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_a_rule_speaker_may_share_val_and_test_only(a: str, b: str) -> None:
    """TESS's one-speaker rule divides a speaker between val and test (by text), never into train."""
    parts = parts_with_own_speakers()
    parts[a].append(utt("x", a, "rule", Emotion.ANGER, 1, text="dog"))
    parts[b].append(utt("x", b, "rule", Emotion.ANGER, 2, text="cat"))
    both = " and ".join(sorted((a, b)))
    if {a, b} == {"val", "test"}:
        check_disjoint(parts, rule_speakers={"c_x:rule"})
    else:
        with pytest.raises(DataError, match=f"speaker c_x:rule appears in {both}"):
            check_disjoint(parts, rule_speakers={"c_x:rule"})
    with pytest.raises(DataError, match=f"speaker c_x:rule appears in {both}"):
        check_disjoint(parts)  # not a rule speaker: refused everywhere


def test_a_rule_speakers_text_may_not_cross_val_and_test() -> None:
    parts = parts_with_own_speakers()
    parts["val"].append(utt("x", "val", "rule", Emotion.ANGER, 1, text="dog"))
    parts["test"].append(utt("x", "test", "rule", Emotion.SADNESS, 2, text="dog"))
    with pytest.raises(DataError, match="text 'dog' of speaker c_x:rule is in val and test"):
        check_disjoint(parts, rule_speakers={"c_x:rule"})
    parts["test"][-1] = utt("x", "test", "rule", Emotion.SADNESS, 2, text="cat")
    check_disjoint(parts, rule_speakers={"c_x:rule"})
    # the same text in one split twice is fine
    parts["val"].append(utt("x", "val", "rule", Emotion.HAPPINESS, 3, text="dog"))
    check_disjoint(parts, rule_speakers={"c_x:rule"})


# -- the task's parts ------------------------------------------------------------------------


def language(lang: str, n: int) -> LanguageData:
    parts = {s: [utt(lang, s, f"{s}{k % 2}", e, k) for e in EMOTIONS_5 for k in range(n)] for s in SPLITS}
    return LanguageData(lang, (f"c_{lang}",), False, parts, {f"c_{lang}": "0" * 64})


#: the six parts build_task reads: (language, split)
TASK_PARTS = [(side, split) for side in ("source", "target") for split in SPLITS]
TASK_PAIRS = list(itertools.combinations(TASK_PARTS, 2))


@pytest.mark.parametrize(("a", "b"), TASK_PAIRS, ids=[f"{a[0]}.{a[1]}-{b[0]}.{b[1]}" for a, b in TASK_PAIRS])
def test_the_same_audio_in_any_two_parts_is_refused(a: tuple[str, str], b: tuple[str, str]) -> None:
    data = {"source": language("english", 4), "target": language("italian", 4)}
    copy = data[a[0]].parts[a[1]][0]
    data[b[0]].parts[b[1]].append(copy.model_copy(update={"id": copy.id + "-copy"}))
    with pytest.raises(DataError, match=r"1 audio file\(s\) appear in more than one split or language"):
        build_task(data["source"], data["target"], classes=EMOTIONS_5, n_labeled=5, seed=0, selection="paper",
                   needs=ALL_PARTS)


@pytest.mark.parametrize("n_labeled", [0, 5, 10, ALL_LABELS])
@pytest.mark.parametrize("selection", ["paper", "strict"])
def test_k_t_u_t_validation_and_test_are_disjoint(n_labeled: int, selection: str) -> None:
    src, tgt = language("english", 4), language("italian", 4)
    task, truth = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=n_labeled, seed=1, selection=selection,
                             needs=ALL_PARTS)
    k, u = set(task.target_labeled.keys), set(task.target_unlabeled.keys)
    train = {x.sha for x in tgt.parts["train"]}
    assert not k & u and k | u == train
    assert len(k) == (len(train) if n_labeled == ALL_LABELS else n_labeled)
    tests = set(truth.target_test.keys) | set(truth.source_test.keys)
    handed = set(task.fit_keys())
    assert not handed & tests
    assert set(truth.target_test.keys) == {x.sha for x in tgt.parts["test"]}
    assert set(truth.source_test.keys) == {x.sha for x in src.parts["test"]}
    for s in task.validation:
        if s.name != "target_labeled":
            assert not set(s.keys) & (k | u), s.name


# -- the order keys arrive in ------------------------------------------------------------------


def test_every_key_sequence_is_sorted_by_key_not_by_label() -> None:
    """Manifest order spells the emotion (ids are sorted, ids hold the label): a method must get
    every set sorted by key, which here differs from label order, so a label-ordered set fails."""
    src, tgt = language("english", 6), language("italian", 6)
    task, truth = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=10, seed=0, selection="paper",
                             needs=ALL_PARTS)
    sequences = key_sequences(task, truth)
    for name, keys in sequences.items():
        assert list(keys) == sorted(keys), name
    # in manifest (label) order the unlabelled keys are not sorted: the test above can fail
    unlabeled = set(task.target_unlabeled.keys)
    by_label = [x.sha for x in sorted(tgt.parts["train"], key=lambda x: x.id) if x.sha in unlabeled]
    assert by_label != sorted(by_label)
    # labels travel with their keys
    label_of = {x.sha: EMOTIONS_5.index(x.emotion) for part in (*src.parts.values(), *tgt.parts.values())
                for x in part}
    for labeled in (task.source_train, task.target_labeled):
        assert labeled.labels.tolist() == [label_of[k] for k in labeled.keys]
    assert truth.unlabeled_labels == {k: label_of[k] for k in task.target_unlabeled.keys}
    assert truth.target_test.labels.tolist() == [label_of[k] for k in truth.target_test.keys]
    assert [x.sha for x in truth.target_test.utterances] == list(truth.target_test.keys)
    assert np.array_equal(truth.source_test.labels, [label_of[k] for k in truth.source_test.keys])


# -- the shipped split files and TESS's one-speaker rule ---------------------------------------


def tess(speaker: str, word: str | None, i: int = 0) -> Utterance:
    uid = f"tess/{speaker}_{word}_{i}"
    return Utterance(
        id=uid, path=f"/nowhere/{uid}.wav", corpus="tess", language="english", speaker=speaker, gender="female",
        raw_label="angry", emotion=Emotion.ANGER, duration=1.0, sample_rate=16000, channels=1, subtype="PCM_16",
        sha=hashlib.sha256(uid.encode()).hexdigest(), text=word,
    )


@pytest.mark.parametrize(
    ("words", "val"),
    [
        # sha256("xlbench-splits-v1-tess:<word>") orders them bar, bean, beg, back, base, bath
        (["back", "bar", "base", "bath", "bean", "beg"], {"bar", "bean", "beg"}),
        # five words: the first (5 + 1) // 2 = 3 go to validation (bar, bean, back)
        (["back", "bar", "base", "bath", "bean"], {"bar", "bean", "back"}),
    ],
)
def test_tess_rule_speaker_is_divided_by_the_salted_word_hash(words: list[str], val: set[str]) -> None:
    utts = [tess("OAF", w) for w in words] + [tess("YAF", w, i) for w in words for i in range(2)]
    parts = apply_split(utts, "tess")
    assert {u.speaker for u in parts["train"]} == {"OAF"}
    assert {u.text for u in parts["val"]} == val and all(u.speaker == "YAF" for u in parts["val"])
    assert {u.text for u in parts["test"]} == set(words) - val and all(u.speaker == "YAF" for u in parts["test"])
    assert len(parts["val"]) == 2 * len(val)  # every utterance of a word goes with it


def test_a_rule_speaker_without_a_text_is_refused() -> None:
    with pytest.raises(DataError, match=r"^tess/YAF_None_0: the split rule for speaker YAF needs a text id$"):
        apply_split([tess("YAF", None), tess("YAF", "bar")], "tess")
    with pytest.raises(DataError, match="needs a text id"):
        apply_split([tess("YAF", None)], "tess")


def test_split_files_load_from_the_package_by_version() -> None:
    load_split.cache_clear()  # a cached load would hide how the file is found
    path = Path(splits_module.__file__).parent / "v1" / "emodb.json"
    loaded = load_split("emodb")
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.spec.corpus == "emodb" and loaded.spec.version == "1"
    with pytest.raises(DataError, match=r"^no split file v9 for corpus 'emodb'$"):
        apply_split([], "emodb", version="9")


def test_split_hashes_are_per_corpus_and_combined_in_a_stable_order() -> None:
    folder = Path(splits_module.__file__).parent / "v1"
    expected = {c: hashlib.sha256((folder / f"{c}.json").read_bytes()).hexdigest() for c in ("emodb", "tess")}
    hashes = split_hashes(["tess", "emodb", "tess"])
    assert hashes == expected and list(hashes) == ["emodb", "tess"]
    combined = hashlib.sha256(b'{"emodb": "' + expected["emodb"].encode() + b'", "tess": "'
                              + expected["tess"].encode() + b'"}').hexdigest()
    assert combined_hash(hashes) == combined == combined_hash(dict(reversed(hashes.items())))
