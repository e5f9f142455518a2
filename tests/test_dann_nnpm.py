"""The DANN and NNPM baselines: one step against a hand-written step, batch composition, pseudo-label
rounds, configs, and the 4-emotion (Table 6) setting end to end through the harness.

Toy tasks are built from real harness objects (FrozenInputs over random frames, TransferTask,
FitContext); utterances are shorter than the training crop, so a crop is the whole utterance and
a step is deterministic.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xlbench_baselines.dann as dann_module
from xlbench_baselines.dann import DANN, DANNConfig, TargetStream, adaptation_steps
from xlbench_baselines.nnpm import NNPM, NNPMConfig

from tests.method_utils import hide_validation_labels
from xlbench.components.schedules import dann_lambda
from xlbench.errors import ConfigError
from xlbench.inputs import Backbone, Batch, FrozenInputs, InputStore
from xlbench.method import get_method, make_config
from xlbench.protocol import EMOTIONS_4, Emotion
from xlbench.tasks import LabeledSet, TransferTask, UnlabeledSet
from xlbench.training import FitContext, TrainConfig, soft_cross_entropy

DIM, C = 6, len(EMOTIONS_4)
# tiny models: one thread (the runner does the same)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CountingInputs(InputStore):
    """Records the keys of every training batch (a real store underneath)."""

    def __init__(self, inner: InputStore):
        self.inner, self.mode, self.crop_seconds = inner, inner.mode, inner.crop_seconds
        self.train_calls: list[list[str]] = []

    def train_batch(self, keys: Sequence[str], rng: np.random.Generator) -> Batch:
        self.train_calls.append(list(keys))
        return self.inner.train_batch(keys, rng)

    def eval_batch(self, keys: Sequence[str]) -> Batch:
        return self.inner.eval_batch(keys)

    def length(self, key: str) -> int:
        return self.inner.length(key)


def toy(n_src: int = 24, n_tgt: int = 24, shift: float = 1.0, seed: int = 0, validation: bool = False):
    """Four Gaussian classes; the target language is the source shifted by ``shift`` per dimension."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 2, (C, DIM))
    frames: dict[str, np.ndarray] = {}

    def make(prefix: str, n: int, offset: float) -> tuple[tuple[str, ...], np.ndarray]:
        keys = tuple(f"{prefix}{i}" for i in range(n))
        labels = np.arange(n) % C
        for k, c in zip(keys, labels, strict=True):
            frames[k] = (means[c] + offset + rng.normal(0, 0.4, (5, DIM))).astype(np.float32)
        return keys, labels

    s_keys, s_lab = make("s", n_src, 0.0)
    t_keys, t_lab = make("t", n_tgt, shift)
    sets: tuple[LabeledSet, ...] = ()
    if validation:
        sv, sv_lab = make("sv", 8, 0.0)
        tv, tv_lab = make("tv", 8, shift)
        sets = (LabeledSet("source_val", "english", sv, sv_lab), LabeledSet("target_val", "italian", tv, tv_lab))
    task = TransferTask(
        source="english", target="italian", classes=EMOTIONS_4, n_labeled=0, seed=seed, selection="paper",
        source_train=LabeledSet("source_train", "english", s_keys, s_lab),
        target_labeled=LabeledSet.empty("target_labeled", "italian"),
        target_unlabeled=UnlabeledSet("target_unlabeled", "italian", t_keys),
        validation=sets,
    )
    # 5 frames at 100 frames/s, crops of 10: every crop is the whole utterance
    inputs = FrozenInputs(frames, frame_rate=100.0, crop_seconds=0.1, pooling="mean")
    return task, inputs, t_lab


def context(inputs: InputStore, task: TransferTask, seed: int = 0) -> FitContext:
    """The context the harness would lend; the validation labels stay with its scorer."""
    torch.manual_seed(seed)
    _, scorer = hide_validation_labels(task)
    return FitContext(inputs=inputs, device=torch.device("cpu"), seed=seed, n_classes=C,
                      make_backbone=lambda: Backbone(None, DIM, C, "mean"), score_validation=scorer,
                      show_progress=False)


# -- DANN ----------------------------------------------------------------------------------------

