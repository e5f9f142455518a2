"""What makes two runs (and two cached frame sets) the same, tested from the models' own field lists.

Every field of the run identity (RunRecord's method, encoder, task and data parts, nested dicts
included) must change the run id, except the few listed as descriptive; every field of the
cache identity must change the feature-cache key, except the ones listed as not deciding frames.
The cases are generated from ``model_fields``, so a new field is covered the day it is added
(and a test fails until someone decides which list it belongs to).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import torch
from pydantic import BaseModel

from tests.encoder_utils import FixedInfo
from xlbench import features
from xlbench.encoders import ENCODERS, build_encoder
from xlbench.encoders.base import PATH_OPTIONS, Encoder, EncoderInfo
from xlbench.encoders.tiny import tiny_hubert
from xlbench.records import (
    DataIdentity,
    MethodIdentity,
    TaskIdentity,
    compute_run_id,
    identity_payload,
)

# -- a run's identity ---------------------------------------------------------------------------

#: parts of the identity -> their model; the run id covers every field of each, except DESCRIPTIVE
PARTS: dict[str, type[BaseModel]] = {
    "method": MethodIdentity,
    "encoder": EncoderInfo,
    "task": TaskIdentity,
    "source_data": DataIdentity,
    "target_data": DataIdentity,
}
#: fields that describe a run without defining it (a re-packaged method or a re-measured parameter
#: count is still the same run)
DESCRIPTIVE = {
    ("method", "distribution"),
    ("method", "distribution_version"),
    ("method", "citation"),
    ("encoder", "params"),
}


def base_parts() -> dict[str, Any]:
    return dict(
        protocol_version="1",
        splits_version="1",
        method=MethodIdentity(name="pseudolabel", version="2", distribution="xlbench-methods",
                              distribution_version="0.1.0", citation="Agarla 2024",
                              config={"epochs": 100, "tau": 0.9, "mode": "hard"}),
        encoder=EncoderInfo(name="hubert", revision="main", weights_sha="a" * 64, dim=768, frame_dim=768,
                            frame_rate=50.0, params=94_000_000, pretraining="LibriSpeech 960 h", pretrained=True,
                            contamination=["ravdess"], options={"layer": 9, "bands": 64}, pooling="mean",
                            frozen_ok=True, code_version="1"),
        task=TaskIdentity(source="english", target="italian", n_labeled=100, seed=0,
                          emotions=["anger", "happiness", "neutral", "sadness"], selection="paper", mode="frozen"),
        source_data=DataIdentity(language="english", corpora=["ravdess", "savee"], synthetic=False,
                                 manifest_sha="1" * 20, split_hashes={"ravdess": "2" * 64, "savee": "3" * 64}),
        target_data=DataIdentity(language="italian", corpora=["emovo"], synthetic=False, manifest_sha="4" * 20,
                                 split_hashes={"emovo": "5" * 64}),
    )


def literals(annotation: Any) -> list[Any]:
    """The values a Literal (possibly inside a union) allows."""
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [v for a in typing.get_args(annotation) for v in literals(a)]
    return []


def changed(value: Any, annotation: Any) -> Any:
    """Another valid value of a field: the next Literal, +1, not, a suffix, one more item."""
    allowed = literals(annotation)
    if allowed and value in allowed and not isinstance(value, bool | int | float):
        return next(v for v in allowed if v != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "-changed"
    if value is None:
        return "changed"
    if isinstance(value, list):
        return [*value, "changed"] if not value or isinstance(value[0], str) else [*value, value[0]]
    if isinstance(value, dict):
        return {**value, "changed": "1"}
    raise TypeError(f"no other value for {value!r}")


def run_id(parts: dict[str, Any]) -> str:
    return compute_run_id(identity_payload(**parts))


def with_field(parts: dict[str, Any], part: str, name: str, value: Any) -> dict[str, Any]:
    model = PARTS[part]
    new = model.model_validate({**parts[part].model_dump(), name: value})  # still a valid model
    return {**parts, part: new}


FIELD_CASES = [(part, name) for part, model in PARTS.items() for name in model.model_fields]


def test_descriptive_fields_exist() -> None:
    assert set(FIELD_CASES) >= DESCRIPTIVE


@pytest.mark.parametrize(("part", "name"), FIELD_CASES, ids=[f"{p}.{n}" for p, n in FIELD_CASES])
def test_run_id_follows_every_identity_field(part: str, name: str) -> None:
    parts = base_parts()
    old = getattr(parts[part], name)
    new = changed(old, PARTS[part].model_fields[name].annotation)
    other = with_field(parts, part, name, new)
    assert getattr(other[part], name) != old
    if (part, name) in DESCRIPTIVE:
        assert run_id(other) == run_id(parts)
    else:
        assert run_id(other) != run_id(parts)


@pytest.mark.parametrize("name", ["protocol_version", "splits_version"])
def test_run_id_follows_the_versions(name: str) -> None:
    parts = base_parts()
    assert run_id({**parts, name: "2"}) != run_id(parts)


NESTED_CASES = [
    (part, name, key)
    for part, model in PARTS.items()
    for name in model.model_fields
    if (part, name) not in DESCRIPTIVE and isinstance(getattr(base_parts()[part], name), dict)
    for key in getattr(base_parts()[part], name)
]


def test_nested_cases_cover_config_options_and_split_hashes() -> None:
    named = {(p, n) for p, n, _ in NESTED_CASES}
    assert {("method", "config"), ("encoder", "options"), ("source_data", "split_hashes"),
            ("target_data", "split_hashes")} <= named


@pytest.mark.parametrize(("part", "name", "key"), NESTED_CASES, ids=[f"{p}.{n}.{k}" for p, n, k in NESTED_CASES])
def test_run_id_follows_every_nested_entry(part: str, name: str, key: str) -> None:
    parts = base_parts()
    d = getattr(parts[part], name)
    value = d[key]
    bumped = with_field(parts, part, name, {**d, key: changed(value, Any)})
    dropped = with_field(parts, part, name, {k: v for k, v in d.items() if k != key})
    assert len({run_id(parts), run_id(bumped), run_id(dropped)}) == 3


def test_run_id_ignores_dict_order_and_is_20_hex() -> None:
    parts = base_parts()
    enc = parts["encoder"]
    reordered = {**parts, "encoder": enc.model_copy(update={"options": dict(reversed(enc.options.items()))})}
    rid = run_id(parts)
    assert run_id(reordered) == rid and len(rid) == 20 and int(rid, 16) >= 0


# -- encoder options, as the encoders report them --------------------------------------------

#: every option of every registered encoder: two values that must give two identities, or why not
OPTION_VALUES: dict[tuple[str, str], tuple[str, str] | str] = {
    ("byols", "weights"): "a path: the weights' hash stands for it",
    ("byols-scratch", "dim"): ("32", "48"),
    ("emotioncnn", "bands"): ("32", "48"),
    ("hubert", "path"): "a path: the weights' hash stands for it",
    ("hubert", "layer"): ("1", "2"),
    ("hubert", "revision"): "needs the Hub; recorded as EncoderInfo.revision (covered above)",
    ("hubert", "conv"): "speed only: the same frames within rounding (xlbench/encoders/hf.py)",
    ("hubert", "attn"): "speed only: the same frames within rounding (xlbench/encoders/hf.py)",
    ("hubert", "compile"): "speed only: the same frames within rounding (xlbench/encoders/hf.py)",
}


def registered_options() -> set[tuple[str, str]]:
    return {(name, opt) for name in ENCODERS.names() for opt in ENCODERS.get(name).OPTIONS}


def test_every_encoder_option_is_classified() -> None:
    assert set(OPTION_VALUES) == registered_options()
    assert all(isinstance(v, tuple) or k[1] not in PATH_OPTIONS or "path" in v for k, v in OPTION_VALUES.items())


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hubert(tmp_path_factory.mktemp("tiny") / "hubert")


def build(name: str, options: dict[str, str], tiny_dir: Path) -> Encoder:
    torch.manual_seed(0)
    if name == "hubert":
        options = {**options, "path": str(tiny_dir)}
    return build_encoder(name, options)


IDENTITY_OPTIONS = [k for k, v in OPTION_VALUES.items() if isinstance(v, tuple)]


@pytest.mark.parametrize(("encoder", "option"), IDENTITY_OPTIONS, ids=[f"{e}.{o}" for e, o in IDENTITY_OPTIONS])
def test_an_encoder_option_changes_run_id_and_cache_key(encoder: str, option: str, tiny_dir: Path) -> None:
    a, b = OPTION_VALUES[(encoder, option)]
    enc_a, enc_b = build(encoder, {option: a}, tiny_dir), build(encoder, {option: b}, tiny_dir)
    parts = base_parts()
    assert run_id({**parts, "encoder": enc_a.info()}) != run_id({**parts, "encoder": enc_b.info()})
    assert features.encoder_key(enc_a) != features.encoder_key(enc_b)
    again = build(encoder, {option: a}, tiny_dir)
    assert run_id({**parts, "encoder": again.info()}) == run_id({**parts, "encoder": enc_a.info()})
    assert features.encoder_key(again) == features.encoder_key(enc_a)


# -- the feature-cache key --------------------------------------------------------------------

#: EncoderInfo fields that do not decide the frames (pooling happens after the cache; params
#: and dim describe the model; the weights' hash stands for the revision once it is known)
NOT_FRAMES = {"dim", "params", "pretraining", "pretrained", "contamination", "pooling", "frozen_ok", "revision"}


def test_not_frames_fields_exist() -> None:
    assert set(EncoderInfo.model_fields) > NOT_FRAMES


@pytest.mark.parametrize("name", list(EncoderInfo.model_fields))
def test_cache_key_follows_every_frame_deciding_field(name: str) -> None:
    info = base_parts()["encoder"]
    other = EncoderInfo.model_validate(
        {**info.model_dump(), name: changed(getattr(info, name), EncoderInfo.model_fields[name].annotation)}
    )
    same = features.encoder_key(FixedInfo(info)) == features.encoder_key(FixedInfo(other))
    assert same == (name in NOT_FRAMES)


@pytest.mark.parametrize("key", list(base_parts()["encoder"].options))
def test_cache_key_follows_every_option(key: str) -> None:
    info = base_parts()["encoder"]
    bumped = info.model_copy(update={"options": {**info.options, key: 99}})
    dropped = info.model_copy(update={"options": {k: v for k, v in info.options.items() if k != key}})
    keys = {features.encoder_key(FixedInfo(i)) for i in (info, bumped, dropped)}
    assert len(keys) == 3


def test_cache_key_ignores_path_options() -> None:
    info = base_parts()["encoder"]
    for opt in sorted(PATH_OPTIONS):
        moved = info.model_copy(update={"options": {**info.options, opt: "/elsewhere"}})
        assert features.encoder_key(FixedInfo(moved)) == features.encoder_key(FixedInfo(info))


def test_without_a_weights_hash_the_revision_and_state_key_the_cache() -> None:
    info = base_parts()["encoder"].model_copy(update={"weights_sha": None, "params": 0})
    rev = info.model_copy(update={"revision": "v2"})
    assert features.encoder_key(FixedInfo(rev)) != features.encoder_key(FixedInfo(info))
    # a random-init model (parameters, no weights file) is keyed by its state: new weights, new key
    torch.manual_seed(0)
    a = FixedInfo(info.model_copy(update={"params": 4}))
    a.lin = torch.nn.Linear(1, 2, bias=True)
    b = FixedInfo(info.model_copy(update={"params": 4}))
    b.lin = torch.nn.Linear(1, 2, bias=True)
    c = FixedInfo(info.model_copy(update={"params": 4}))
    c.lin = torch.nn.Linear(1, 2, bias=True)
    c.lin.load_state_dict(a.lin.state_dict())
    assert features.encoder_key(a) != features.encoder_key(b)
    assert features.encoder_key(a) == features.encoder_key(c)
    assert features.encoder_key(a) != features.encoder_key(FixedInfo(info))


def test_cache_key_follows_class_preprocessing_format_and_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    info = base_parts()["encoder"]
    key = features.encoder_key(FixedInfo(info))

    class Renamed(FixedInfo):
        pass

    assert features.encoder_key(Renamed(info)) != key
    wide = FixedInfo(info)
    wide.cache_dtype = "float32"  # type: ignore[misc]
    assert features.encoder_key(wide) != key
    for name in ("PREPROCESSING_VERSION", "CACHE_FORMAT"):
        with monkeypatch.context() as m:
            m.setattr(features, name, "changed")
            assert features.encoder_key(FixedInfo(info)) != key
    assert features.encoder_key(FixedInfo(info)) == key


def test_transformers_cache_key_follows_code_version_layer_and_weights(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = build("hubert", {}, tiny_dir)
    key = features.encoder_key(enc)
    assert features.encoder_key(build("hubert", {}, tiny_dir)) == key
    assert features.encoder_key(build("hubert", {"layer": "1"}, tiny_dir)) != key
    assert features.encoder_key(build("hubert", {}, tiny_hubert(tmp_path / "other", seed=1))) != key
    rid = run_id({**base_parts(), "encoder": enc.info()})
    with monkeypatch.context() as m:
        m.setattr(type(enc), "version", str(enc.version) + "-next")
        assert features.encoder_key(enc) != key
        assert run_id({**base_parts(), "encoder": enc.info()}) != rid


def test_the_run_id_of_a_fixed_identity_is_pinned() -> None:
    """Every record on disk and on the board is named by this hash: any change to the canonical
    form (key names, separators, how non-JSON values are written) renames every run and makes
    every existing record look tampered. A deliberate change updates these values and says so."""
    assert run_id(base_parts()) == "c566249f26342db00cc9"
    assert compute_run_id({"a": Path("/x"), "b": [1, 2]}) == "bedfeefdcb2556c57ba7"  # non-JSON: str()
