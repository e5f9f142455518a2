"""The feature-cache key, exactly: what ``Encoder.cache_identity`` and ``features.encoder_identity``
hold, how ``encoder_key`` names the folder, and what ``state_dict_sha`` hashes.

tests/test_identity_fields.py checks that every field of the cache identity changes the key;
this file pins the identity itself and the key's form, since an accidental change to either
(a renamed entry, a dtype written for float16 encoders, another hash length) silently orphans
every frame cached on disk. Fast: no model is loaded (tools/mutation.sh runs it per mutant).
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.encoder_utils import FixedIdentity, FixedInfo
from xlbench import features
from xlbench.encoders.base import EncoderInfo, state_dict_sha
from xlbench.errors import ConfigError

INFO = EncoderInfo(name="fixed", revision="main", weights_sha="a" * 64, dim=16, frame_dim=8, frame_rate=50.0,
                   params=10, pretraining="something", pretrained=True, contamination=["ravdess"],
                   options={"path": "/models/x", "layer": 9, "bands": 64}, pooling="mean+std", frozen_ok=True,
                   code_version="3")


CLASS = "tests.encoder_utils.FixedInfo"


def digest_of(identity: dict[str, Any]) -> str:
    """The key's hash worked out by hand: blake2b-80 of the identity as sorted JSON."""
    return hashlib.blake2b(json.dumps(identity, sort_keys=True).encode(), digest_size=10).hexdigest()


# -- the identity, entry by entry ---------------------------------------------------------------


def test_cache_identity_holds_exactly_the_frame_deciding_fields() -> None:
    assert FixedInfo(INFO).cache_identity() == {
        "name": "fixed",
        "class": CLASS,
        "code_version": "3",
        "revision": None,  # the weights' hash says more than a revision name
        "weights_sha": "a" * 64,
        "frame_dim": 8,
        "frame_rate": 50.0,
        "options": {"bands": 64, "layer": 9},  # the path is left out: the weights' hash stands for it
    }


def test_a_parameter_free_encoder_is_keyed_by_its_revision_and_no_weights() -> None:
    info = INFO.model_copy(update={"weights_sha": None, "params": 0, "revision": "opensmile 2.5"})
    ident = FixedInfo(info).cache_identity()
    assert (ident["revision"], ident["weights_sha"]) == ("opensmile 2.5", None)


@pytest.mark.parametrize("params", [1, 2])
def test_a_random_init_encoder_is_keyed_by_its_state(params: int) -> None:
    """One parameter is enough to be keyed by the state (params > 0, not > 1)."""
    enc = FixedInfo(INFO.model_copy(update={"weights_sha": None, "params": params}))
    enc.w = nn.Parameter(torch.tensor([1.5]))
    ident = enc.cache_identity()
    assert ident["weights_sha"] == "state:" + state_dict_sha(enc) and len(ident["weights_sha"]) == 6 + 32


def test_encoder_identity_of_a_float16_encoder_has_no_dtype_entry() -> None:
    """float16 keys stay what they were before dtypes were recorded (caches on disk still hit)."""
    assert features.encoder_identity(FixedInfo(INFO)) == {
        "encoder": FixedInfo(INFO).cache_identity(),
        "preprocessing": "1",
        "format": 1,
    }


def test_encoder_identity_of_a_float32_encoder_records_the_dtype() -> None:
    wide = FixedInfo(INFO)
    wide.cache_dtype = "float32"  # type: ignore[misc]
    assert features.encoder_identity(wide) == {
        "encoder": wide.cache_identity(),
        "preprocessing": "1",
        "format": 1,
        "dtype": "float32",
    }


@pytest.mark.parametrize("dtype", ["bfloat16", "float64", "None"])
def test_an_unknown_cache_dtype_is_one_clear_error(dtype: str) -> None:
    enc = FixedInfo(INFO)
    enc.cache_dtype = dtype  # type: ignore[misc]
    with pytest.raises(ConfigError) as err:
        features.cache_dtype(enc)
    assert str(err.value) == f"encoder 'fixed': cache_dtype must be float16 or float32, not '{dtype}'"


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_the_two_cache_dtypes(dtype: str) -> None:
    enc = FixedInfo(INFO)
    enc.cache_dtype = dtype  # type: ignore[misc]
    assert features.cache_dtype(enc) == dtype


# -- the key: slug and hash ---------------------------------------------------------------------


