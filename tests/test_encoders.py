"""Encoders: registry, shapes, masking, determinism, offline loading and its failures."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import torch

from xlbench import hub
from xlbench.encoders import ENCODERS, Encoder, build_encoder, describe_encoders
from xlbench.encoders.base import EncoderInfo
from xlbench.encoders.byols import CHECKPOINT, WEIGHTS_ENV, BYOLSScratch
from xlbench.encoders.emotioncnn import PAPER_PARAMS, EmotionCNN
from xlbench.encoders.frontends import erb_rate
from xlbench.encoders.hf import HUBERT_BASE_PARAMS, HUBERT_ID
from xlbench.encoders.tiny import tiny_hubert, tiny_wav2vec2
from xlbench.encoders.weights import file_sha256
from xlbench.errors import ConfigError, DataError, MissingWeightsError

SR = 16_000
pytestmark = pytest.mark.usefixtures("one_torch_thread_per_module")  # tiny tensors


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hubert(tmp_path_factory.mktemp("tiny") / "hubert")


@pytest.fixture(scope="module")
def tiny_w2v_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_wav2vec2(tmp_path_factory.mktemp("tiny") / "wav2vec2")


def make(name: str, tiny_dir: Path, tiny_w2v_dir: Path) -> Encoder:
    torch.manual_seed(0)
    if name == "hf-hubert":
        return build_encoder(f"hf:{tiny_dir}")
    if name == "hubert-path":
        return build_encoder("hubert", {"path": str(tiny_dir)})
    if name == "hubert-layer1":
        return build_encoder("hubert", {"path": str(tiny_dir), "layer": "1"})
    if name == "hf-wav2vec2":
        return build_encoder(f"hf:{tiny_w2v_dir}")
    return build_encoder(name)


ALL = ["logmel-stats", "emotioncnn", "byols-scratch", "hf-hubert", "hubert-path", "hubert-layer1", "hf-wav2vec2"]


def batch(seed: int = 0, lengths: tuple[int, ...] = (SR, 9_000, 4_321)) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise with padding that holds garbage, not zeros, and is wider than the longest utterance
    (batches are rounded up to a multiple of 0.25 s on a GPU): encoders must ignore all of it."""
    g = torch.Generator().manual_seed(seed)
    wav = 0.1 * torch.randn(len(lengths), max(lengths) + 777, generator=g)
    return wav, torch.tensor(lengths)


# -- the registry -------------------------------------------------------------------------------


def test_builtins_are_registered_entry_points() -> None:
    assert {"logmel-stats", "emotioncnn", "byols", "byols-scratch", "hubert"} <= set(ENCODERS.names())
    assert ENCODERS.registration("hubert").target == "xlbench.encoders.hf:HuBERT"


def test_unknown_encoder_says_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'hubert'\?.*hf:<model id or folder>"):
        build_encoder("hubrt")


def test_unknown_option_names_the_valid_ones() -> None:
    valid = "attn, compile, conv, layer, path, revision"
    with pytest.raises(ConfigError, match=rf"has no option 'lyer' \(did you mean 'layer'\?\); valid options: {valid}"):
        build_encoder("hubert", {"lyer": "3"})  # refused before any weights are looked for
    with pytest.raises(ConfigError, match="takes no options"):
        build_encoder("logmel-stats", {"x": "1"})
    with pytest.raises(ConfigError, match="bad value for option 'dim'"):
        build_encoder("byols-scratch", {"dim": "wide"})


def test_a_runtime_plugin_encoder_builds() -> None:
    class Plugin(Encoder):
        name = "plugin-enc"

        def frames(self, wav, lengths):
            return wav[..., None], lengths

        def info(self) -> EncoderInfo:
            return EncoderInfo(name=self.name, dim=1, frame_dim=1, frame_rate=SR, params=0, pretrained=False)

    ENCODERS.register("plugin-enc", Plugin)
    try:
        assert build_encoder("plugin-enc").info().name == "plugin-enc"
    finally:
        ENCODERS.unregister("plugin-enc")


