"""Trust by construction (issue 10): what a method is handed, what it can reach, and the
hidden-label invariance audit that proves it, tested with small cheating plugins.

Every cheater below predicts the test sets from hidden labels it found by one route (the
harness's objects through ``gc``, the call stack, closures; the manifests; the corpus files on
disk) and falls back to a fixed uniform guess where it found nothing. Two facts are checked
for each route: whether the route is closed in a real run (the method's worker), and that
when a route is open the audit fails.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

from tests.method_utils import key_sequences
from tests.plugin_utils import install_fake_distribution, uninstall
from xlbench.contract import check
from xlbench.errors import LeakError, XLBenchError
from xlbench.fitting import fit_and_predict, input_parts, method_job
from xlbench.inputs import FrozenInputs
from xlbench.languages import LanguageData
from xlbench.manifest import Utterance
from xlbench.method import METHODS
from xlbench.protocol import EMOTIONS_5, Emotion
from xlbench.runner import RunRequest, execute, prepare
from xlbench.tasks import LabeledSet, TaskTruth, ValidationSet, build_task
from xlbench.view import ViewInputs

ALL_PARTS = frozenset({"source_train", "target_labeled", "target_unlabeled", "validation"})


# -- 1. order carries nothing -------------------------------------------------------------------


def _utt(lang: str, split: str, speaker: str, emotion: Emotion, i: int) -> Utterance:
    # ids that sort by label first (as CaFE's and EMOVO's do): "<emotion>/<speaker>/<i>"
    uid = f"{lang}/{emotion.value}/{split}-{speaker}/{i:04d}"
    return Utterance(
        id=uid,
        path=f"/nowhere/{uid}.wav",
        corpus=f"c_{lang}",
        language=lang,
        speaker=speaker,
        gender="female",
        raw_label=emotion.value,
        emotion=emotion,
        duration=1.0,
        sample_rate=16000,
        channels=1,
        subtype="PCM_16",
        sha=hashlib.blake2b(uid.encode(), digest_size=16).hexdigest(),
    )


def _label_sorted_language(lang: str, n: dict[str, int]) -> LanguageData:
    parts = {
        split: sorted((_utt(lang, split, f"s{k % 4}", e, k) for e in EMOTIONS_5 for k in range(m)), key=lambda u: u.id)
        for split, m in n.items()
    }
    return LanguageData(lang, (f"c_{lang}",), False, parts, {f"c_{lang}": "0" * 64})


def _independence_p(labels: np.ndarray, bins: int = 5) -> float:
    """Chi-square test of label x position-quintile (scipy): small p = order tells labels."""
    position = np.arange(len(labels)) * bins // len(labels)
    table = np.zeros((bins, len(EMOTIONS_5)))
    np.add.at(table, (position, labels), 1)
    return float(chi2_contingency(table).pvalue)


def test_every_key_sequence_is_in_an_order_independent_of_labels() -> None:
    src = _label_sorted_language("english", {"train": 200, "val": 40, "test": 40})
    tgt = _label_sorted_language("italian", {"train": 120, "val": 40, "test": 40})
    task, truth = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=50, seed=0, selection="paper", needs=ALL_PARTS)
    index = {e: i for i, e in enumerate(EMOTIONS_5)}
    sequences = key_sequences(task, truth)
    for name, keys in sequences.items():
        assert list(keys) == sorted(keys), name  # the order is the keys' own (content hashes)
        labels = np.array([index[truth.by_key[k].emotion] for k in keys])
        if len(keys) >= 100:
            assert _independence_p(labels) > 1e-3, name
    # the test has power: the manifests' own (id) order fails it by a wide margin
    by_id = np.array([index[u.emotion] for u in sorted(src.parts["train"], key=lambda u: u.id)])
    assert _independence_p(by_id) < 1e-100
    # and labels stay aligned with their keys
    for s in (task.source_train, task.target_labeled):
        assert [index[truth.by_key[k].emotion] for k in s.keys] == s.labels.tolist()


def test_key_order_does_not_depend_on_ids_or_manifest_order() -> None:
    src = _label_sorted_language("english", {"train": 20, "val": 6, "test": 6})
    tgt = _label_sorted_language("italian", {"train": 12, "val": 4, "test": 4})
    rng = random.Random(1)

    def scrambled(d: LanguageData) -> LanguageData:
        parts = {}
        for split, utts in d.parts.items():
            renamed = [u.model_copy(update={"id": f"x/{rng.random():.12f}"}) for u in utts]
            rng.shuffle(renamed)
            parts[split] = renamed
        return dataclasses.replace(d, parts=parts)

    a, _ = build_task(src, tgt, classes=EMOTIONS_5, n_labeled=0, seed=3, selection="paper", needs=ALL_PARTS)
    b, _ = build_task(
        scrambled(src), scrambled(tgt), classes=EMOTIONS_5, n_labeled=0, seed=3, selection="paper", needs=ALL_PARTS
    )
    assert a.source_train.keys == b.source_train.keys
    assert a.source_train.labels.tolist() == b.source_train.labels.tolist()
    assert a.target_unlabeled.keys == b.target_unlabeled.keys
    assert [s.keys for s in a.validation] == [s.keys for s in b.validation]


def test_validation_sets_carry_no_labels() -> None:
    src = _label_sorted_language("english", {"train": 20, "val": 6, "test": 6})
    tgt = _label_sorted_language("italian", {"train": 12, "val": 4, "test": 4})
    for policy, n_labeled in (("paper", 0), ("strict", 10)):
        task, truth = build_task(
            src, tgt, classes=EMOTIONS_5, n_labeled=n_labeled, seed=0, selection=policy, needs=ALL_PARTS
        )
        for s in task.validation:
            assert isinstance(s, ValidationSet) and not hasattr(s, "labels")
            assert {f.name for f in dataclasses.fields(s)} == {"name", "language", "keys"}
            assert truth.validation[s.name].keys == s.keys  # the harness keeps them, to score


# -- 2. a method's view is exactly its declared parts -------------------------------------------


def _store(keys: list[str]) -> FrozenInputs:
    rng = np.random.default_rng(0)
    return FrozenInputs({k: rng.normal(size=(12, 3)).astype(np.float32) for k in keys}, 10.0, 0.5, "mean")


def test_view_serves_only_its_keys_and_test_keys_only_after_fit() -> None:
    fit_keys, test_keys = [f"f{i}" for i in range(6)], [f"t{i}" for i in range(4)]
    full = _store(fit_keys + test_keys)
    view = ViewInputs(full.subset(fit_keys), fit_keys, method="m")
    rng = np.random.default_rng(0)
    assert view.train_batch(fit_keys[:3], rng).x.shape == (3, 3)
    for ask in (
        lambda: view.eval_batch(["t1"]),
        lambda: view.train_batch(["f0", "t2"], rng),
        lambda: view.length("t0"),
        lambda: view.eval_batch(["nope"]),
    ):
        with pytest.raises(LeakError, match="outside its view"):
            ask()
    assert set(view.refused) == {"t1", "t2", "t0", "nope"}  # remembered even if a method catches the error
    view.admit_test(full.subset(test_keys))
    mixed = ["t3", "f1", "t0"]
    assert torch.allclose(view.eval_batch(mixed).x, full.eval_batch(mixed).x)
    with pytest.raises(LeakError):  # test inputs are for prediction, never for training crops
        view.train_batch(["t0"], rng)


def _walk(obj, seen=None, depth=0):
    """Every object reachable from ``obj`` through containers, dataclasses and attributes."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12 or isinstance(obj, (type, torch.Tensor, np.ndarray)):
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, dict):
        children = [*obj.keys(), *obj.values()]
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = list(obj)
    elif hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        children = []
    for c in children:
        yield from _walk(c, seen, depth + 1)


