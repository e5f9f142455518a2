"""The run id the runner computes for a request (``prepare`` + ``run_identity``), over every
RunRequest field: each one either changes the id or is listed with the reason it may not; the
parts the id hashes are checked field by field against the request. Uses the synthetic corpus."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest

from xlbench.records import compute_run_id, identity_payload
from xlbench.tasks import ALL_LABELS

#: RunRequest fields -> another value that must give another run id, or why it may not change it
REQUEST_CHANGES: dict[str, Any] = {
    "method": {"method": "pseudolabel"},
    "target": {"target": "german"},
    "encoder": {"encoder": "emotioncnn"},
    "encoder_options": {"encoder": "emotioncnn", "encoder_options": (("bands", "32"),)},
    "n_labeled": {"n_labeled": 10},
    "seeds": "each seed is its own run (test_every_seed_is_its_own_run)",
    "emotions": {"emotions": "4"},
    "selection": {"selection": "strict"},
    "overrides": {"overrides": (("epochs", 3),)},
    "finetune": {"finetune": True},
    "data": "synthetic only on a test machine; DataIdentity.synthetic, corpora: test_identity_fields.py",
    "source_corpora": "the one synthetic English corpus has no subset; DataIdentity.corpora: test_identity_fields.py",
    "device": "where it ran, not what ran",
    "overwrite": "how to treat an existing record",
    "results": "where records go",
    "show_progress": "display only",
    "audit": "recorded in the record's audit stamp, not in what the run computes",
    "isolation": "recorded in the record; the same computation in or out of the worker",
}


def test_every_request_field_is_classified() -> None:
    from xlbench.runner import RunRequest

    assert set(REQUEST_CHANGES) == {f.name for f in dataclasses.fields(RunRequest)}


@pytest.fixture(scope="module")
def base_request_id(synthetic_home_session: Path) -> str:
    return request_id({})


def request_id(changes: dict[str, Any], seed: int = 0) -> str:
    from xlbench.runner import RunRequest, prepare, run_identity

    base: dict[str, Any] = dict(method="crosslingual", target="italian", encoder="logmel-stats", seeds=(seed,),
                                show_progress=False, device="cpu")
    req = RunRequest(**{**base, **changes})
    return run_identity(req, prepare(req), seed)[0]


IDENTITY_REQUEST = [k for k, v in REQUEST_CHANGES.items() if isinstance(v, dict)]


@pytest.mark.parametrize("field", IDENTITY_REQUEST)
def test_run_id_of_a_request_follows_each_field(field: str, base_request_id: str, synthetic_home) -> None:
    changes = dict(REQUEST_CHANGES[field])
    if field == "n_labeled":
        changes["method"] = "pseudolabel"  # crosslingual uses no labelled target utterance
        assert request_id(changes) != request_id({"method": "pseudolabel"})
        return
    if field == "encoder_options":  # the same encoder with another option value
        assert request_id(changes) != request_id({"encoder": "emotioncnn"})
        return
    assert request_id(changes) != base_request_id


def test_every_seed_is_its_own_run(base_request_id: str, synthetic_home) -> None:
    assert request_id({}, seed=1) != base_request_id
    assert request_id({}) == base_request_id  # and the same request gives the same id


@pytest.mark.parametrize("field", ["device", "overwrite", "show_progress", "audit", "isolation"])
def test_run_id_of_a_request_ignores_how_it_is_run(field: str, base_request_id: str, synthetic_home) -> None:
    other = {"device": "auto", "overwrite": True, "show_progress": True, "audit": False, "isolation": "in-process"}
    assert request_id({field: other[field]}) == base_request_id


def test_runner_identity_parts_are_the_prepared_run(synthetic_home) -> None:
    """The parts run_identity hashes, field by field, against what was asked (independently)."""
    from xlbench.runner import RunRequest, prepare, run_identity

    req = RunRequest(method="pseudolabel", target="german", encoder="emotioncnn", encoder_options=(("bands", "32"),),
                     n_labeled=10, seeds=(4,), emotions="4", selection="strict", overrides=(("tau", 0.7),),
                     show_progress=False, device="cpu")
    p = prepare(req)
    rid, parts = run_identity(req, p, 4)
    assert rid == compute_run_id(identity_payload(**parts))
    task = parts["task"]
    assert (task.source, task.target, task.n_labeled, task.seed, task.selection, task.mode) == (
        "english", "german", 10, 4, "strict", "finetune")  # emotioncnn is trained end to end
    assert task.emotions == ["anger", "happiness", "neutral", "sadness"]
    method = parts["method"]
    assert (method.name, method.config["tau"]) == ("pseudolabel", 0.7)
    assert method.version == p.method_cls.version and method.distribution == "xlbench"
    assert parts["encoder"].options == {"bands": 32}
    for side, lang in (("source_data", "english"), ("target_data", "german")):
        d = parts[side]
        data = p.source if side == "source_data" else p.target
        assert (d.language, d.synthetic, d.corpora) == (lang, True, list(data.corpora))
        assert d.split_hashes == dict(data.split_hashes) and len(d.manifest_sha) == 20
        rows = sorted((u.id, u.sha, u.emotion.value, u.speaker) for part in data.parts.values() for u in part)
        expected = hashlib.sha256("".join(f"{a}\t{b}\t{c}\t{s}\n" for a, b, c, s in rows).encode()).hexdigest()
        assert d.manifest_sha == expected[:20]
    assert (parts["protocol_version"], parts["splits_version"]) == ("1", "1")
    upper = dataclasses.replace(req, n_labeled=ALL_LABELS, method="multilingual", overrides=())
    assert run_identity(upper, prepare(upper), 4)[1]["task"].n_labeled == "all"