def test_describe_encoders_lists_all_without_weights() -> None:
    rows = {r.name: r for r in describe_encoders()}
    assert rows["logmel-stats"].dim == 256 and rows["logmel-stats"].params == 0
    assert rows["emotioncnn"].params == EmotionCNN().parameter_count()
    assert rows["hubert"].dim == 768 and rows["hubert"].weights.startswith("missing")
    assert rows["byols"].weights.startswith("missing") and rows["byols-scratch"].frozen_ok is False


# -- shapes, masking, determinism -------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_shapes_and_frame_counts(name: str, tiny_dir: Path, tiny_w2v_dir: Path) -> None:
    enc = make(name, tiny_dir, tiny_w2v_dir).eval()
    info = enc.info()
    wav, lengths = batch()
    with torch.inference_mode():
        frames, flen = enc.frames(wav, lengths)
        pooled = enc.pool(frames, flen)
    assert frames.shape == (3, int(flen.max()), info.frame_dim)
    assert torch.equal(flen, enc.frame_lengths(lengths))
    assert pooled.shape == (3, info.dim)
    # frame counts follow the frame rate to within the receptive field
    expected = lengths.float() / SR * info.frame_rate
    assert torch.all((flen.float() - expected).abs() <= max(2.0, 0.05 * info.frame_rate)), (flen, expected)
    assert torch.isfinite(pooled).all()


@pytest.mark.parametrize("name", ALL)
def test_padding_never_changes_an_utterance(name: str, tiny_dir: Path, tiny_w2v_dir: Path) -> None:
    enc = make(name, tiny_dir, tiny_w2v_dir).eval()
    wav, lengths = batch(seed=1)
    with torch.inference_mode():
        frames, flen = enc.frames(wav, lengths)
        pooled = enc.pool(frames, flen)
        for i, n in enumerate(lengths.tolist()):
            f1, l1 = enc.frames(wav[i : i + 1, :n], lengths[i : i + 1])
            assert int(l1) == int(flen[i])
            torch.testing.assert_close(f1[0], frames[i, : int(l1)], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(enc.pool(f1, l1)[0], pooled[i], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ALL)
def test_deterministic(name: str, tiny_dir: Path, tiny_w2v_dir: Path) -> None:
    a, b = make(name, tiny_dir, tiny_w2v_dir).eval(), make(name, tiny_dir, tiny_w2v_dir).eval()
    wav, lengths = batch(seed=2)
    with torch.inference_mode():
        assert torch.equal(a(wav, lengths), a(wav, lengths))
        assert torch.equal(a(wav, lengths), b(wav, lengths))


def test_masking_survives_deepcopy(tiny_dir: Path) -> None:
    """Fine-tuning deep-copies the encoder per seed: the copy's masking hooks must be its own."""
    import copy

    enc = copy.deepcopy(build_encoder(f"hf:{tiny_dir}")).eval()
    wav, lengths = batch(seed=3)
    with torch.inference_mode():
        frames, flen = enc.frames(wav, lengths)
        f1, _ = enc.frames(wav[2:, : int(lengths[2])], lengths[2:])
    torch.testing.assert_close(f1[0], frames[2, : int(flen[2])], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "samples"), [("logmel-stats", 399), ("byols-scratch", 1_000), ("hf-hubert", 399)])
def test_audio_shorter_than_the_receptive_field_is_one_clear_line(
    name: str, samples: int, tiny_dir: Path, tiny_w2v_dir: Path
) -> None:
    enc = make(name, tiny_dir, tiny_w2v_dir).eval()
    with pytest.raises(DataError, match=r"needs at least \d+ samples .*got an utterance of \d+ samples") as err:
        enc.frames(torch.zeros(2, SR), torch.tensor([SR, samples]))
    assert "\n" not in str(err.value)
    with torch.inference_mode():  # exactly the minimum is fine
        _, flen = enc.frames(torch.randn(1, enc.min_samples), torch.tensor([enc.min_samples]))
    assert int(flen[0]) >= 1