def test_the_workers_job_holds_nothing_hidden(synthetic_home) -> None:
    """Everything a worker is handed, walked object by object and as pickled bytes: no utterance,
    no truth, no test key, no validation label, no path or id (which spell the emotion)."""
    p = prepare(
        RunRequest(
            method="pseudolabel",
            target="italian",
            encoder="logmel-stats",
            n_labeled=25,
            data="synthetic",
            audit=False,
            show_progress=False,
        )
    )
    task, truth = build_task(
        p.source, p.target, classes=p.classes, n_labeled=25, seed=0, selection="paper", needs=p.method_cls.needs
    )
    job = method_job(p, input_parts(p, 2.0, False), task, show_progress=False)
    hidden_keys = set(truth.target_test.keys) | set(truth.source_test.keys)
    assert set(job.inputs.keys) == set(task.fit_keys()) and not hidden_keys & set(job.inputs.keys)
    for obj in _walk(job):
        assert not isinstance(obj, (Utterance, TaskTruth, LanguageData)), type(obj)
        if isinstance(obj, LabeledSet):
            assert obj.name in ("source_train", "target_labeled"), obj.name
        if isinstance(obj, str):
            assert obj not in hidden_keys
    # everything but the feature tensors, as the worker receives it
    blob = pickle.dumps(dataclasses.replace(job, inputs=None)) + pickle.dumps(job.inputs.keys)
    words = set(re.findall(rb"[\w./-]+", blob))
    for u in truth.by_key.values():
        assert not {u.id.encode(), Path(u.path).name.encode(), u.path.encode()} & words
    assert not {k.encode() for k in hidden_keys} & words
    # U_t keys are there (the method needs them), their labels are not: the only label arrays
    # are D_s's and K_t's
    label_arrays = [o for o in _walk(job) if isinstance(o, LabeledSet)]
    assert sorted(s.name for s in label_arrays) == ["source_train", "target_labeled"]


