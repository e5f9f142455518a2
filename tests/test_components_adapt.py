"""The adaptation components: gradient reversal, the DANN λ schedule, the NNPM memory.

Small, exact tests: hand-computed values, autograd on toy graphs, and a toy domain problem
(two Gaussian blobs per domain) on which reversal must remove the domain from the features.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xlbench.components.gradient_reversal import GradientReversal, reverse_gradient
from xlbench.components.memory import EmbeddingMemory, hard_negative_margin_loss
from xlbench.components.schedules import StepSchedule, dann_lambda, training_progress

LAMBDAS = [0.0, 0.1, 0.5, 1.0, 2.5]


# -- gradient reversal ---------------------------------------------------------------------------

@pytest.mark.parametrize("lam", LAMBDAS)
def test_reversal_is_identity_forward_and_minus_lambda_backward(lam: float) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=g, requires_grad=True)
    upstream = torch.randn(5, 3, generator=g)
    y = reverse_gradient(x, lam)
    assert torch.equal(y, x)
    y.backward(upstream)
    assert torch.equal(x.grad, -lam * upstream)


@pytest.mark.parametrize("lam", LAMBDAS)
def test_reversal_flips_only_the_gradient_below_it(lam: float) -> None:
    """f → GRL → h: h's gradients are untouched, f's are exactly -λ times those without GRL."""
    torch.manual_seed(0)
    f, h = nn.Linear(4, 3), nn.Linear(3, 2)
    x = torch.randn(6, 4)

    def grads(use_grl: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        f.zero_grad()
        h.zero_grad()
        z = f(x)
        out = h(GradientReversal(lam)(z) if use_grl else z)
        (out**2).sum().backward()
        return [p.grad.clone() for p in f.parameters()], [p.grad.clone() for p in h.parameters()]

    f_plain, h_plain = grads(False)
    f_rev, h_rev = grads(True)
    for a, b in zip(h_rev, h_plain, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(f_rev, f_plain, strict=True):
        torch.testing.assert_close(a, -lam * b, rtol=1e-6, atol=1e-7)


def test_reversal_module_lambda_is_settable_and_checked() -> None:
    grl = GradientReversal()
    assert grl.lambda_ == 1.0 and "lambda_=1" in repr(grl)
    x = torch.ones(3, requires_grad=True)
    grl.set_lambda(0.25)
    grl(x).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.25))
    assert grl.state_dict() == {}  # a schedule value, not a learned one
    with pytest.raises(ValueError, match="finite"):
        grl.set_lambda(float("nan"))
    with pytest.raises(ValueError, match="finite"):
        GradientReversal(float("inf"))


def test_reversal_inside_a_second_order_free_graph_keeps_shapes_and_dtypes() -> None:
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    y = reverse_gradient(x, 0.3)
    assert y.shape == x.shape and y.dtype == torch.float64
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.3))


# -- the λ schedule ------------------------------------------------------------------------------

def test_dann_lambda_values() -> None:
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(1.0) == pytest.approx(0.9999092, abs=1e-7)
    # by hand: 2 / (1 + e^-5) - 1 = 2 / 1.006737947 - 1 = 0.986614298 (= tanh 2.5)
    assert dann_lambda(0.5) == pytest.approx(0.986614298, abs=1e-9)
    assert dann_lambda(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)
    values = [dann_lambda(p / 20) for p in range(21)]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert dann_lambda(0.5, gamma=2.0) == pytest.approx(2 / (1 + math.exp(-1)) - 1)
    with pytest.raises(ValueError):
        dann_lambda(1.5)
    with pytest.raises(ValueError):
        dann_lambda(-0.1)


def test_training_progress_and_step_schedule() -> None:
    assert training_progress(0, 10) == 0.0
    assert training_progress(5, 10) == 0.5
    assert training_progress(12, 10) == 1.0  # clipped
    with pytest.raises(ValueError):
        training_progress(1, 0)
    sched = StepSchedule(total_steps=4)
    seen = []
    for _ in range(4):
        seen.append((sched.progress, sched.lambda_))
        sched.step()
    assert seen[0] == (0.0, 0.0)  # the first step has no reversed gradient
    assert [p for p, _ in seen] == [0.0, 0.25, 0.5, 0.75]
    assert seen[2][1] == pytest.approx(dann_lambda(0.5))
    assert sched.progress == 1.0 and sched.lambda_ == pytest.approx(dann_lambda(1.0))
    scaled = StepSchedule(total_steps=4, lambda_max=0.5, steps_done=2)
    assert scaled.lambda_ == pytest.approx(0.5 * dann_lambda(0.5))
    assert StepSchedule(total_steps=4, lambda_max=0.3, constant=True).lambda_ == 0.3
    with pytest.raises(ValueError):
        StepSchedule(total_steps=0)


# -- the domain loss on a toy problem --------------------------------------------------------------

def _blobs(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class along x0, domain (source 0 / target 1) along x1, two noise dimensions."""
    y = torch.randint(0, 2, (n,), generator=gen)
    d = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, 4, generator=gen) * 0.5
    x[:, 0] += 2.0 * (2 * y - 1)
    x[:, 1] += 2.0 * (2 * d - 1)
    return x, y, d


