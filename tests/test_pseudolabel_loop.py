"""The method's pseudo-label loop (Algorithm 1 in ``xlbench_methods.pseudolabel``) on separable data.

The task is tests/test_pseudo_separable.py's (class means 8 apart, noise 0.3). Without validation
sets the last epoch's weights are kept, so after a fit whose last epoch is a round,
``predict_proba(U_t)`` gives exactly the probabilities that round saw: its keys, labels,
confidences and summary numbers are then worked out by hand from them (argmax, max, the τ cut,
U_t's order). The first round's probabilities do not depend on τ (nothing was pseudo-labelled
before it), which lets a τ be placed between two of them.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
from xlbench_methods.pseudolabel import PseudoLabel, PseudoLabelConfig

from tests.test_pseudo_separable import DIM, C, separable
from xlbench.inputs import Backbone
from xlbench.method import FitReport
from xlbench.training import FitContext, seed_everything

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fit(task, inputs, **overrides) -> tuple[PseudoLabel, FitReport]:
    """Fit without validation sets: the last epoch's weights are the ones kept."""
    cfg = PseudoLabelConfig(**{"epochs": 2, "every": 2, "batch_size": 16, "tau": 0.9, "lr": 0.05, **overrides})
    seed_everything(0)
    ctx = FitContext(inputs=inputs, device=torch.device("cpu"), seed=0, n_classes=C,
                     make_backbone=lambda: Backbone(None, DIM, C, "mean"), score_validation=None,
                     show_progress=False)
    method = PseudoLabel(cfg)
    report = method.fit(dataclasses.replace(task, validation=()), ctx)
    return method, report


@pytest.fixture(scope="module")
def task_and_inputs():
    task, truth, inputs = separable()
    return task, truth, inputs


@pytest.fixture(scope="module")
def round_probs(task_and_inputs) -> np.ndarray:
    """U_t's probabilities at the one round of a 2-epoch fit (its last epoch)."""
    task, _, inputs = task_and_inputs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests' own fits (one_torch_thread runs after module fixtures)
    try:
        method, _ = fit(task, inputs, tau=0.0)
        return method.predict_proba(list(task.target_unlabeled.keys))
    finally:
        torch.set_num_threads(threads)


def rows(report: FitReport) -> dict[int, dict[str, float]]:
    return {int(r["epoch"]): r for r in report.history}


def test_a_round_is_the_argmax_and_max_of_u_t_cut_at_tau(task_and_inputs, round_probs) -> None:
    task, truth, inputs = task_and_inputs
    keys = list(task.target_unlabeled.keys)
    conf = round_probs.max(1)
    tau = median_cut(round_probs)
    assert conf.min() < tau < conf.max()
    _, report = fit(task, inputs, tau=tau)
    (rnd,) = report.pseudo_labels
    chosen = [i for i in range(len(keys)) if conf[i] >= tau]  # Eq. 2, in U_t's order
    assert 0 < len(chosen) < len(keys)
    assert rnd.epoch == 2 and list(rnd.keys) == [keys[i] for i in chosen]
    assert rnd.labels.tolist() == [int(round_probs[i].argmax()) for i in chosen]
    np.testing.assert_allclose(rnd.confidence, conf[chosen], rtol=1e-6)
    assert all(truth.unlabeled_labels[k] == y for k, y in zip(rnd.keys, rnd.labels.tolist(), strict=True))
    row = rows(report)[2]
    assert row["round_selected"] == len(chosen)
    assert row["round_unlabeled_confidence"] == pytest.approx(float(conf.mean()), rel=1e-6)
    assert row["round_selected_confidence"] == pytest.approx(float(conf[chosen].mean()), rel=1e-6)