def test_a_kept_store_is_the_same_object_for_the_same_keys_and_at_most_two_are_kept() -> None:
    from xlbench.view import KEPT_STORES, InputParts

    frames = {f"k{i}": np.full((3, 2), float(i), np.float32) for i in range(6)}
    parts = InputParts({"a": FrozenInputs({k: frames[k] for k in ("k0", "k1", "k2")}, 50.0),
                        "b": FrozenInputs({k: frames[k] for k in ("k3", "k4", "k5")}, 50.0)})
    fit, test, other = ["k0", "k1", "k3"], ["k4", "k5"], ["k2"]
    first = parts.store_for(fit, reuse=True)
    assert parts.store_for(fit, reuse=True) is first
    assert parts.store_for(fit) is not first  # without reuse: a store of its own every time
    assert parts.store_for(list(reversed(fit)), reuse=True) is not first  # keys in another order: another store
    assert parts.store_for(test, reuse=True) is parts.store_for(test, reuse=True)
    assert KEPT_STORES == 2
    parts.store_for(fit, reuse=True)  # fit, then test, are the two most recent ...
    parts.store_for(test, reuse=True)
    parts.store_for(other, reuse=True)  # ... so this one pushes out the least recent, fit
    assert parts.store_for(fit, reuse=True) is not first
    assert torch.equal(parts.store_for(fit, reuse=True).eval_batch(fit).x, first.eval_batch(fit).x)


SCRIBBLER = """
import numpy as np
from xlbench.method import FitReport, Method, MethodConfig


class Scribbler(Method):
    name = "scribbler"
    citation = "test"
    Config = MethodConfig
    needs = frozenset({"source_train"})

    def fit(self, task, ctx):
        ctx.inputs._fit._whole.mul_(0)  # writes into the inputs it is lent (private, but reachable)
        return FitReport()

    def predict_proba(self, keys):
        return np.full((len(keys), 5), 0.2)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inputs are made read-only with mprotect on Linux")
def test_a_write_into_the_lent_inputs_fails_the_run_and_leaves_the_next_runs_inputs_intact(
    synthetic_home, plugin
) -> None:
    plugin("xlbench-scribbler", {"scribbler": "scribbler_mod:Scribbler"}, SCRIBBLER, "scribbler_mod")
    p = prepare(RunRequest(method="scribbler", target="italian", encoder="logmel-stats", data="synthetic",
                           audit=False, show_progress=False))
    task, truth = build_task(p.source, p.target, classes=p.classes, n_labeled=0, seed=0, selection="paper",
                             needs=p.method_cls.needs)
    inputs = input_parts(p, 2.0, False)
    kept = inputs.store_for(task.fit_keys(), reuse=True)  # what the worker will be lent
    before = kept.eval_batch(list(task.fit_keys())).x.clone()
    with pytest.raises(XLBenchError, match=r"died \(signal 11; a native crash, or a write into the read-only "
                                           r"inputs it is lent\?\)"):
        fit_and_predict(p, inputs, task, truth, show_progress=False)
    assert inputs.store_for(task.fit_keys(), reuse=True) is kept
    assert kept.eval_batch(list(task.fit_keys())).x.abs().sum() > 0
    assert torch.equal(kept.eval_batch(list(task.fit_keys())).x, before)


# -- 3. validation is scored by the harness, and the record says what it observed -----------------

SCORING_PLUGIN = """
import numpy as np
from xlbench.method import FitReport, Method, MethodConfig