def _probe_accuracy(train: torch.Tensor, d: torch.Tensor, test: torch.Tensor, d_test: torch.Tensor) -> float:
    """A fresh MLP trained to tell the domains apart from frozen features; held-out accuracy."""
    torch.manual_seed(0)
    probe = nn.Sequential(nn.Linear(train.shape[1], 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(probe.parameters(), lr=3e-2)
    for _ in range(200):
        opt.zero_grad()
        F.binary_cross_entropy_with_logits(probe(train).squeeze(-1), d.float()).backward()
        opt.step()
    with torch.no_grad():
        return ((probe(test).squeeze(-1) > 0).long() == d_test).float().mean().item()


def _train_toy_dann(lam: float, seed: int) -> dict[str, float]:
    """Features start as (x0, x1): emotion and domain both readable. Train CE on the source plus
    the domain loss, the domain classifier behind a reversal layer with coefficient ``lam``."""
    gen = torch.Generator().manual_seed(seed)
    x, y, d = _blobs(256, gen)
    x_test, y_test, d_test = _blobs(256, gen)
    torch.manual_seed(seed)
    feat, head = nn.Linear(4, 2), nn.Linear(2, 2)
    with torch.no_grad():
        feat.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        feat.bias.zero_()
    domain = nn.Sequential(GradientReversal(lam), nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam([*feat.parameters(), *head.parameters(), *domain.parameters()], lr=1e-2)
    source = d == 0
    for _ in range(300):
        z = feat(x)
        loss = F.cross_entropy(head(z[source]), y[source])
        loss = loss + F.binary_cross_entropy_with_logits(domain(z).squeeze(-1), d.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        z, z_test = feat(x), feat(x_test)
        target = d_test == 1
        domain_acc = ((domain(z_test).squeeze(-1) > 0).long() == d_test).float().mean().item()
        emotion_acc = (head(z_test[target]).argmax(1) == y_test[target]).float().mean().item()
    probe_acc = _probe_accuracy(z, d, z_test, d_test)
    return {"domain_acc": domain_acc, "probe_acc": probe_acc, "target_emotion_acc": emotion_acc}


@pytest.mark.parametrize("seed", [0, 1])
def test_reversal_makes_features_domain_invariant_on_two_blobs(seed: int, one_torch_thread: None) -> None:
    with_grl = _train_toy_dann(1.0, seed)
    without = _train_toy_dann(0.0, seed)  # λ = 0: the domain classifier learns, the features are left alone
    assert without["domain_acc"] > 0.95 and without["probe_acc"] > 0.95
    assert with_grl["domain_acc"] < 0.65, with_grl
    assert with_grl["probe_acc"] < 0.75, with_grl  # even a fresh classifier can barely tell the domains apart
    # ... while the emotion stays readable, in the target domain too
    assert with_grl["target_emotion_acc"] > 0.95 and without["target_emotion_acc"] > 0.95


# -- the NNPM memory -----------------------------------------------------------------------------

def _hand_memory() -> EmbeddingMemory:
    """Four unit vectors in 2-D: class 0 holds e1 and (0.8, 0.6); class 1 holds e2; class 2 holds -e1."""
    mem = EmbeddingMemory(n_classes=3)
    mem.push(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]), torch.tensor([0, 0, 1, 2]))
    return mem


def test_memory_fifo_order_and_capacity_per_class() -> None:
    mem = EmbeddingMemory(n_classes=2, capacity_per_class=2)
    a, b, c, d = (torch.tensor([[float(i), 1.0]]) for i in range(1, 5))
    mem.push(a, torch.tensor([0]))
    mem.push(torch.cat([b, d]), torch.tensor([0, 1]))
    assert mem.counts() == [2, 1]
    mem.push(c, torch.tensor([0]))  # class 0 is full: a, the oldest, leaves
    feats, labels = mem.entries()
    assert labels.tolist() == [0, 0, 1]
    torch.testing.assert_close(feats, F.normalize(torch.cat([b, c, d]), dim=1))  # oldest first, normalised
    # a batch larger than the capacity keeps its last rows
    mem.push(torch.tensor([[5.0, 0], [6.0, 0], [7.0, 0]]), torch.tensor([1, 1, 1]))
    assert mem.counts() == [2, 2] and len(mem) == 4
    torch.testing.assert_close(mem.entries()[0][2:], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    # replace swaps everything; the capacity still holds
    mem.replace(torch.randn(5, 2), torch.tensor([1, 1, 1, 0, 1]))
    assert mem.counts() == [1, 2]


def test_memory_entries_are_detached_copies() -> None:
    z = torch.tensor([[3.0, 4.0]], requires_grad=True)
    mem = EmbeddingMemory(1)
    mem.push(z, torch.tensor([0]))
    feats, _ = mem.entries()
    assert not feats.requires_grad
    with torch.no_grad():
        z.mul_(-1)  # the caller changing its batch does not change the memory
    torch.testing.assert_close(mem.entries()[0], torch.tensor([[0.6, 0.8]]))


def test_memory_rejects_bad_input() -> None:
    mem = EmbeddingMemory(2, capacity_per_class=3)
    with pytest.raises(RuntimeError, match="empty"):
        mem.similarities(torch.ones(1, 2))
    with pytest.raises(ValueError, match="labels"):
        mem.push(torch.ones(2, 2), torch.tensor([0, 2]))
    with pytest.raises(ValueError):
        mem.push(torch.ones(2, 2), torch.tensor([0]))
    with pytest.raises(ValueError):
        EmbeddingMemory(2, capacity_per_class=0)


def test_similarities_and_multilabels_match_hand_computation() -> None:
    mem = _hand_memory()
    q = torch.tensor([[0.6, 0.8], [-0.6, -0.8]])
    # cosines of q0 = (0.6, 0.8) to e1, (0.8, 0.6), e2, -e1: 0.6, 0.48 + 0.48 = 0.96, 0.8, -0.6
    sims = mem.similarities(q * 5)  # queries are normalised first
    torch.testing.assert_close(sims, torch.tensor([[0.6, 0.96, 0.8, -0.6], [-0.6, -0.96, -0.8, 0.6]]))
    # per class, the nearest entry: q0 -> (0.96, 0.8, -0.6); q1 -> (-0.6, -0.8, 0.6)
    scores = mem.class_scores(q)
    torch.testing.assert_close(scores, torch.tensor([[0.96, 0.8, -0.6], [-0.6, -0.8, 0.6]]))

    top2 = mem.multilabels(q, "topk", k=2)  # q0: entries 1 (class 0) and 2 (class 1); q1: entries 3 (2) and 0 (0)
    assert top2.targets.tolist() == [[1, 1, 0], [1, 0, 1]]
    assert top2.labels.tolist() == [0, 2]
    torch.testing.assert_close(top2.confidence, torch.tensor([0.96, 0.6]))
    assert mem.multilabels(q, "topk", k=1).targets.tolist() == [[1, 0, 0], [0, 0, 1]]
    assert mem.multilabels(q, "topk", k=99).targets.tolist() == [[1, 1, 1], [1, 1, 1]]  # k > N: every entry

    assert mem.multilabels(q, "threshold", threshold=0.7).targets.tolist() == [[1, 1, 0], [0, 0, 0 + 1]]
    assert mem.multilabels(q, "threshold", threshold=0.9).targets.tolist() == [[1, 0, 0], [0, 0, 1]]
    # nothing reaches 0.99: the best class is still given, so no query is left unlabelled
    assert mem.multilabels(q, "threshold", threshold=0.99).targets.tolist() == [[1, 0, 0], [0, 0, 1]]
    with pytest.raises(ValueError):
        mem.multilabels(q, "nearest")  # type: ignore[arg-type]


def test_class_scores_of_an_empty_class_are_minus_infinity() -> None:
    mem = EmbeddingMemory(3)
    mem.push(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))
    scores = mem.class_scores(torch.tensor([[0.0, 1.0]]))
    assert scores[0, 0] == float("-inf") and scores[0, 2] == float("-inf") and scores[0, 1] == pytest.approx(0.0)
    assert mem.multilabels(torch.tensor([[0.0, 1.0]])).labels.tolist() == [1]


def test_hard_negatives_are_the_most_similar_wrong_class_entries() -> None:
    mem = _hand_memory()
    q = torch.tensor([[0.6, 0.8]])  # similarities 0.6, 0.96, 0.8, -0.6 to entries 0..3
    neg = mem.hard_negatives(q, torch.tensor([[1, 0, 0]]), n=2)  # class 0 is the label: entries 2, 3 are wrong
    assert neg.index.tolist() == [[2, 3]]
    torch.testing.assert_close(neg.similarity, torch.tensor([[0.8, -0.6]]))
    assert neg.valid.tolist() == [[True, True]]
    neg = mem.hard_negatives(q, torch.tensor([[0, 1, 0]]), n=2)  # label 1: the closest wrong ones are class 0's
    assert neg.index.tolist() == [[1, 0]]
    neg = mem.hard_negatives(q, torch.tensor([[1, 1, 0]]), n=2)  # a multi-label: only class 2 is wrong
    assert neg.index[0, 0].item() == 3 and neg.valid.tolist() == [[True, False]]


def test_hard_negative_margin_loss_by_hand_and_its_gradient() -> None:
    mem = _hand_memory()
    q = torch.tensor([[0.6, 0.8]], requires_grad=True)
    # label 0: nearest positive 0.96; negatives 0.8, -0.6; margin 0.2:
    # relu(0.8 - 0.96 + 0.2) = 0.04, relu(-0.6 - 0.96 + 0.2) = 0 -> mean 0.02
    loss = hard_negative_margin_loss(q, mem, torch.tensor([[1, 0, 0]]), n=2, margin=0.2)
    assert loss.item() == pytest.approx(0.02, abs=1e-6)
    loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    # nothing to separate: every class is a label -> zero, still differentiable
    q2 = torch.tensor([[0.6, 0.8]], requires_grad=True)
    zero = hard_negative_margin_loss(q2, mem, torch.ones(1, 3), n=2)
    zero.backward()
    assert zero.item() == 0.0 and torch.equal(q2.grad, torch.zeros(1, 2))
    # wide margin: both negatives count
    wide = hard_negative_margin_loss(torch.tensor([[0.6, 0.8]]), mem, torch.tensor([[1, 0, 0]]), n=2, margin=2.0)
    assert wide.item() == pytest.approx(((0.8 - 0.96 + 2.0) + (-0.6 - 0.96 + 2.0)) / 2, abs=1e-6)