def test_the_key_of_a_fixed_identity_is_pinned() -> None:
    """Every cached frame on disk lives under this name: a change renames every cache folder."""
    identity = {
        "encoder": {"name": "fixed", "class": CLASS, "code_version": "3", "revision": None,
                    "weights_sha": "a" * 64, "frame_dim": 8, "frame_rate": 50.0,
                    "options": {"bands": 64, "layer": 9}},
        "preprocessing": "1",
        "format": 1,
    }
    key = features.encoder_key(FixedInfo(INFO))
    assert key == f"fixed-{digest_of(identity)}"
    assert key == "fixed-9467ae0ea30ce3c1dc17"


def test_the_key_is_of_the_identitys_content_not_its_order() -> None:
    a = {"name": "x", "model": {"layer": 9, "bands": 64}, "weights_sha": "b" * 64}
    b = {"weights_sha": "b" * 64, "model": {"bands": 64, "layer": 9}, "name": "x"}
    assert features.encoder_key(FixedIdentity(a, INFO)) == features.encoder_key(FixedIdentity(b, INFO))
    wrapped = {"encoder": a, "preprocessing": "1", "format": 1}
    assert features.encoder_key(FixedIdentity(b, INFO)) == f"fixed-{digest_of(wrapped)}"


def test_identity_values_json_cannot_hold_are_written_as_text() -> None:
    as_path = features.encoder_key(FixedIdentity({"vocab": Path("/x/vocab.txt")}, INFO))
    assert as_path == features.encoder_key(FixedIdentity({"vocab": "/x/vocab.txt"}, INFO))


@pytest.mark.parametrize(
    ("model_type", "name", "slug"),
    [
        ("hubert", "hf:facebook/hubert-base-ls960", "hubert"),  # a transformers model: named by its type
        (None, "hf:microsoft/wavlm-base-plus", "hf-microsoft-wavlm-base-plus"),
        (None, "EmotionCNN v2", "EmotionCNN-v2"),  # both cases kept
        (None, "--X-ray//", "X-ray"),  # separators at either end dropped, letters kept
        (None, "a" * 50, "a" * 40),  # at most 40 characters
        (None, "::", "encoder"),  # nothing readable left
    ],
)
def test_the_keys_readable_part(model_type: str | None, name: str, slug: str) -> None:
    identity: dict[str, Any] = {"family": "f"} if model_type is None else {"model_type": model_type}
    enc = FixedIdentity(identity, INFO.model_copy(update={"name": name}))
    key = features.encoder_key(enc)
    wrapped = {"encoder": identity, "preprocessing": "1", "format": 1}
    assert key == f"{slug}-{digest_of(wrapped)}" and len(key) == len(slug) + 21


# -- the hash of a module's state ---------------------------------------------------------------


class Holder(nn.Module):
    def __init__(self, **tensors: torch.Tensor) -> None:
        super().__init__()
        for name, t in tensors.items():
            self.register_buffer(name, t)


def test_state_hash_of_tiny_states_worked_out_by_hand() -> None:
    empty = hashlib.blake2b(b"e" + b"torch.float32" + b"(0,)", digest_size=16).hexdigest()
    assert state_dict_sha(Holder(e=torch.zeros(0))) == empty
    scalar = hashlib.blake2b(b"s" + b"torch.float32" + b"()" + struct.pack("<f", 1.5), digest_size=16).hexdigest()
    assert state_dict_sha(Holder(s=torch.tensor(1.5))) == scalar
    assert len(state_dict_sha(nn.Linear(2, 3))) == 32


def test_state_hash_follows_names_dtypes_shapes_and_values() -> None:
    base = state_dict_sha(Holder(w=torch.arange(6, dtype=torch.float32).reshape(2, 3)))
    variants = {
        "renamed": Holder(v=torch.arange(6, dtype=torch.float32).reshape(2, 3)),
        "reshaped": Holder(w=torch.arange(6, dtype=torch.float32).reshape(3, 2)),  # the same bytes
        "retyped": Holder(w=torch.arange(6, dtype=torch.float32).reshape(2, 3).view(torch.int32)),  # same bytes
        "changed": Holder(w=torch.arange(1, 7, dtype=torch.float32).reshape(2, 3)),
    }
    hashes = {name: state_dict_sha(m) for name, m in variants.items()}
    assert base not in hashes.values() and len(set(hashes.values())) == len(hashes)
    assert state_dict_sha(Holder(w=torch.arange(6, dtype=torch.float32).reshape(2, 3))) == base


def test_state_hash_ignores_the_order_entries_were_registered_in() -> None:
    a, b = torch.ones(2), torch.zeros(3)
    assert state_dict_sha(Holder(a=a, b=b)) == state_dict_sha(Holder(b=b, a=a))


@pytest.mark.gpu
def test_state_hash_of_a_cuda_module_is_its_cpu_hash() -> None:
    m = nn.Linear(3, 2)
    assert state_dict_sha(m.to("cuda")) == state_dict_sha(m.to("cpu"))