class Config(MethodConfig):
    score_sets: list[str] = []
    calls: int = 1


class Scorer(Method):
    name = "scorer"
    citation = "test"
    Config = Config
    needs = frozenset({"source_train", "validation"})

    def fit(self, task, ctx):
        history = []
        for s in task.validation:
            if s.name in self.config.score_sets:
                for _ in range(self.config.calls):
                    ua = ctx.score_validation(s.name, np.zeros(len(s.keys), dtype=np.int64))
                    history.append({"epoch": 1.0, s.name + "_ua": ua})
        return FitReport(history=history)

    def predict_proba(self, keys):
        return np.full((len(keys), 5), 0.2)
"""


@pytest.fixture
def plugin(tmp_path: Path):
    installed = []

    def install(dist: str, entry_points: dict[str, str], code: str, module: str) -> None:
        root = install_fake_distribution(
            tmp_path / dist, dist, "0.0.1", {"xlbench.methods": entry_points}, {module: code}
        )
        installed.append((root, module))
        METHODS.refresh()

    yield install
    for root, module in installed:
        uninstall(root, [module])
    METHODS.refresh()


def test_selection_facts_in_the_record_are_observed(synthetic_home, no_mlflow, tmp_path: Path, plugin) -> None:
    plugin("xlbench-scorer", {"scorer": "scorer_mod:Scorer"}, SCORING_PLUGIN, "scorer_mod")
    res = tmp_path / "res"
    rec = execute(
        RunRequest(
            method="scorer",
            target="italian",
            encoder="logmel-stats",
            seeds=(0,),
            data="synthetic",
            results=res,
            overrides=(("score_sets", ["source_val"]), ("calls", 3)),
            show_progress=False,
        )
    )[0].record
    assert rec.selection.sets == ["source_val"] and rec.selection.scoring_calls == {"source_val": 3}
    # the UA it was told is the UA of "always class 0" on S-val, computed here independently
    ua = rec.history[0]["source_val_ua"]
    assert ua == pytest.approx(1 / 5)
    none = execute(
        RunRequest(
            method="scorer",
            target="italian",
            encoder="logmel-stats",
            seeds=(0,),
            data="synthetic",
            results=res,
            show_progress=False,
        )
    )[0].record
    assert none.selection.sets == [] and none.selection.scoring_calls == {}


def test_scoring_a_set_outside_the_task_fails_the_run(synthetic_home, no_mlflow, tmp_path: Path, plugin) -> None:
    plugin(
        "xlbench-scorer",
        {"scorer": "scorer_mod:Scorer"},
        SCORING_PLUGIN.replace("ctx.score_validation(s.name,", "ctx.score_validation('target_test',"),
        "scorer_mod",
    )
    with pytest.raises(LeakError, match="not a validation set"):
        execute(
            RunRequest(
                method="scorer",
                target="italian",
                encoder="logmel-stats",
                seeds=(0,),
                data="synthetic",
                results=tmp_path / "r",
                overrides=(("score_sets", ["source_val"]),),
                show_progress=False,
            )
        )
    assert not list((tmp_path / "r").glob("*/*.json"))


# -- 4. and 5. reach, and the audit: one cheating plugin per route --------------------------------

CHEATERS = '''
import gc, hashlib, inspect, os, re
import numpy as np
from xlbench.method import FitReport, Method, MethodConfig

ORDER = ["anger", "fear", "happiness", "neutral", "sadness"]
CODES = {"ang": 0, "fea": 1, "hap": 2, "neu": 3, "sad": 4}


def from_truth(obj):
    """key -> class id from anything that looks like the harness's truth."""
    found = {}
    for name in ("target_test", "source_test"):
        s = getattr(obj, name, None)
        if s is not None and hasattr(s, "labels"):
            found.update(zip(s.keys, (int(v) for v in s.labels)))
    return found


