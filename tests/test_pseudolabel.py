"""The paper's method (`pseudolabel`): config, Algorithm 1's schedule, rebalancing after each
round, replace versus accumulate, soft mode, and end to end with U_t as keys only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from xlbench_methods.pseudolabel import PseudoLabel, PseudoLabelConfig

from tests.method_utils import hide_validation_labels
from xlbench.contract import check
from xlbench.errors import ConfigError
from xlbench.inputs import Backbone, FrozenInputs
from xlbench.method import METHODS, get_method, make_config, parse_overrides
from xlbench.protocol import EMOTIONS_5
from xlbench.runner import pseudo_label_stats
from xlbench.tasks import EvalSet, LabeledSet, TaskTruth, TransferTask, UnlabeledSet
from xlbench.training import FitContext, seed_everything

C = len(EMOTIONS_5)
DIM = 6


def tiny_task(n_source: int = 60, n_labeled: int = 10, n_unlabeled: int = 40, seed: int = 0):
    """A made-up task on Gaussian 'frames' (class means apart, the target shifted a little).

    Returns the task the method sees, the input store (keys -> frames, nothing else) and U_t's
    labels, which stay here in the test and are handed to nobody.
    """
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2.0, size=(C, DIM))
    frames: dict[str, np.ndarray] = {}

    def make(prefix: str, n: int, shift: float) -> tuple[tuple[str, ...], np.ndarray]:
        labels = np.arange(n) % C
        keys = tuple(f"{prefix}{i:03d}" for i in range(n))
        for k, y in zip(keys, labels, strict=True):
            frames[k] = (means[y] + shift + rng.normal(0, 1.0, size=(30, DIM))).astype(np.float32)
        return keys, labels.astype(np.int64)

    s_keys, s_y = make("s", n_source, 0.0)
    l_keys, l_y = make("l", n_labeled, 0.7)
    u_keys, u_y = make("u", n_unlabeled, 0.7)
    sv_keys, sv_y = make("sv", 20, 0.0)
    tv_keys, tv_y = make("tv", 20, 0.7)
    task = TransferTask(
        source="english", target="italian", classes=EMOTIONS_5, n_labeled=n_labeled, seed=seed, selection="paper",
        source_train=LabeledSet("source_train", "english", s_keys, s_y),
        target_labeled=LabeledSet("target_labeled", "italian", l_keys, l_y),
        target_unlabeled=UnlabeledSet("target_unlabeled", "italian", u_keys),
        validation=(LabeledSet("source_val", "english", sv_keys, sv_y),
                    LabeledSet("target_val", "italian", tv_keys, tv_y)),
    )
    inputs = FrozenInputs(frames, frame_rate=10.0, crop_seconds=2.0, pooling="mean")
    return task, inputs, dict(zip(u_keys, u_y.tolist(), strict=True))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fit(task, inputs, seed: int = 0, **overrides):
    cfg = PseudoLabelConfig(**{"epochs": 6, "every": 2, "batch_size": 16, **overrides})
    seed_everything(seed)
    method = PseudoLabel(cfg)
    view, scorer = hide_validation_labels(task)
    ctx = FitContext(inputs=inputs, device=torch.device("cpu"), seed=seed, n_classes=C,
                     make_backbone=lambda: Backbone(None, DIM, C, "mean"), score_validation=scorer,
                     show_progress=False)
    return method, method.fit(view, ctx)


# -- config -----------------------------------------------------------------------------------

def test_defaults_are_the_papers() -> None:
    assert get_method("pseudolabel") is PseudoLabel and METHODS.registration("pseudolabel").distribution == "xlbench"
    cfg = PseudoLabelConfig()
    assert (cfg.epochs, cfg.every, cfg.batch_size, cfg.tau) == (100, 30, 100, 0.5)  # Sec. 4.2.1
    assert (cfg.lr, cfg.lr_decay, cfg.lr_step, cfg.beta1, cfg.beta2) == (1e-3, 0.95, 10, 0.9, 0.999)
    assert (cfg.lambda_a, cfg.lambda_h) == (0.8, 0.4)
    assert cfg.mode == "hard" and not cfg.accumulate and cfg.rebalance and cfg.mixup and cfg.soft_scope == "always"
    for name, field in PseudoLabelConfig.model_fields.items():
        if name in ("mode", "tau", "every", "accumulate", "rebalance", "lambda_a", "lambda_h", "mixup", "soft_scope"):
            assert field.description, name


def test_set_overrides_validate() -> None:
    cfg = make_config(PseudoLabel, parse_overrides(["mode=soft", "tau=0.85", "every=10", "accumulate=true",
                                                   "rebalance=false", "lambda_a=0", "soft_scope=pseudo"]))
    assert (cfg.mode, cfg.tau, cfg.every, cfg.accumulate, cfg.rebalance, cfg.lambda_a, cfg.soft_scope) == (
        "soft", 0.85, 10, True, False, 0.0, "pseudo")
    for bad in (["mode=medium"], ["tau=1.5"], ["every=0"], ["lambda_h=-1"], ["threshold=0.5"]):
        with pytest.raises(ConfigError):
            make_config(PseudoLabel, parse_overrides(bad))
    assert PseudoLabel.smoke_config() == {"epochs": 4, "every": 2, "batch_size": 32}


# -- Algorithm 1 on a tiny task ---------------------------------------------------------------

def test_rounds_follow_algorithm_1_and_rebalance_to_n_s() -> None:
    task, inputs, _ = tiny_task()
    _, report = fit(task, inputs, epochs=7, every=3)
    assert [r.epoch for r in report.pseudo_labels] == [3, 6]  # mod(e, W) = 0
    rows = {int(r["epoch"]): r for r in report.history}
    assert len(rows) == 7 and report.extras["rounds"] == [3, 6]
    # N_k > 0: K_t is oversampled to N_s = 60 from the start, and K_t ∪ K'_t again after each round
    for e, r in rows.items():
        assert r["target_pool_size"] == 60 and r["pool_size"] == 120, e
    assert rows[1]["n_pseudo"] == 0 and rows[4]["n_pseudo"] == len(report.pseudo_labels[0].keys)
    assert rows[3]["round_selected"] == len(report.pseudo_labels[0].keys)
    for rnd in report.pseudo_labels:
        assert set(rnd.keys) <= set(task.target_unlabeled.keys)
        assert len(rnd.labels) == len(rnd.confidence) == len(rnd.keys)
        assert (rnd.confidence >= 0.5).all()  # Eq. 2 with τ = 0.5


def test_without_rebalancing_the_pool_is_d_s_k_t_k_prime() -> None:
    task, inputs, _ = tiny_task()
    _, report = fit(task, inputs, rebalance=False)
    for r in report.history:
        assert r["target_pool_size"] == 10 + r["n_pseudo"]
        assert r["pool_size"] == 60 + 10 + r["n_pseudo"]


def test_no_labels_no_rebalancing_until_the_first_round_and_never_dropping() -> None:
    task, inputs, _ = tiny_task(n_labeled=0)
    _, report = fit(task, inputs, mode="soft")
    rows = {int(r["epoch"]): r for r in report.history}
    assert rows[1]["target_pool_size"] == 0 and rows[2]["target_pool_size"] == 0  # N_k = 0: D = D_s
    assert rows[3]["n_pseudo"] == 40 and rows[3]["target_pool_size"] == 60  # 40 soft labels -> N_s
    # a target pool larger than N_s is used as it is (γ > 1), nothing dropped
    task, inputs, _ = tiny_task(n_source=20, n_labeled=10, n_unlabeled=40)
    _, report = fit(task, inputs, mode="soft")
    rows = {int(r["epoch"]): r for r in report.history}
    assert rows[1]["target_pool_size"] == 20  # 10 labelled -> N_s = 20
    assert rows[3]["target_pool_size"] == 50 and rows[3]["pool_size"] == 70  # 10 + 40 > 20: as is


def test_replace_versus_accumulate_in_the_method() -> None:
    task, inputs, _ = tiny_task()
    _, rep = fit(task, inputs, tau=0.0, rebalance=False)  # τ = 0: every U_t utterance every round
    assert all(r["n_pseudo"] in (0, 40) for r in rep.history)
    _, rep = fit(task, inputs, tau=0.9, epochs=8, rebalance=False)
    last = {int(r["epoch"]): r for r in rep.history}
    assert last[7]["n_pseudo"] == len(rep.pseudo_labels[2].keys)  # replace: only the latest round
    _, acc = fit(task, inputs, tau=0.9, epochs=8, rebalance=False, accumulate=True)
    rows = {int(r["epoch"]): r for r in acc.history}
    union = set().union(*(r.keys for r in acc.pseudo_labels[:3]))
    assert rows[7]["n_pseudo"] == len(union)  # accumulate: each key once, latest label


def test_soft_mode_uses_mixup_and_regularisers_by_scope() -> None:
    task, inputs, _ = tiny_task()
    _, rep = fit(task, inputs, mode="soft")
    assert all({"ce", "r_a", "r_h"} <= set(r) for r in rep.history)  # always: from epoch 1
    assert [len(r.keys) for r in rep.pseudo_labels] == [40, 40, 40]  # soft: all of U_t
    _, rep = fit(task, inputs, mode="soft", soft_scope="pseudo")
    rows = {int(r["epoch"]): r for r in rep.history}
    assert "r_a" not in rows[1] and "r_a" not in rows[2] and "r_a" in rows[3]
    _, hard = fit(task, inputs)
    assert all("r_a" not in r for r in hard.history)  # hard mode: plain CE


def test_deterministic_and_u_t_labels_never_handed_over() -> None:
    task, inputs, truth = tiny_task()
    assert "labels" not in {f.name for f in dataclasses.fields(task.target_unlabeled)}
    keys = list(task.validation[1].keys)
    m1, r1 = fit(task, inputs, mode="soft")
    m2, r2 = fit(task, inputs, mode="soft")
    np.testing.assert_allclose(m1.predict_proba(keys), m2.predict_proba(keys), atol=1e-6)
    assert [r.keys for r in r1.pseudo_labels] == [r.keys for r in r2.pseudo_labels]
    probs = m1.predict_proba(keys)
    assert probs.shape == (20, C) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # the harness scores the rounds against the truth it kept (xlbench.runner.pseudo_label_stats)
    empty = EvalSet("t", "italian", (), np.zeros(0, np.int64), ())
    stats = pseudo_label_stats(r1, TaskTruth(empty, empty, unlabeled_labels=truth), 40, [e.value for e in EMOTIONS_5])
    assert [s.n_selected for s in stats] == [40, 40, 40]
    assert all(s.accuracy is not None and 0 <= s.accuracy <= 1 for s in stats)


# -- the contract on the generated corpus -----------------------------------------------------

@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_contract_on_the_synthetic_corpus(synthetic_home, mode: str) -> None:
    result = check("pseudolabel", {"mode": mode})
    assert result.ok, [(c.name, c.detail) for c in result.checks if not c.ok]


@pytest.mark.slow
def test_contract_finetune(synthetic_home) -> None:
    # short crops: the contract in fine-tune mode, not the tiny HuBERT's cost, is under test
    result = check("pseudolabel", {"mode": "soft", "epochs": 2, "every": 1, "crop_seconds": 0.5}, finetune=True)
    assert result.ok, [(c.name, c.detail) for c in result.checks if not c.ok]


@pytest.mark.slow
def test_runner_records_the_rounds(synthetic_home, tmp_path, monkeypatch) -> None:
    from xlbench.runner import RunRequest, execute

    monkeypatch.setenv("XLBENCH_MLFLOW", "0")
    req = RunRequest(method="pseudolabel", target="italian", n_labeled=25, seeds=(0,), show_progress=False,
                     encoder="logmel-stats",
                     overrides=(("epochs", 4), ("every", 2), ("mode", "soft")), results=tmp_path / "res")
    (out,) = execute(req)
    rec = out.record
    assert [p.epoch for p in rec.pseudo_labels] == [2, 4]
    n_u = rec.sizes["target_unlabeled"]
    assert all(p.n_unlabeled == p.n_selected == n_u and p.accuracy is not None for p in rec.pseudo_labels)
    assert rec.history[0]["target_pool_size"] == rec.sizes["source_train"]  # rebalanced from the start
