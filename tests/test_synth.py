"""The generated default corpus: determinism, layout, format, acoustics, loaders, manifests.

Fast tests generate small subsets (a few speakers and sentences); one slow test generates
everything. Acoustic checks use simple numpy features and paired comparisons (the same
speaker and sentence in an emotion vs. in neutral), so that they test the rules, not luck.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import xlbench.synth as synth
import xlbench.synth.generate as gen
from xlbench.errors import ConfigError, DataError
from xlbench.protocol import EMOTIONS_5, LANGUAGES, SAMPLE_RATE, Emotion
from xlbench.synth.corpus import LOADERS, SynthEnglish, SynthPersian
from xlbench.synth.rules import RULES, rules_markdown
from xlbench.synth.spec import (
    CODE_OF,
    DEFAULT_SEED,
    EMOTION_CODES,
    GENERATOR_VERSION,
    NOTICE,
    STAMP_NAME,
    SYNTH_SPECS,
    synth_language,
)

A, F, H, N, S = Emotion.ANGER, Emotion.FEAR, Emotion.HAPPINESS, Emotion.NEUTRAL, Emotion.SADNESS
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "xlbench-home"
    monkeypatch.setenv("XLBENCH_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """English and Persian, 4 speakers x 3 sentences x 5 emotions = 60 utterances each."""
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return gen.generate(out, languages=["english", "fa"], workers=1, limit_speakers=4, limit_sentences=3)


def hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.wav"))
    }


# -- simple acoustic features --------------------------------------------------------------------------


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    n = 1 + (len(x) - length) // hop
    return x[np.arange(length)[None, :] + hop * np.arange(max(n, 0))[:, None]]


def speech_span(x: np.ndarray) -> tuple[int, int]:
    """First and last sample of the frames within 35 dB of the loudest (the padding is silence)."""
    e = np.sqrt(np.mean(_frames(x, 320, 160) ** 2, axis=1))
    active = np.flatnonzero(e > e.max() * 10 ** (-35 / 20))
    return active[0] * 160, active[-1] * 160 + 320


def f0_log_mean(x: np.ndarray) -> float:
    """Mean log F0 over voiced frames, with a small YIN (cumulative mean normalised difference)."""
    fr = _frames(x.astype(np.float64), 800, 320)
    fr = fr[np.sqrt(np.mean(fr**2, axis=1)) > 0.1 * np.sqrt(np.mean(fr**2, axis=1)).max()]
    w = 400
    spec = np.fft.rfft(fr, 1600)
    ac = np.fft.irfft(spec * np.conj(np.fft.rfft(fr[:, :w], 1600)), 1600)[:, :w]
    cs = np.concatenate([np.zeros((len(fr), 1)), np.cumsum(fr**2, axis=1)], axis=1)
    taus = np.arange(w)
    d = cs[:, [w]] + (cs[:, taus + w] - cs[:, taus]) - 2 * ac
    d[:, 0] = 0
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(np.cumsum(d[:, 1:], axis=1), 1e-12)
    lo, hi = SAMPLE_RATE // 450, SAMPLE_RATE // 60
    logs = []
    for row in cmnd[:, lo:hi]:
        below = np.flatnonzero(row < 0.15)
        if len(below):
            i = below[0]
            while i + 1 < len(row) and row[i + 1] < row[i]:
                i += 1
            logs.append(math.log(SAMPLE_RATE / (lo + i)))
    return float(np.mean(logs)) if len(logs) >= 3 else math.nan  # nan: too noisy to tell


def features(path: Path) -> dict[str, float]:
    x, rate = sf.read(path, dtype="float32")
    assert rate == SAMPLE_RATE
    a, b = speech_span(x)
    speech = x[a:b]
    spec = np.abs(np.fft.rfft(_frames(speech, 512, 256) * np.hanning(512), axis=1)) ** 2
    freqs = np.fft.rfftfreq(512, 1 / SAMPLE_RATE)
    return {
        "log_dur": math.log((b - a) / SAMPLE_RATE),
        "db": 10 * math.log10(float(np.mean(speech.astype(np.float64) ** 2))),
        "log_f0": f0_log_mean(speech),
        "centroid": float((spec * freqs).sum() / spec.sum()),
    }


@functools.lru_cache(maxsize=8)
def paired_effects(root: Path, code: str) -> dict[Emotion, dict[str, float]]:
    """Mean over (speaker, sentence) of feature(emotion) - feature(neutral)."""
    diffs: dict[Emotion, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for neutral in sorted((root / code).glob("*/neu-*.wav")):
        base = features(neutral)
        for e in (A, F, H, S):
            other = features(neutral.with_name(neutral.name.replace("neu-", f"{CODE_OF[e]}-", 1)))
            for k, v in other.items():
                diffs[e][k].append(v - base[k])
    return {e: {k: float(np.nanmean(v)) for k, v in d.items()} for e, d in diffs.items()}


def check_rules(effects: dict[Emotion, dict[str, float]], language: str) -> None:
    """Every clear rule shows up in the measured direction."""
    for e, eff in effects.items():
        rule = RULES[language][e]
        where = f"{language} {e.value}: {eff}"
        if abs(rule.loud) >= 3:
            assert math.copysign(1, eff["db"]) == math.copysign(1, rule.loud), where
        if abs(math.log(rule.rate)) >= 0.09:  # a gap only ever adds to a slower rate
            assert math.copysign(1, eff["log_dur"]) == -math.copysign(1, math.log(rule.rate)), where
        if abs(rule.pitch) >= 10:
            assert math.copysign(1, eff["log_f0"]) == math.copysign(1, rule.pitch), where
        if rule.tilt >= 0.4:
            assert eff["centroid"] > 0, where


# -- spec --------------------------------------------------------------------------------------------


def test_specs_cover_the_protocol_languages() -> None:
    assert set(SYNTH_SPECS) == set(LANGUAGES)
    for name, spec in SYNTH_SPECS.items():
        code = LANGUAGES[name].code
        assert spec.name == f"synth_{code}" and spec.language == name and spec.synthetic
        assert dict(spec.label_map) == dict(EMOTION_CODES) and set(spec.label_map.values()) == set(EMOTIONS_5)
        genders = list(spec.speakers.values())
        assert len(genders) == 10 and genders.count("male") == genders.count("female") == 5
        assert all(s.startswith(f"{code}_") for s in spec.speakers)
        assert spec.expected == {e: 100 for e in EMOTIONS_5} and spec.expected_files == 500
        assert "espeak-ng" in spec.licence and "Murray & Arnott" in spec.citation
        assert NOTICE in spec.notes
    ids = [s for spec in SYNTH_SPECS.values() for s in spec.speakers]
    assert len(ids) == len(set(ids)), "speaker ids are unique across languages too"


def test_rule_table_is_documented() -> None:
    import xlbench.synth.rules as rules

    table = rules_markdown()
    assert table in (rules.__doc__ or "")
    assert table in (ROOT / "docs" / "synthetic-corpus.md").read_text(encoding="utf-8")
    for table_of_lang in RULES.values():
        assert table_of_lang[N] == RULES["english"][N]
        assert set(table_of_lang) == set(EMOTIONS_5)


def test_espeak_engine_resets_to_a_pristine_state(monkeypatch: pytest.MonkeyPatch) -> None:
    from xlbench.synth import espeak

    text, voice, p = "The keys are in the top drawer.", "en+f2", espeak.Prosody(rate=150, pitch=60)
    first, rate = espeak.synthesize(text, voice, p, seed=5)
    assert rate == 22050 and first.dtype == np.int16 and len(first) > rate
    espeak.synthesize("Something else, to change the engine's state?", "de+m7")
    assert np.array_equal(espeak.synthesize(text, voice, p, seed=5)[0], first)
    # where no private copy can be loaded (a noexec temp folder), the library file itself is
    # reloaded, which resets it too
    def no_copy(self: espeak.Engine, folder: str) -> None:
        raise OSError("noexec")

    monkeypatch.setattr(espeak.Engine, "_copy_in", no_copy)
    engine = espeak.Engine()
    try:
        engine.synthesize("Something else.", "fr+m2")
        engine.reset()
        assert np.array_equal(engine.synthesize(text, voice, p, seed=5), first)
    finally:
        engine.close()
    with pytest.raises(DataError, match="no voice"):
        espeak.synthesize("x", "xx-nonexistent")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="language"):
        gen.generate(Path("/nonexistent/never"), languages=["klingon"])


# -- generation ------------------------------------------------------------------------------------------


def test_layout_counts_and_stamp(small: Path) -> None:
    stamp = gen.read_stamp(small)
    assert stamp is not None
    assert stamp["notice"] == NOTICE and stamp["synthetic"] is True
    assert stamp["generator_version"] == GENERATOR_VERSION and stamp["seed"] == DEFAULT_SEED
    assert stamp["languages"] == {
        "en": {"name": "english", "corpus": "synth_en", "utterances": 60},
        "fa": {"name": "persian", "corpus": "synth_fa", "utterances": 60},
    }
    assert (small / "en" / STAMP_NAME).is_file() and (small / "fa" / STAMP_NAME).is_file()
    assert not list(small.parent.glob(".corpus.*")), "no temporary folder left behind"
    for code in ("en", "fa"):
        speakers = [s.id for s in synth_language(code).speakers[:4]]
        assert sorted(p.name for p in (small / code).iterdir() if p.is_dir()) == sorted(speakers)
        for spk in speakers:
            names = sorted(p.name for p in (small / code / spk).iterdir())
            expected = sorted(f"{c}-{spk}-s{i:02d}.wav" for c in EMOTION_CODES for i in (1, 2, 3))
            assert names == expected


def test_wav_format(small: Path) -> None:
    paths = sorted(small.rglob("*.wav"))
    assert len(paths) == 120
    for p in paths:
        info = sf.info(p)
        got = (info.samplerate, info.channels, info.subtype, info.format)
        assert got == (SAMPLE_RATE, 1, "PCM_16", "WAV")
        assert 0.8 < info.duration < 6.0, p
    x, _ = sf.read(paths[0], dtype="float32")
    assert 0.01 < np.abs(x).max() < 1.0 and np.isfinite(x).all()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kw = {"languages": ["it"], "workers": 1, "limit_speakers": 2, "limit_sentences": 2}
    a = hashes(gen.generate(tmp_path / "a", seed=7, **kw))
    b = hashes(gen.generate(tmp_path / "b", seed=7, **kw))
    c = hashes(gen.generate(tmp_path / "c", seed=8, **kw))
    assert len(a) == 20 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)
    # a smaller run gives exactly the files of the bigger one (fixed-order chunks, fresh engine)
    d = hashes(gen.generate(tmp_path / "d", seed=7, languages=["it"], workers=1, limit_speakers=1,
                            limit_sentences=1))
    assert d and all(a[k] == v for k, v in d.items())


def test_regenerating_replaces_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "c"
    gen.generate(out, languages=["de"], workers=1, limit_speakers=1, limit_sentences=1)
    (out / "stray.txt").write_text("x")
    gen.generate(out, languages=["de"], workers=1, limit_speakers=1, limit_sentences=1)
    assert not (out / "stray.txt").exists() and len(list(out.rglob("*.wav"))) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_interrupted_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = gen.render

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "render", flaky)
    with pytest.raises(KeyboardInterrupt):
        gen.generate(tmp_path / "c", languages=["en"], workers=1, limit_speakers=1, limit_sentences=2)
    assert list(tmp_path.iterdir()) == []


def test_emotions_follow_the_rules(small: Path) -> None:
    for code, name in (("en", "english"), ("fa", "persian")):
        check_rules(paired_effects(small, code), name)
    en = paired_effects(small, "en")
    # Murray & Arnott, on English: anger/happiness/fear higher than neutral; sadness slower, softer
    assert all(en[e]["log_f0"] > 0 for e in (A, H, F))
    assert en[A]["db"] > 0 and en[H]["db"] > 0
    assert en[S]["log_dur"] > 0 and en[S]["db"] < 0
    assert en[F]["log_dur"] < en[H]["log_dur"] < 0


def test_languages_render_emotions_differently(small: Path) -> None:
    en, fa = paired_effects(small, "en"), paired_effects(small, "fa")
    # English anger is faster than neutral; Persian anger slower, with pauses
    assert en[A]["log_dur"] < 0 < fa[A]["log_dur"]
    # English fear is much faster and louder than Persian fear, which is quieter than neutral
    assert en[F]["log_dur"] < fa[F]["log_dur"] - 0.1
    assert fa[F]["db"] < en[F]["db"] - 1.5


# -- loaders and manifests -----------------------------------------------------------------------


def test_loaders_parse_the_generated_tree(small: Path) -> None:
    scan = SynthEnglish().scan(small / "en")
    assert len(scan.entries) == 60 and not scan.unknown and not scan.dropped
    assert scan.other_files == 1  # the stamp
    assert scan.counts() == {e: 12 for e in EMOTIONS_5}
    entry = next(e for e in scan.entries if e.relpath == "en_f02/sad-en_f02-s03.wav")
    assert (entry.speaker, entry.gender, entry.raw_label, entry.emotion, entry.text) == (
        "en_f02", "female", "sad", S, "s03",
    )
    assert len(SynthPersian().scan(small / "fa").entries) == 60
    assert set(LOADERS) == set(LANGUAGES)


def test_loader_reports_foreign_names(tmp_path: Path) -> None:
    (tmp_path / "en_m01").mkdir()
    good = tmp_path / "en_m01" / "ang-en_m01-s01.wav"
    good.write_bytes(gen.wav_bytes(np.zeros(160, np.int16)))
    (tmp_path / "en_m01" / "03a01Fa.wav").write_bytes(good.read_bytes())
    (tmp_path / "en_m01" / "ang-fa_m01-s01.wav").write_bytes(good.read_bytes())
    scan = SynthEnglish().scan(tmp_path)
    assert len(scan.entries) == 1
    assert sorted(r for _, r in scan.unknown)[0].startswith("expected <emotion>")
    assert any("unknown speaker" in r for _, r in scan.unknown)


def test_registered_as_corpora() -> None:
    from xlbench.corpora import get_corpus

    for name, cls in LOADERS.items():
        assert isinstance(get_corpus(f"synth_{LANGUAGES[name].code}"), cls)


def test_ensure_synthetic_generates_once_and_writes_a_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    from xlbench.manifest import load_manifest, manifest_path

    monkeypatch.setattr(synth, "_GENERATE_KWARGS", {"limit_speakers": 2, "limit_sentences": 1, "workers": 1})
    calls: list[Path] = []
    real = gen.generate

    def counting(out_dir: Path, **kwargs):
        calls.append(out_dir)
        return real(out_dir, **kwargs)

    monkeypatch.setattr(gen, "generate", counting)
    stages: set[str] = set()
    results = []

    def call(lang: str) -> None:
        results.append(synth.ensure_synthetic(lang, progress=lambda stage, d, t: stages.add(stage)))

    threads = [threading.Thread(target=call, args=(lang,)) for lang in ("french", "fr")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1, "two callers at once generate only once"
    assert stages == {"generate", "manifest"}
    manifest = results[0]
    assert manifest.corpus == "synth_fr" and manifest.language == "french" and manifest.synthetic
    assert len(manifest.utterances) == 10 and all(u.synthetic for u in manifest.utterances)
    assert {u.emotion for u in manifest.utterances} == set(EMOTIONS_5)
    assert all(u.sample_rate == SAMPLE_RATE and u.channels == 1 for u in manifest.utterances)
    assert Path(manifest.root) == (synth.corpus_root() / "fr").resolve()
    assert load_manifest("synth_fr") == manifest
    assert synth.is_generated(synth.corpus_root())

    # a second call reuses both the corpus and the manifest
    again = synth.ensure_synthetic("fr")
    assert len(calls) == 1 and again.created == manifest.created
    # a manifest that points elsewhere is stale and rebuilt; other languages come from the same corpus
    path = manifest_path("synth_fr")
    path.write_text(path.read_text().replace(manifest.root, "/elsewhere"))
    assert synth.ensure_synthetic("french").root == manifest.root
    de = synth.ensure_synthetic("german")
    assert de.corpus == "synth_de" and len(de.utterances) == 10 and len(calls) == 1
    # a corrupt manifest is rebuilt; a corpus damaged by hand is generated again
    lost = Path(manifest.utterances[0].path)
    lost.unlink()
    path.write_text("{not json")
    fixed = synth.ensure_synthetic("fr")
    assert len(calls) == 2 and lost.is_file() and len(fixed.utterances) == 10
    assert {u.sha for u in fixed.utterances} == {u.sha for u in manifest.utterances}


# -- everything --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_full_generation(synthetic_home, tmp_path: Path) -> None:
    # the session's corpus: made by ensure_synthetic, i.e. a full generate() with default workers
    root = synth.corpus_root()
    made_with = gen.default_workers()
    stamp = gen.read_stamp(root)
    assert stamp is not None and stamp["limit_speakers"] is None and stamp["limit_sentences"] is None
    for name, spec in SYNTH_SPECS.items():
        code = LANGUAGES[name].code
        scan = LOADERS[name]().scan(root / code)
        assert not scan.unknown and scan.files_seen == spec.expected_files
        assert scan.counts() == spec.expected
        assert {e.speaker for e in scan.entries} == set(spec.speakers)
        assert stamp["languages"][code]["utterances"] == spec.expected_total
        check_rules(paired_effects_subset(root, code), name)
    # another number of worker processes gives the same bytes
    sub = gen.generate(tmp_path / "sub", languages=["de", "fa"], workers=1 if made_with > 1 else 2,
                       limit_speakers=2, limit_sentences=2)
    full = hashes(root)
    assert all(full[k] == v for k, v in hashes(sub).items())


def paired_effects_subset(root: Path, code: str) -> dict[Emotion, dict[str, float]]:
    """paired_effects on 4 speakers x 3 sentences of a full corpus (copied by hard links)."""
    import os
    import tempfile

    lang = synth_language(code)
    with tempfile.TemporaryDirectory() as tmp:
        for spk in lang.speakers[:4]:
            (Path(tmp) / code / spk.id).mkdir(parents=True)
            for p in (root / code / spk.id).glob("*-s0[123].wav"):
                os.link(p, Path(tmp) / code / spk.id / p.name)
        return paired_effects(Path(tmp), code)