class Cheater(Method):
    citation = "test"
    Config = MethodConfig
    needs = frozenset({"source_train"})

    def look(self, ctx):
        return {}

    def fit(self, task, ctx):
        self.found = self.look(ctx)
        return FitReport(extras={"found": len(self.found)})

    def predict_proba(self, keys):
        out = np.full((len(keys), 5), 0.2)
        for i, k in enumerate(keys):
            if k in self.found:
                out[i] = 0.0
                out[i, self.found[k]] = 1.0
        return out


class ByGc(Cheater):
    name = "cheat-gc"

    def look(self, ctx):
        found = {}
        for obj in gc.get_objects():
            if type(obj).__name__ == "TaskTruth":
                found.update(from_truth(obj))
        return found


class ByStack(Cheater):
    name = "cheat-stack"

    def look(self, ctx):
        found = {}
        for frame in inspect.stack():
            for value in list(frame.frame.f_locals.values()):
                if type(value).__name__ == "TaskTruth":
                    found.update(from_truth(value))
        return found


class ByClosure(Cheater):
    name = "cheat-closure"

    def look(self, ctx):
        found, seen, todo = {}, set(), [ctx.make_backbone, ctx.score_validation, ctx.inputs]
        while todo:
            obj = todo.pop()
            if id(obj) in seen or len(seen) > 20000:
                continue
            seen.add(id(obj))
            if hasattr(obj, "sha") and hasattr(obj, "emotion"):
                found[obj.sha] = ORDER.index(obj.emotion.value)
            found.update(from_truth(obj))
            for cell in getattr(obj, "__closure__", None) or ():
                todo.append(cell.cell_contents)
            for attr in ("__self__", "__wrapped__", "__dict__"):
                if hasattr(obj, attr):
                    todo.append(getattr(obj, attr))
            if isinstance(obj, dict):
                todo.extend(obj.values())
            elif isinstance(obj, (list, tuple)):
                todo.extend(obj)
        return found


class ByManifest(Cheater):
    name = "cheat-manifest"

    def look(self, ctx):
        from xlbench.languages import load_language

        found = {}
        for lang in ("english", "italian"):
            for part in load_language(lang, "synthetic").parts.values():
                found.update((u.sha, ORDER.index(u.emotion.value)) for u in part)
        return found


class ByDisk(Cheater):
    name = "cheat-disk"

    def look(self, ctx):
        found = {}
        for folder, _, files in os.walk(os.environ["XLBENCH_HOME"]):
            for f in files:
                m = re.fullmatch(r"([a-z]{3})-.*\\.wav", f)
                if m and m.group(1) in CODES:
                    data = open(os.path.join(folder, f), "rb").read()
                    found[hashlib.blake2b(data, digest_size=16).hexdigest()] = CODES[m.group(1)]
        return found