# -- EmotionCNN -------------------------------------------------------------------------------


def test_emotioncnn_parameter_count_is_close_to_the_paper() -> None:
    count = EmotionCNN().parameter_count()
    print(f"EmotionCNN parameter_count() = {count:,} (paper Table 1: {PAPER_PARAMS:,})")
    assert abs(count - PAPER_PARAMS) / PAPER_PARAMS < 0.01  # within 1 % of 35,584
    assert EmotionCNN().info().dim == 128 and EmotionCNN.frozen_ok is False


def test_gammatone_centres_are_erb_spaced_and_filters_peak_there() -> None:
    coch = EmotionCNN().cochleagram
    centres = coch.centre_hz.double().numpy()
    steps = np.diff(erb_rate(centres))
    assert np.allclose(steps, steps[0], rtol=1e-5) and steps[0] > 0  # float32 buffer
    assert centres[0] == pytest.approx(80.0) and centres[-1] == pytest.approx(7800.0)
    for k in (0, 20, 40, 63):
        w, h = scipy.signal.freqz(coch.taps[k].double().numpy(), worN=8192, fs=SR)
        assert w[np.argmax(np.abs(h))] == pytest.approx(centres[k], rel=0.03, abs=3.0)


def test_cochleagram_channel_of_a_tone_is_the_nearest_centre() -> None:
    coch = EmotionCNN().cochleagram
    t = torch.arange(SR) / SR
    env, _ = coch(torch.sin(2 * torch.pi * 1000.0 * t)[None], torch.tensor([SR]))
    loudest = int(env[0, :, 10:-10].mean(-1).argmax())
    assert loudest == int((coch.centre_hz - 1000.0).abs().argmin())


# -- BYOL-S -----------------------------------------------------------------------------------


def test_byols_without_weights_says_where_to_get_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(MissingWeightsError) as err:
        build_encoder("byols")
    msg = str(err.value)
    assert "\n" not in msg and "serab-byols" in msg and CHECKPOINT in msg
    assert "weights=" in msg and WEIGHTS_ENV in msg
    assert "offline" in msg and "xlbench weights fetch byols" in msg  # conftest sets HF_HUB_OFFLINE=1


def test_byols_loads_a_nested_prefixed_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    scratch = BYOLSScratch(dim=1024).eval()
    # the paper's Table 1 size: d = 1024 gives 1.6 M parameters
    assert 1.55e6 < scratch.parameter_count() < 1.7e6
    path = tmp_path / "byols.pth"
    torch.save({"epoch": 100, "state_dict": {f"module.{k}": v for k, v in scratch.net.state_dict().items()}}, path)
    enc = build_encoder("byols", {"weights": str(path)}).eval()
    info = enc.info()
    assert info.dim == 1024 and info.pretrained and info.weights_sha == file_sha256(path)
    wav, lengths = batch()
    with torch.inference_mode():
        torch.testing.assert_close(enc(wav, lengths), scratch(wav, lengths))
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    assert build_encoder("byols").info().weights_sha == info.weights_sha
    assert next(r for r in describe_encoders() if r.name == "byols").weights == f"found: {path}"


