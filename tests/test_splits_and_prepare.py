from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests import corpus_fixtures as fx
from xlbench.cli import main
from xlbench.corpora import get_corpus
from xlbench.errors import DataError
from xlbench.manifest import Utterance, build_manifest, load_manifest
from xlbench.protocol import EMOTIONS_5, REAL_CORPORA
from xlbench.splits import SPLITS, apply_split, check_disjoint, load_split, split_hashes

ROOT = Path(__file__).resolve().parents[1]


FullCorpus = Callable[[str], tuple[Utterance, ...]]


@pytest.fixture(scope="session")
def full_tree(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A full-size corpus tree (every file name of the release), written once per session; tests
    only read it (one that changes files makes its own)."""
    roots: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in roots:
            roots[name] = fx.FULL_MAKERS[name](tmp_path_factory.mktemp(name))
        return roots[name]

    return get


@pytest.fixture(scope="session")
def full_corpus(full_tree: Callable[[str], Path]) -> FullCorpus:
    """The kept utterances of a full-size corpus, scanned and read once per session (a few
    seconds per corpus, and several tests read each). A tuple of frozen utterances, so no test
    can change what the next one sees."""
    built: dict[str, tuple[Utterance, ...]] = {}

    def get(name: str) -> tuple[Utterance, ...]:
        if name not in built:
            loader = get_corpus(name)
            built[name] = tuple(build_manifest(loader.spec, loader.scan(full_tree(name))).utterances)
        return built[name]

    return get


# -- the shipped split files -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_CORPORA))
def test_split_file_covers_exactly_the_protocol_speakers(name: str) -> None:
    split = load_split(name)
    assert set(split.spec.speakers) == set(REAL_CORPORA[name].speakers)
    raw = resources.files("xlbench.splits").joinpath(f"v1/{name}.json").read_bytes()
    assert split.sha256 == hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("ravdess", (14, 5, 5)),
        ("savee", (2, 1, 1)),
        ("cafe", (8, 2, 2)),
        ("emodb", (6, 2, 2)),
        ("emovo", (4, 1, 1)),
        ("shemo", (53, 17, 17)),
    ],
)
def test_speaker_counts_and_gender_balance(name: str, sizes: tuple[int, int, int]) -> None:
    spec = load_split(name).spec
    by_split = {s: [spk for spk, w in spec.speakers.items() if w == s] for s in SPLITS}
    assert tuple(len(by_split[s]) for s in SPLITS) == sizes
    genders = REAL_CORPORA[name].speakers
    share = sum(g == "female" for g in genders.values()) / len(genders)
    for s in SPLITS:
        females = sum(genders[x] == "female" for x in by_split[s])
        assert abs(females - share * len(by_split[s])) < 1  # as balanced as whole speakers allow


def test_split_hashes_are_read_from_the_version_asked_for() -> None:
    with pytest.raises(DataError, match=r"^no split file v9 for corpus 'emodb'$"):
        split_hashes(["emodb"], version="9")
    raw = resources.files("xlbench.splits").joinpath("v1/emodb.json").read_bytes()
    assert split_hashes(["emodb"], version="1") == {"emodb": hashlib.sha256(raw).hexdigest()}


@pytest.mark.slow
def test_split_files_are_reproduced_by_the_generator() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_splits.py"), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr


# -- applying them to full-size corpora --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REAL_CORPORA))
def test_full_corpus_split_is_speaker_disjoint_with_every_class(full_corpus: FullCorpus, name: str) -> None:
    utterances = full_corpus(name)
    parts = apply_split(utterances, name)
    assert sum(len(p) for p in parts.values()) == len(utterances)
    speakers = {s: {u.speaker for u in parts[s]} for s in SPLITS}
    if name == "tess":
        assert speakers == {"train": {"OAF"}, "val": {"YAF"}, "test": {"YAF"}}
        words = {s: {u.text for u in parts[s]} for s in ("val", "test")}
        assert not words["val"] & words["test"] and len(words["val"]) == len(words["test"]) == 100
        assert len(parts["val"]) == len(parts["test"]) == 500
    else:
        assert not speakers["train"] & speakers["val"]
        assert not speakers["train"] & speakers["test"]
        assert not speakers["val"] & speakers["test"]
    for s in SPLITS:
        assert set(Counter(u.emotion for u in parts[s])) == set(EMOTIONS_5), f"{name} {s} lacks a class"


def test_english_training_set_reproduces_the_papers_size(full_corpus: FullCorpus) -> None:
    train = sum(len(apply_split(full_corpus(n), n)["train"]) for n in ("ravdess", "savee", "tess"))
    assert train == 14 * 36 + 2 * 90 + 1000 == 1684  # paper: 1,682


def test_unknown_speaker_is_refused(full_corpus: FullCorpus) -> None:
    utterances = full_corpus("emovo")
    stranger = utterances[0].model_copy(update={"speaker": "x9", "id": "emovo/x9/foo"})
    with pytest.raises(DataError, match=r"speaker 'x9'.*not in split file"):
        apply_split([*utterances, stranger], "emovo")


def test_a_speaker_in_two_splits_is_refused(full_corpus: FullCorpus) -> None:
    parts = apply_split(full_corpus("emovo"), "emovo")
    parts["test"].append(parts["train"][0])
    with pytest.raises(DataError, match=r"speaker emovo:\w+ appears in test and train"):
        check_disjoint(parts)


# -- `xlbench data prepare` and `status` --------------------------------------------------------


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_prepare_prints_validation_and_split_tables(tmp_path: Path) -> None:
    root = fx.make_full_emovo(tmp_path / "EMOVO-copy")
    res = invoke("data", "prepare", "--corpus", "emovo", "--root", str(root))
    assert res.exit_code == 0, res.output
    assert "420 utterances kept of 588 audio files" in res.output
    assert "| anger     |         84 |      84 | ok" in res.output
    assert "dropped by the protocol: disgusto 84, sorpresa 84" in res.output
    assert "| train   |          4 |" in res.output
    manifest = load_manifest("emovo")
    assert manifest is not None and len(manifest.utterances) == 420
    assert Counter(u.emotion for u in manifest.utterances) == Counter({e: 84 for e in EMOTIONS_5})
    status = invoke("data", "status")
    assert "| emovo" in status.output and "ready" in status.output
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in status.output.splitlines() if ln.startswith("| ")]
    assert ["italian", "target", "real (emovo)", "emovo", "real: prepared", "420", ""] in rows
    assert ["", "", "", "synth_it", "synthetic: not generated", "",
            "`xlbench data generate --language italian` (or any run, on first use)"] in rows
    assert ["french", "target", "synthetic (synth_fr)", "cafe", "missing", "",
            "`xlbench data download --corpus cafe --accept-licence`"] in rows


def test_prepare_shows_every_difference_from_the_expected_counts(tmp_path: Path) -> None:
    root = fx.make_full_emodb(tmp_path / "emodb")
    removed = sorted(root.rglob("*W*.wav"))[:5]  # five anger files (W = Wut)
    for f in removed:
        f.unlink()
    res = invoke("data", "prepare", "--corpus", "emodb", "--root", str(root))
    assert res.exit_code == 0, res.output
    anger_row = next(line for line in res.output.splitlines() if line.startswith("| anger"))
    assert anger_row.split("|")[2:5] == ["        127 ", "     122 ", " -5           "]
    assert "counts differ from the protocol's for anger, total" in res.output


def test_prepare_emodb_v2_filters_the_extras(tmp_path: Path) -> None:
    root = fx.make_full_emodb(tmp_path / "emodb2", v2=True)
    res = invoke("data", "prepare", "--corpus", "emodb", "--root", str(root))
    assert res.exit_code == 0, res.output
    assert "408 utterances kept of 816 audio files" in res.output
    assert "281 × not in the original 535-file EMO-DB release" in res.output


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no .wav files"),
        (lambda p: fx.make_emovo(p / "other"), "is this the right corpus?"),
    ],
)
def test_prepare_bad_roots_give_one_line(tmp_path: Path, make, expected: str) -> None:
    res = CliRunner().invoke(main, ["data", "prepare", "--corpus", "ravdess", "--root", str(make(tmp_path))])
    assert res.exit_code == 2
    lines = [x for x in res.output.strip().splitlines() if x]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert load_manifest("ravdess") is None


def test_bad_files_stop_unless_skipped(tmp_path: Path) -> None:
    root = fx.make_full_emovo(tmp_path / "emovo")
    fx.write_empty(root / "f1" / "rab-f1-b1.wav")
    fx.write_truncated(root / "m1" / "gio-m1-b2.wav")
    fx.write_not_audio(root / "m2" / "tri-m2-l1.wav")
    res = CliRunner().invoke(main, ["data", "prepare", "--corpus", "emovo", "--root", str(root)])
    assert res.exit_code == 2
    assert "3 bad audio file(s)" in res.output and "--skip-bad" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert load_manifest("emovo") is None  # nothing half-written
    res = invoke("data", "prepare", "--corpus", "emovo", "--root", str(root), "--skip-bad")
    assert res.exit_code == 0
    assert "skipped 3 bad file(s)" in res.output and "empty file" in res.output
    assert len(load_manifest("emovo").utterances) == 417


def test_unknown_label_code_and_duplicates(tmp_path: Path) -> None:
    root = fx.make_full_emovo(tmp_path / "emovo")
    fx.write_wav(root / "f1" / "xyz-f1-b1.wav", rate=48_000)
    res = CliRunner().invoke(main, ["data", "prepare", "--corpus", "emovo", "--root", str(root)])
    assert res.exit_code == 2 and "unknown label code 'xyz'" in res.output
    (root / "f1" / "xyz-f1-b1.wav").unlink()
    (root / "f1" / "rab-f1-b2.wav").write_bytes((root / "f1" / "rab-f1-b1.wav").read_bytes())
    res = CliRunner().invoke(main, ["data", "prepare", "--corpus", "emovo", "--root", str(root)])
    assert res.exit_code == 2 and "duplicate file(s)" in res.output and "rab-f1-b" in res.output


@pytest.mark.parametrize(
    ("channels", "subtype", "rate"), [(2, "PCM_16", 48_000), (1, "PCM_U8", 48_000), (1, "PCM_16", 22_050)]
)
def test_stereo_8bit_and_unusual_rates_are_read(tmp_path: Path, channels: int, subtype: str, rate: int) -> None:
    root = fx.make_emovo(tmp_path / "e", channels=channels, subtype=subtype, rate=rate)
    res = invoke("data", "prepare", "--corpus", "emovo", "--root", str(root))
    assert res.exit_code == 0, res.output
    u = load_manifest("emovo").utterances[0]
    assert (u.channels, u.sample_rate) == (channels, rate)
    from xlbench.audio import load_audio

    wav = load_audio(u.path, expected_sha=u.sha)
    assert wav.ndim == 1 and abs(len(wav) - round(u.duration * 16_000)) <= 2


def test_manifest_is_json_with_provenance(full_tree: Callable[[str], Path]) -> None:
    from xlbench.manifest import manifest_path

    invoke("data", "prepare", "--corpus", "emovo", "--root", str(full_tree("emovo")))
    data = json.loads(manifest_path("emovo").read_text())
    assert data["schema_version"] == 1 and data["protocol_version"] == "1" and data["synthetic"] is False
    assert data["files_seen"] == 588 and data["dropped"] == {"dis": 84, "sor": 84}
    u = data["utterances"][0]
    assert set(u) >= {
        "id",
        "path",
        "corpus",
        "language",
        "speaker",
        "gender",
        "raw_label",
        "emotion",
        "duration",
        "sample_rate",
        "sha",
    }
    assert u["corpus"] == "emovo" and u["language"] == "italian" and len(u["sha"]) == 32
    assert u["sample_rate"] == 48_000 and u["duration"] == pytest.approx(0.01)


def test_shemo_release_counts_are_explained(full_tree: Callable[[str], Path]) -> None:
    res = invoke("data", "prepare", "--corpus", "shemo", "--root", str(full_tree("shemo")))
    assert res.exit_code == 0, res.output
    assert "2799 utterances kept of 3000 audio files" in res.output
    assert "match the file names of the public release" in res.output
    fear_row = next(line for line in res.output.splitlines() if line.startswith("| fear"))
    assert "-6" in fear_row  # 32 found against the published 38: shown, not hidden