def test_soft_rounds_label_all_of_u_t_with_its_argmax(task_and_inputs) -> None:
    task, truth, inputs = task_and_inputs
    method, report = fit(task, inputs, mode="soft")
    (rnd,) = report.pseudo_labels
    keys = list(task.target_unlabeled.keys)
    probs = method.predict_proba(keys)
    assert list(rnd.keys) == keys and rnd.labels.tolist() == probs.argmax(1).tolist()
    np.testing.assert_allclose(rnd.confidence, probs.max(1), rtol=1e-6)
    assert np.mean([truth.unlabeled_labels[k] == y for k, y in zip(keys, rnd.labels.tolist(), strict=True)]) >= 0.95


def test_a_round_nothing_passes_leaves_no_selected_confidence(task_and_inputs) -> None:
    task, _, inputs = task_and_inputs
    _, report = fit(task, inputs, tau=1.0)
    row = rows(report)[2]
    assert report.pseudo_labels[0].keys == () and row["round_selected"] == 0
    assert "round_selected_confidence" not in row and 0 < row["round_unlabeled_confidence"] < 1


def median_cut(probs: np.ndarray) -> float:
    """A τ half-way between the two middle confidences: about half of U_t passes."""
    order = np.sort(probs.max(1))
    return float((order[len(order) // 2 - 1] + order[len(order) // 2]) / 2)


@pytest.fixture
def halves_labeller(monkeypatch: pytest.MonkeyPatch) -> None:
    """The method's hard pass, cut to the first half of U_t in its first round and to the second
    half afterwards: on separable data every round would keep all of U_t, and replace and
    accumulate could not be told apart."""
    import xlbench_methods.pseudolabel as module

    real = module.hard_pseudo_labels
    rounds: list[int] = []

    def halves(probs: np.ndarray, tau: float):
        pl = real(probs, tau)
        first = np.arange(len(probs)) < len(probs) // 2
        rounds.append(len(probs))
        return dataclasses.replace(pl, mask=pl.mask & (first if len(rounds) == 1 else ~first))

    monkeypatch.setattr(module, "hard_pseudo_labels", halves)


@pytest.mark.parametrize("accumulate", [False, True])
def test_the_pools_confidence_and_size_follow_replace_and_accumulate(task_and_inputs, halves_labeller,
                                                                     accumulate: bool) -> None:
    """Rounds after epochs 2 and 4 (first half of U_t, then second half); each epoch's row
    describes the pool it trained on: K'_t is the latest round (replace) or both (accumulate)."""
    task, truth, inputs = task_and_inputs
    _, report = fit(task, inputs, epochs=5, tau=0.0, accumulate=accumulate, rebalance=False)
    r2, r4 = report.pseudo_labels
    keys = list(task.target_unlabeled.keys)
    assert list(r2.keys) == keys[:17] and list(r4.keys) == keys[17:]
    assert all(truth.unlabeled_labels[k] == y for r in (r2, r4) for k, y in zip(r.keys, r.labels.tolist(),
                                                                                strict=True))
    by_row = rows(report)
    assert "pseudo_confidence" not in by_row[1] and "pseudo_confidence" not in by_row[2]  # no K'_t yet
    first = dict(zip(r2.keys, r2.confidence.tolist(), strict=True))
    second = dict(zip(r4.keys, r4.confidence.tolist(), strict=True))
    pool = {**first, **second} if accumulate else second
    assert by_row[3]["pseudo_confidence"] == pytest.approx(np.mean(list(first.values())), rel=1e-9)
    assert by_row[5]["pseudo_confidence"] == pytest.approx(np.mean(list(pool.values())), rel=1e-9)
    assert (by_row[3]["n_pseudo"], by_row[5]["n_pseudo"]) == (17, 35 if accumulate else 18)
    assert by_row[5]["pool_size"] == 60 + 5 + (35 if accumulate else 18)


@pytest.mark.parametrize(
    ("epochs", "every", "rounds", "before"),
    [(4, 2, [2, 4], False), (2, 2, [2], True), (3, 2, [2], False), (2, 3, [], False)],
)
def test_the_fit_reports_its_counts_and_rounds(task_and_inputs, epochs: int, every: int, rounds: list[int],
                                               before: bool) -> None:
    """Without validation the last epoch is selected: 'before the first round' is true only when
    the last epoch is the first round's (the round's labels never trained the kept weights)."""
    task, _, inputs = task_and_inputs
    _, report = fit(task, inputs, epochs=epochs, every=every)
    assert report.selected_epoch == epochs
    assert [r.epoch for r in report.pseudo_labels] == rounds
    assert report.extras == {"n_source": 60, "n_labeled": 5, "n_unlabeled": 35, "rounds": rounds,
                             "selected_before_first_round": before}


def test_without_unlabelled_utterances_there_is_no_round() -> None:
    task, _, inputs = separable(n_labeled=40)  # all of the target's training set is K_t
    assert len(task.target_unlabeled) == 0
    _, report = fit(task, inputs, epochs=2, every=1, rebalance=False)
    assert report.pseudo_labels == [] and report.extras["rounds"] == []
    assert all(r["n_pseudo"] == 0 and r["pool_size"] == 60 + 40 for r in report.history)


def test_the_learning_rate_schedule_steps_every_epoch(task_and_inputs) -> None:
    """With the rate decayed to ~0 after epoch 1, epochs 2-3 change nothing: the schedule is stepped."""
    task, _, inputs = task_and_inputs
    keys = list(task.target_unlabeled.keys)
    one, _ = fit(task, inputs, epochs=1, every=10, lr_step=1, lr_decay=1e-12)
    three, _ = fit(task, inputs, epochs=3, every=10, lr_step=1, lr_decay=1e-12)
    np.testing.assert_allclose(three.predict_proba(keys), one.predict_proba(keys), atol=1e-6)
    plain, _ = fit(task, inputs, epochs=3, every=10, lr_step=1, lr_decay=1.0)
    assert not np.allclose(plain.predict_proba(keys), one.predict_proba(keys), atol=1e-6)


def test_each_random_stream_is_drawn_from_its_named_stream(task_and_inputs, monkeypatch) -> None:
    """Batches, mixup and rebalancing each draw from the run's stream of that name (a run is
    reproduced from its seed; renaming a stream would change every number a record holds)."""
    import xlbench_methods.pseudolabel as module

    task, _, inputs = task_and_inputs
    first_state: dict[str, dict] = {}

    def spy(name: str):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            first_state.setdefault(name, copy.deepcopy(args[2].bit_generator.state))  # rng: third argument
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    for name in ("minibatches", "mixup", "oversample"):
        spy(name)
    fit(task, inputs, mode="soft")

    def fresh(stream: bytes) -> dict:
        return np.random.default_rng([0, *stream]).bit_generator.state

    assert first_state == {"minibatches": fresh(b"batches"), "mixup": fresh(b"mixup"),
                           "oversample": fresh(b"rebalance")}


def test_every_batch_trains_on_float32_targets(task_and_inputs, monkeypatch) -> None:
    """Also before the first round, when K'_t is still empty (a float64 pool would make the loss float64)."""
    import xlbench_methods.pseudolabel as module

    task, _, inputs = task_and_inputs
    dtypes = []
    real = module.soft_cross_entropy

    def recording(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dtypes.append(targets.dtype)
        return real(logits, targets)

    monkeypatch.setattr(module, "soft_cross_entropy", recording)
    for rebalance in (True, False):
        fit(task, inputs, rebalance=rebalance)
    assert dtypes and set(dtypes) == {torch.float32}


@pytest.mark.gpu
def test_the_backbone_is_moved_to_the_fit_device(task_and_inputs) -> None:
    task, _, inputs = task_and_inputs
    cfg = PseudoLabelConfig(epochs=2, every=2, batch_size=16, tau=0.9, lr=0.05)
    ctx = FitContext(inputs=inputs, device=torch.device("cuda"), seed=0, n_classes=C,
                     make_backbone=lambda: Backbone(None, DIM, C, "mean"), score_validation=None,
                     show_progress=False)
    method = PseudoLabel(cfg)
    report = method.fit(dataclasses.replace(task, validation=()), ctx)
    assert {p.device.type for p in method.model.parameters()} == {"cuda"} and len(report.pseudo_labels) == 1