'''

ROUTES = {
    "cheat-gc": "ByGc",
    "cheat-stack": "ByStack",
    "cheat-closure": "ByClosure",
    "cheat-manifest": "ByManifest",
    "cheat-disk": "ByDisk",
}


@pytest.fixture
def cheaters(plugin):
    plugin("xlbench-cheaters", {name: f"cheaters_mod:{cls}" for name, cls in ROUTES.items()}, CHEATERS, "cheaters_mod")


@pytest.mark.slow
@pytest.mark.parametrize("route", ["cheat-gc", "cheat-stack", "cheat-closure"])
def test_harness_objects_are_out_of_reach_and_the_audit_catches_them_when_not(synthetic_home, cheaters, route) -> None:
    # in the method's worker, the route finds nothing: the cheater is honest by force
    worker = check(route)
    assert worker.audit is not None and worker.audit.first is not None
    assert worker.audit.first.report.extras["found"] == 0
    assert worker.ok, [(c.name, c.detail) for c in worker.checks if not c.ok]
    # in the harness's own process (tests and debugging only), gc and the stack lead to the
    # truth: the cheat works there, and the audit fails it
    here = check(route, isolation="in-process")
    assert here.audit is not None and here.audit.first is not None
    if route == "cheat-closure":  # nothing hidden hangs off the context, even in-process
        assert here.audit.first.report.extras["found"] == 0 and here.ok
    else:
        assert here.audit.first.report.extras["found"] > 0
        assert here.audit.verdict == "fail" and "target_test probabilities" in here.audit.detail
        assert not here.ok and [c.name for c in here.checks if not c.ok] == ["hidden-label audit"]


@pytest.mark.slow
@pytest.mark.parametrize("route", ["cheat-manifest", "cheat-disk"])
def test_cheats_through_the_data_home_fail_the_audit_and_cannot_run(
    synthetic_home, no_mlflow, cheaters, tmp_path: Path, route
) -> None:
    result = check(route)
    assert result.audit is not None and result.audit.first.report.extras["found"] > 0
    assert result.audit.verdict == "fail", result.audit.detail
    assert "target_test probabilities" in result.audit.detail and "source_test probabilities" in result.audit.detail
    assert not result.ok
    with pytest.raises(LeakError, match="failed the hidden-label audit"):
        execute(
            RunRequest(
                method=route,
                target="italian",
                encoder="logmel-stats",
                seeds=(0,),
                data="synthetic",
                results=tmp_path / "r",
                show_progress=False,
            )
        )
    assert not list((tmp_path / "r").glob("*/*.json"))


NONDETERMINISTIC = """
import os
import numpy as np
from xlbench.method import FitReport, Method, MethodConfig


class Noisy(Method):
    name = "noisy"
    citation = "test"
    Config = MethodConfig
    needs = frozenset({"source_train"})

    def fit(self, task, ctx):
        self.rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
        return FitReport()

    def predict_proba(self, keys):
        p = self.rng.random((len(keys), 5))
        return p / p.sum(1, keepdims=True)
"""


def test_a_nondeterministic_method_cannot_be_audited(synthetic_home, no_mlflow, plugin) -> None:
    plugin("xlbench-noisy", {"noisy": "noisy_mod:Noisy"}, NONDETERMINISTIC, "noisy_mod")
    result = check("noisy")
    assert result.audit.verdict == "nondeterministic"
    assert result.audit.detail.startswith("cannot audit: nondeterministic")
    assert [c.name for c in result.checks if not c.ok] == ["deterministic"]


def test_builtins_pass_and_runs_carry_the_cached_verdict(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    from xlbench.audit import audits_dir, fingerprint
    from xlbench.method import get_method

    req = RunRequest(
        method="crosslingual",
        target="italian",
        encoder="logmel-stats",
        seeds=(0, 1),
        data="synthetic",
        results=tmp_path / "r",
        show_progress=False,
        overrides=(("epochs", 2),),
    )
    records = [o.record for o in execute(req)]
    cls = get_method("crosslingual")
    fp = fingerprint(cls, cls.Config(epochs=2).model_dump(mode="json"), "frozen")
    assert {r.audit.verdict for r in records} == {"pass"} and {r.audit.fingerprint for r in records} == {fp}
    assert (audits_dir() / f"{fp}.json").is_file()  # cached: the next command does not audit again
    skipped = execute(dataclasses.replace(req, audit=False, overwrite=True))[0].record
    assert skipped.audit.verdict == "skipped"


def test_a_method_that_asks_for_a_test_key_during_fit_fails_without_a_record(
    synthetic_home, no_mlflow, tmp_path: Path, plugin
) -> None:
    code = """
import numpy as np
from xlbench.method import FitReport, Method, MethodConfig


class Config(MethodConfig):
    probe: list[str] = []


class Prober(Method):
    name = "prober"
    citation = "test"
    Config = Config
    needs = frozenset({"source_train"})

    def fit(self, task, ctx):
        try:
            ctx.inputs.eval_batch(self.config.probe)
        except Exception:
            pass  # catching the LeakError does not save the run
        return FitReport()

    def predict_proba(self, keys):
        return np.full((len(keys), 5), 0.2)
"""
    plugin("xlbench-prober", {"prober": "prober_mod:Prober"}, code, "prober_mod")
    p = prepare(
        RunRequest(
            method="prober",
            target="italian",
            encoder="logmel-stats",
            data="synthetic",
            audit=False,
            show_progress=False,
        )
    )
    _, truth = build_task(
        p.source, p.target, classes=p.classes, n_labeled=0, seed=0, selection="paper", needs=p.method_cls.needs
    )
    probe = list(truth.target_test.keys[:2])
    with pytest.raises(LeakError, match="outside its view"):
        execute(
            RunRequest(
                method="prober",
                target="italian",
                encoder="logmel-stats",
                seeds=(0,),
                data="synthetic",
                audit=False,
                results=tmp_path / "r",
                overrides=(("probe", probe),),
                show_progress=False,
            )
        )
    assert not list((tmp_path / "r").glob("*/*.json"))


def test_fit_and_predict_in_process_follows_the_same_protocol(synthetic_home) -> None:
    """The in-process path (tests, debugging) gives the worker's numbers exactly."""
    p = prepare(
        RunRequest(
            method="crosslingual",
            target="italian",
            encoder="logmel-stats",
            data="synthetic",
            audit=False,
            overrides=(("epochs", 2),),
            show_progress=False,
        )
    )
    task, truth = build_task(
        p.source, p.target, classes=p.classes, n_labeled=0, seed=0, selection="paper", needs=p.method_cls.needs
    )
    parts = input_parts(p, 2.0, False)
    a = fit_and_predict(p, parts, task, truth, show_progress=False, isolation="worker")
    b = fit_and_predict(p, parts, task, truth, show_progress=False, isolation="in-process")
    for name in ("target_test", "source_test"):
        assert np.array_equal(a.probabilities[name], b.probabilities[name])
    assert a.scoring_calls == b.scoring_calls == {"source_val": 2, "target_val": 2}


def test_a_methods_bug_is_one_line_and_its_traceback_is_kept(synthetic_home, no_mlflow, tmp_path: Path, plugin) -> None:
    code = """
from xlbench.method import FitReport, Method, MethodConfig


class Buggy(Method):
    name = "buggy"
    citation = "test"
    Config = MethodConfig
    needs = frozenset({"source_train"})

    def fit(self, task, ctx):
        return {}["missing"]

    def predict_proba(self, keys):
        raise AssertionError("never reached")
"""
    plugin("xlbench-buggy", {"buggy": "buggy_mod:Buggy"}, code, "buggy_mod")
    with pytest.raises(XLBenchError) as err:
        execute(
            RunRequest(
                method="buggy",
                target="italian",
                seeds=(0,),
                data="synthetic",
                encoder="logmel-stats",
                audit=False,
                results=tmp_path / "r",
                show_progress=False,
            )
        )
    message = str(err.value)
    assert message.startswith("buggy failed: KeyError: 'missing' (at buggy_mod.py:")
    assert "\n" not in message
    saved = Path(message.rsplit("traceback in ", 1)[1])
    assert 'return {}["missing"]' in saved.read_text()
    assert not list((tmp_path / "r").glob("*/*.json"))


# -- 7. settings never merge: the English source is the protocol's union unless named ------------


@pytest.mark.slow
def test_a_partial_english_source_runs_only_when_named_and_is_shown(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tests.corpus_fixtures import make_ravdess
    from xlbench.cli import main

    home = tmp_path / "home"  # a home of its own: RAVDESS prepared, the synthetic corpus linked in
    home.mkdir()
    (home / "synthetic").symlink_to(synthetic_home / "synthetic", target_is_directory=True)
    env = {"XLBENCH_HOME": str(home), "XLBENCH_RESULTS": str(tmp_path / "res")}
    root = make_ravdess(
        tmp_path / "RAVDESS", range(1, 25), emotions=("01", "03", "04", "05", "06"), seconds=0.3, rate=16_000
    )
    runner = CliRunner()
    res = runner.invoke(main, ["data", "prepare", "--corpus", "ravdess", "--root", str(root)], env=env)
    assert res.exit_code == 0, res.output
    args = [
        "run",
        "--method",
        "crosslingual",
        "--target",
        "italian",
        "--seeds",
        "0",
        "--set",
        "epochs=1",
        "--no-bounds",
        "--no-audit",
        "--encoder",
        "logmel-stats",
    ]
    refused = runner.invoke(main, args, env=env)
    assert refused.exit_code == 2
    assert "ravdess only (savee, tess not prepared)" in refused.output
    assert "--source-corpora ravdess" in refused.output and "Traceback" not in refused.output
    ok = runner.invoke(main, [*args, "--source-corpora", "ravdess"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "english (ravdess only) → italian" in ok.output
    (path,) = (tmp_path / "res").glob("*/*.json")
    from xlbench.records import read_record

    rec = read_record(path)
    assert rec.source_data.corpora == ["ravdess"] and list(rec.source_data.split_hashes) == ["ravdess"]
    assert rec.sizes["source_train"] == 14 * 36  # the 14 training actors, 36 files each
    unknown = runner.invoke(main, [*args, "--source-corpora", "cafe"], env=env)
    assert unknown.exit_code == 2 and "'cafe' is not a english corpus" in unknown.output


# -- 6. and 7. on the board: audited records only, and settings never merge ----------------------


def test_validate_refuses_unaudited_unisolated_and_overreaching_records(tmp_path: Path) -> None:
    from tests.data.fake_records import make_record, write
    from xlbench.report.validate import validate_records

    def defects_of(**kw) -> list[str]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        recs = [make_record("dann", seed=s) for s in (0, 1, 2)]
        recs[0] = recs[0].model_copy(update=kw) if kw else recs[0]
        write(recs, folder)
        # (the refused record also leaves its system with too few seeds: a defect of its own)
        return [d.message for d in validate_records(folder)[1] if not d.message.startswith("fewer than")]

    assert defects_of() == []
    stamp = make_record().audit
    for verdict in ("fail", "nondeterministic", "error", "skipped"):
        (msg,) = defects_of(audit=stamp.model_copy(update={"verdict": verdict}))
        assert msg.startswith(f"no passing audit: the hidden-label audit of dann says {verdict}")
    (msg,) = defects_of(isolation="in-process")
    assert msg.startswith("not isolated")
    sel = make_record().selection
    (msg,) = defects_of(
        selection=sel.model_copy(
            update={"sets": ["source_val", "target_labeled"], "scoring_calls": {"source_val": 1, "target_labeled": 1}}
        )
    )
    assert msg == "selection: scored target_labeled, which the paper policy does not allow"
    (msg,) = defects_of(selection=sel.model_copy(update={"scoring_calls": {"source_val": 4}}))
    assert msg == "selection: the sets used for selection disagree with the scoring calls observed"


def test_records_of_different_sources_never_share_a_row(tmp_path: Path) -> None:
    from tests.data.fake_records import make_record, write
    from xlbench.report.markdown import table_heading
    from xlbench.report.significance import score_tables
    from xlbench.report.tables import build_tables
    from xlbench.report.validate import validate_records

    full = [make_record(m, seed=s, synthetic=False) for m in ("crosslingual", "dann") for s in (0, 1, 2)]
    ravdess = [
        make_record(m, seed=s, synthetic=False, source_corpora=["ravdess"])
        for m in ("crosslingual", "dann")
        for s in (0, 1, 2)
    ]
    write(full + ravdess, tmp_path / "r")
    good, defects = validate_records(tmp_path / "r")
    assert defects == [] and len(good) == 12
    tables = build_tables(good)
    assert len(tables) == 2  # one per source: never one row of six seeds
    for t in tables:
        assert all(len(s.records) == 3 for s in t.systems)
        assert len({tuple(r.source_data.corpora) for s in t.systems for _, r in s.records}) == 1
    headings = sorted(table_heading(st) for st in score_tables(tables))
    assert "source english (ravdess only)" in headings[1] and "source" not in headings[0]


def test_settings_that_read_alike_but_differ_are_refused(tmp_path: Path) -> None:
    from tests.data.fake_records import make_record, write
    from xlbench.records import compute_run_id, identity_payload
    from xlbench.report.validate import validate_records

    def with_encoder(rec, **enc):
        ident = dict(
            protocol_version=rec.protocol_version,
            splits_version=rec.splits_version,
            method=rec.method,
            encoder=rec.encoder.model_copy(update=enc),
            task=rec.task,
            source_data=rec.source_data,
            target_data=rec.target_data,
        )
        return rec.model_copy(update={"encoder": ident["encoder"], "run_id": compute_run_id(identity_payload(**ident))})

    a = [make_record("dann", seed=s) for s in (0, 1, 2)]
    b = [with_encoder(make_record("crosslingual", seed=s), code_version="2") for s in (0, 1, 2)]
    write(a + b, tmp_path / "r")
    good, defects = validate_records(tmp_path / "r")
    assert len(defects) == 6 and not good
    assert all(d.message.startswith("ambiguous setting") and "encoder identity" in d.message for d in defects)
    # a revision is shown in the heading, so two revisions are two settings, not a defect
    c = [with_encoder(make_record("crosslingual", seed=s), revision="a" * 40) for s in (0, 1, 2)]
    write(a + c, tmp_path / "ok")
    good, defects = validate_records(tmp_path / "ok")
    assert defects == [] and {r.encoder.revision for _, r in good} == {None, "a" * 40}