def test_byols_refuses_corrupt_and_foreign_checkpoints(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(MissingWeightsError, match="not a readable PyTorch checkpoint"):
        build_encoder("byols", {"weights": str(garbage)})
    good = tmp_path / "good.pth"
    torch.save(BYOLSScratch().net.state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MissingWeightsError, match="corrupt or truncated"):
        build_encoder("byols", {"weights": str(truncated)})
    cvt = tmp_path / "cvt.pth"
    torch.save({"layers.0.0.weight": torch.zeros(3, 3)}, cvt)
    with pytest.raises(ConfigError, match="not a BYOL-S AudioNTT2020 checkpoint"):
        build_encoder("byols", {"weights": str(cvt)})
    with pytest.raises(MissingWeightsError, match="not found"):
        build_encoder("byols", {"weights": str(tmp_path / "nowhere.pth")})


def test_byols_scratch_says_it_is_from_scratch() -> None:
    info = BYOLSScratch().info()
    assert info.pretrained is False and info.frozen_ok is False and info.pretraining is None
    assert "scratch" in (info.revision or "") and info.dim == 2048 and info.frame_rate == 12.5


# -- HuBERT and hf: ---------------------------------------------------------------------------


def test_tiny_hubert_round_trip_matches_transformers(tiny_dir: Path) -> None:
    from transformers import HubertModel

    a = build_encoder(f"hf:{tiny_dir}").eval()
    b = build_encoder("hubert", {"path": str(tiny_dir)}).eval()
    reference = HubertModel.from_pretrained(tiny_dir, local_files_only=True).eval()
    wav, lengths = batch(lengths=(SR,))
    wav = wav[:, :SR]
    with torch.inference_mode():
        fa, _ = a.frames(wav, lengths)
        fb, _ = b.frames(wav, lengths)
        ref = reference(wav).last_hidden_state  # do_normalize is False for the tiny HuBERT
    assert torch.equal(fa, fb)
    torch.testing.assert_close(fa, ref, rtol=1e-5, atol=1e-5)
    info = b.info()
    assert info.name == "hubert" and info.options == {"path": str(tiny_dir)}
    assert info.pretrained is False and info.frame_rate == 50.0 and info.dim == 32
    assert info.weights_sha == file_sha256(tiny_dir / "model.safetensors")
    assert a.min_samples == 400


def test_tiny_wav2vec2_round_trip_normalises_like_its_feature_extractor(tiny_w2v_dir: Path) -> None:
    from transformers import AutoFeatureExtractor, Wav2Vec2Model

    enc = build_encoder(f"hf:{tiny_w2v_dir}").eval()
    assert enc.do_normalize
    reference = Wav2Vec2Model.from_pretrained(tiny_w2v_dir, local_files_only=True).eval()
    fe = AutoFeatureExtractor.from_pretrained(tiny_w2v_dir, local_files_only=True)
    wav, lengths = batch(lengths=(12_345,))
    inputs = fe(wav[0, :12_345].numpy(), sampling_rate=SR, return_tensors="pt")
    with torch.inference_mode():
        frames, _ = enc.frames(3.0 * wav + 0.5, lengths)  # scale and offset vanish in the normalisation
        ref = reference(inputs.input_values).last_hidden_state
    torch.testing.assert_close(frames, ref, rtol=1e-4, atol=1e-4)


def test_layer_options(tiny_dir: Path) -> None:
    from transformers import HubertModel

    reference = HubertModel.from_pretrained(tiny_dir, local_files_only=True).eval()
    wav, lengths = batch(lengths=(8_000,))
    wav = wav[:, :8_000]
    with torch.inference_mode():
        hidden = reference(wav, output_hidden_states=True).hidden_states
        for layer in (0, 1, 2, -1):
            frames, _ = build_encoder(f"hf:{tiny_dir}", {"layer": str(layer)}).eval().frames(wav, lengths)
            torch.testing.assert_close(frames[0], hidden[layer][0], rtol=1e-5, atol=1e-5)
        avg = build_encoder(f"hf:{tiny_dir}", {"layer": "avg"}).eval()
        frames, _ = avg.frames(wav, lengths)
        torch.testing.assert_close(frames[0], torch.stack(hidden).mean(0)[0], rtol=1e-5, atol=1e-5)
    assert avg.layer_average is not None and avg.layer_average.logits.requires_grad
    assert avg.info().options == {"layer": "avg"}
    with pytest.raises(ConfigError, match=r"layer must be 0\.\.2 or avg, got 7"):
        build_encoder(f"hf:{tiny_dir}", {"layer": "7"})
    with pytest.raises(ConfigError, match="expected an integer or 'avg'"):
        build_encoder(f"hf:{tiny_dir}", {"layer": "last"})


def test_model_from_a_hugging_face_cache_records_its_commit(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--facebook--hubert-base-ls960"
    shutil.copytree(tiny_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    enc = build_encoder("hubert")
    assert enc.info().revision == commit and enc.info().name == "hubert"
    assert build_encoder(f"hf:{HUBERT_ID}").info().revision == commit


def test_local_dir_download_records_its_commit(tiny_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "hubert-base-ls960"
    shutil.copytree(tiny_dir, folder)
    meta = folder / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text("a" * 40 + "\nsome-etag\n1700000000.0\n")
    assert build_encoder("hubert", {"path": str(folder)}).info().revision == "a" * 40


def test_missing_hubert_says_what_to_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(MissingWeightsError) as err:
        build_encoder("hubert")
    msg = str(err.value)
    # conftest sets HF_HUB_OFFLINE=1: the error says so and names the command that downloads
    assert "\n" not in msg and "xlbench weights fetch hubert" in msg and "offline (HF_HUB_OFFLINE=1" in msg
    with pytest.raises(MissingWeightsError, match="does not exist"):
        build_encoder("hubert", {"path": str(tmp_path / "nowhere")})
    with pytest.raises(MissingWeightsError, match="does not exist"):
        build_encoder(f"hf:{tmp_path / 'nowhere'}")
    with pytest.raises(MissingWeightsError, match=r"not in the Hugging Face cache .*weights fetch hf:someone/"):
        build_encoder("hf:someone/some-model")
    with hub.local_only(), pytest.raises(MissingWeightsError, match="nothing is downloaded here"):
        build_encoder("hubert")  # what `--encoder auto` relies on: local-only look-ups raise this


def test_broken_model_folders_are_one_clear_line(tiny_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingWeightsError, match=r"no config\.json"):
        build_encoder(f"hf:{empty}")

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(tiny_dir / "config.json", no_weights)
    with pytest.raises(MissingWeightsError, match="has a config but no weights"):
        build_encoder(f"hf:{no_weights}")

    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_dir, corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(MissingWeightsError, match="corrupt or truncated") as err:
        build_encoder(f"hf:{corrupt}")
    assert "\n" not in str(err.value)

    bad_json = tmp_path / "bad-json"
    shutil.copytree(tiny_dir, bad_json)
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read as a transformers config"):
        build_encoder(f"hf:{bad_json}")


def test_wrong_model_types_are_refused(tiny_dir: Path, tiny_w2v_dir: Path, tmp_path: Path) -> None:
    from transformers import BertConfig

    bert = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(bert)
    with pytest.raises(ConfigError, match=r"holds a 'bert' model, not a speech encoder"):
        build_encoder(f"hf:{bert}")
    with pytest.raises(ConfigError, match=r"holds a 'wav2vec2' model, not a HuBERT model"):
        build_encoder("hubert", {"path": str(tiny_w2v_dir)})

    # a config that does not match its weights (another width)
    mismatch = tmp_path / "mismatch"
    shutil.copytree(tiny_dir, mismatch)
    config = json.loads((mismatch / "config.json").read_text())
    config.update(hidden_size=48, intermediate_size=96)
    (mismatch / "config.json").write_text(json.dumps(config))
    with pytest.raises(MissingWeightsError, match="do not fit the hubert architecture"):
        build_encoder(f"hf:{mismatch}")


def test_weights_hash_is_remembered(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = build_encoder(f"hf:{tiny_dir}")
    expected = hashlib.sha256((tiny_dir / "model.safetensors").read_bytes()).hexdigest()
    assert enc.info().weights_sha == expected
    # remembered: a second info() does not hash the weights again
    import xlbench.encoders.hf as hf_module

    def no_second_hash(paths: object) -> str:
        raise AssertionError("the weights were hashed a second time")

    monkeypatch.setattr(hf_module, "files_sha256", no_second_hash)
    assert enc.info().weights_sha == expected


def test_hubert_base_size_constant_matches_transformers() -> None:
    from transformers import HubertConfig, HubertModel

    with torch.device("meta"):
        model = HubertModel(HubertConfig())
    assert sum(p.numel() for p in model.parameters()) == HUBERT_BASE_PARAMS