def test_one_dann_step_equals_a_hand_written_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Emotion CE on the labelled half, BCE domain loss on both halves; the projection gets
    ∂L_y - λ w_d ∂L_d, the domain classifier +w_d ∂L_d, the emotion head ∂L_y."""
    task, inputs, _ = toy(n_src=16, n_tgt=16)
    lam, w_d = 0.7, 0.5
    cfg = DANNConfig(epochs=1, batch_size=32, dropout=0.0, bottleneck=8, domain_hidden=5, domain_weight=w_d,
                     lambda_schedule="constant", lambda_max=lam)  # halves: 16 + 16, one step
    initial: dict[str, torch.nn.Module] = {}
    real = dann_module.optimizer_for

    def spy(model, extras, c):
        initial["model"], initial["domain"] = copy.deepcopy(model), copy.deepcopy(extras[0])
        return real(model, extras, c)

    monkeypatch.setattr(dann_module, "optimizer_for", spy)
    method = DANN(cfg)
    report = method.fit(task, context(inputs, task))
    assert report.extras["steps"] == 1

    model, domain = initial["model"], initial["domain"]
    x = torch.cat([inputs.eval_batch(task.source_train.keys).x, inputs.eval_batch(task.target_unlabeled.keys).x])
    d = torch.cat([torch.zeros(16), torch.ones(16)])
    z = model.project(x)
    loss_y = soft_cross_entropy(model.head(z[:16]), F.one_hot(torch.tensor(task.source_train.labels), C).float())
    loss_d = F.binary_cross_entropy_with_logits(domain.net(z).squeeze(-1), d)  # no reversal here: done by hand
    proj, head, dom = list(model.project.parameters()), list(model.head.parameters()), list(domain.net.parameters())
    g_proj_y = torch.autograd.grad(loss_y, proj, retain_graph=True)
    g_head = torch.autograd.grad(loss_y, head)
    g_proj_d = torch.autograd.grad(w_d * loss_d, proj, retain_graph=True)
    g_dom = torch.autograd.grad(w_d * loss_d, dom)

    got = method.model, method.domain
    for p, gy, gd in zip(got[0].project.parameters(), g_proj_y, g_proj_d, strict=True):
        torch.testing.assert_close(p.grad, gy - lam * gd, rtol=1e-5, atol=1e-6)
    for p, g in zip(got[0].head.parameters(), g_head, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)
    for p, g in zip(got[1].net.parameters(), g_dom, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)
    row = report.history[0]
    assert row["emotion_loss"] == pytest.approx(loss_y.item(), rel=1e-5)
    assert row["domain_loss"] == pytest.approx(loss_d.item(), rel=1e-5)
    assert row["loss"] == pytest.approx(loss_y.item() + w_d * loss_d.item(), rel=1e-5)


def test_dann_batches_are_half_labelled_half_target_and_lambda_ramps() -> None:
    task, inputs, _ = toy(n_src=40, n_tgt=12, validation=True)
    spy = CountingInputs(inputs)
    cfg = DANNConfig(epochs=4, batch_size=20, bottleneck=8, domain_hidden=8)
    method = DANN(cfg)
    report = method.fit(task, context(spy, task))
    source, target = set(task.source_train.keys), set(task.target_unlabeled.keys)
    assert len(spy.train_calls) == 4 * 4  # 40 labelled / 10 per step, 4 epochs
    for keys in spy.train_calls:
        assert sum(k in source for k in keys) == 10 and sum(k in target for k in keys) == 10
    # the target stream visits every target utterance once per pass
    first_pass = [k for keys in spy.train_calls[:2] for k in keys[10:]][:12]
    assert sorted(first_pass) == sorted(target)
    lams = [row["grl_lambda"] for row in report.history]
    assert lams == sorted(lams) and lams[-1] == pytest.approx(dann_lambda(1.0))  # 16 of 16 steps done
    assert {"emotion_loss", "domain_loss", "domain_acc", "source_val_ua", "target_val_ua"} <= set(report.history[0])
    assert method.model.encoder is None and sum(p.numel() for p in method.model.project.parameters()) == DIM * 8 + 8
    probs = method.predict_proba(list(task.target_unlabeled.keys))
    assert probs.shape == (12, C) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert method.embed(list(task.target_unlabeled.keys)).shape == (12, 8)


def test_paired_composition_and_target_stream() -> None:
    rng = np.random.default_rng(0)
    stream = TargetStream(5, np.random.default_rng(1))
    steps = list(adaptation_steps(12, stream, 4, "paired", rng))
    assert [len(lab) for lab, _ in steps] == [4, 4, 4] and [len(t) for _, t in steps] == [4, 4, 4]
    drawn = np.concatenate([t for _, t in steps])
    assert sorted(drawn[:5].tolist()) == [0, 1, 2, 3, 4] and sorted(drawn[5:10].tolist()) == [0, 1, 2, 3, 4]
    assert len(TargetStream(0, rng).take(3)) == 0


def test_dann_refuses_a_task_without_target_audio() -> None:
    task, inputs, _ = toy()
    empty = dataclasses.replace(task, target_unlabeled=UnlabeledSet("target_unlabeled", "italian", ()))
    with pytest.raises(ConfigError, match="target-language training audio"):
        DANN(DANNConfig(epochs=1)).fit(empty, context(inputs, empty))


# -- NNPM ----------------------------------------------------------------------------------------

def test_nnpm_reports_pseudo_label_rounds_that_track_the_truth() -> None:
    task, inputs, t_lab = toy(n_src=48, n_tgt=24, shift=0.3, validation=True)
    spy = CountingInputs(inputs)
    cfg = NNPMConfig(epochs=5, batch_size=24, warmup_epochs=1, report_every=2, embedding_dim=16, hidden=32,
                     memory_per_class=8)
    method = NNPM(cfg)
    report = method.fit(task, context(spy, task))
    assert [r.epoch for r in report.pseudo_labels] == [2, 4, 5]
    for r in report.pseudo_labels:
        assert r.keys == task.target_unlabeled.keys and r.labels.shape == (24,)
        assert r.labels.min() >= 0 and r.labels.max() < C
    # well-separated classes and a small language shift: the memory's nearest neighbours are right
    assert (report.pseudo_labels[-1].labels == t_lab).mean() >= 0.9
    assert method.memory.counts() == [8] * C  # the FIFO capacity per class holds
    # each step: 12 labelled (source) keys, then 12 U_t keys
    source, target = set(task.source_train.keys), set(task.target_unlabeled.keys)
    for keys in spy.train_calls:
        assert all(k in source for k in keys[:12]) and all(k in target for k in keys[12:])
    rows = report.history
    assert rows[0]["target_loss"] == 0.0 and rows[-1]["target_loss"] > 0  # warm-up, then the target terms
    assert 1.0 <= rows[-1]["multilabel_size"] <= C
    assert method.embed(list(task.target_unlabeled.keys)).shape == (24, 16)
    norms = np.linalg.norm(method.embed(list(task.source_train.keys)), axis=1)
    assert np.allclose(norms, 1, atol=1e-5)  # L2-normalised embeddings


@pytest.mark.parametrize("overrides", [
    {"memory_update": "epoch", "pseudo_label": "threshold", "threshold": 0.3, "pseudo_label_update": "step"},
    {"target_loss_on": "memory", "head": "linear", "hard_negative_on": "target", "target_ramp": "none"},
    {"hard_negative_weight": 0.0, "memory_sets": "labeled", "memory_per_class": None, "batch_composition": "paired"},
])
def test_nnpm_options_train_and_predict(overrides: dict) -> None:
    task, inputs, _ = toy(n_src=24, n_tgt=12)
    method = NNPM(NNPMConfig(epochs=3, batch_size=12, warmup_epochs=1, report_every=1, embedding_dim=8, hidden=16,
                             **overrides))
    report = method.fit(task, context(inputs, task))
    assert len(report.pseudo_labels) == 2 and all(np.isfinite(v) for row in report.history for v in row.values())
    probs = method.predict_proba(list(task.target_unlabeled.keys))
    assert probs.shape == (12, C) and np.allclose(probs.sum(1), 1, atol=1e-5)


# -- configs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dann", "nnpm"])
def test_configs_validate_document_every_option_and_have_smoke_settings(name: str) -> None:
    cls = get_method(name)
    own = set(cls.Config.model_fields) - set(TrainConfig.model_fields)
    assert own and all(cls.Config.model_fields[f].description for f in own)
    cfg = make_config(cls, cls.smoke_config())
    assert cfg.epochs <= 3
    assert make_config(cls, {"batch_composition": "paired"}).batch_composition == "paired"
    with pytest.raises(ConfigError, match="no option"):
        make_config(cls, {"lamda_max": 1.0})
    with pytest.raises(ConfigError, match="batch_composition"):
        make_config(cls, {"batch_composition": "thirds"})


# -- the Table 6 setting through the harness ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize(("method", "overrides"), [
    ("dann", (("epochs", 2),)),
    ("nnpm", (("epochs", 2), ("warmup_epochs", 0), ("report_every", 1))),
])
def test_four_emotions_leave_no_fear_anywhere(synthetic_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              method: str, overrides: tuple) -> None:
    from xlbench.languages import load_language
    from xlbench.runner import RunRequest, execute

    monkeypatch.setenv("XLBENCH_MLFLOW", "0")
    (out,) = execute(RunRequest(method=method, target="german", emotions="4", n_labeled=0, seeds=(0,),
                                overrides=overrides, encoder="logmel-stats", data="synthetic", device="cpu",
                                results=tmp_path / "res", show_progress=False), on_note=lambda _: None)
    rec = out.record
    names = ["anger", "happiness", "neutral", "sadness"]
    assert rec.task.emotions == names and rec.task.n_labeled == 0
    for side in ("target", "source"):
        m = rec.metrics[side]
        assert list(m.per_class_recall) == names and np.array(m.confusion).shape == (4, 4)
        assert all(len(p.probs) == 4 and 0 <= p.true < 4 and 0 <= p.pred < 4 for p in rec.predictions[side])

    utts = {lang: load_language(lang, "synthetic") for lang in ("english", "german")}
    emotion = {u.id: u.emotion for d in utts.values() for part in d.parts.values() for u in part}
    seen = [p.id for side in rec.predictions.values() for p in side] + list(rec.labeled_ids)
    assert seen and all(emotion[i] != Emotion.FEAR for i in seen)

    def no_fear(lang: str, part: str) -> int:
        return sum(u.emotion != Emotion.FEAR for u in utts[lang].parts[part])

    assert rec.sizes["target_test"] == no_fear("german", "test") < len(utts["german"].parts["test"])
    assert rec.sizes["source_train"] == no_fear("english", "train")
    assert rec.sizes["target_unlabeled"] == no_fear("german", "train")
    if method == "nnpm":
        assert [r.epoch for r in rec.pseudo_labels] == [1, 2]
        for r in rec.pseudo_labels:
            assert list(r.class_counts) == names and sum(r.class_counts.values()) == rec.sizes["target_unlabeled"]
            assert r.accuracy is not None  # scored by the harness against the hidden U_t labels
