"""Shared test set-up: offline, no progress bars, a private data home per test.

The generated synthetic corpus takes a few seconds to make, so it is made once per session
in a shared home (``synthetic_home``); tests that only read it point XLBENCH_HOME there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["XLBENCH_PROGRESS"] = "0"
# Under pytest-xdist each worker gets its share of the cores for torch and OpenMP (read when torch
# is first imported, and inherited by the processes a test starts): N workers using every core
# each would fight over them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty data home and results folder unless it asks for more."""
    home = tmp_path / "xlbench-home"
    monkeypatch.setenv("XLBENCH_HOME", str(home))
    monkeypatch.setenv("XLBENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # `--offline` sets XLBENCH_OFFLINE in the process environment (for child processes too);
    # registering it here makes every test end with it unset again
    monkeypatch.setenv("XLBENCH_OFFLINE", "0")
    return home


@pytest.fixture(scope="session")
def synthetic_home_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home holding the generated synthetic corpus (all five languages), made once: under
    pytest-xdist (``-n N``) the workers share one, made by the first under a file lock."""
    from filelock import FileLock

    if os.environ.get("PYTEST_XDIST_WORKER"):
        home = tmp_path_factory.getbasetemp().parent / "synthetic-home"
    else:
        home = tmp_path_factory.mktemp("synthetic-home")
    old = os.environ.get("XLBENCH_HOME")
    os.environ["XLBENCH_HOME"] = str(home)
    try:
        from xlbench.synth import ensure_synthetic

        with FileLock(str(home) + ".lock"):
            for lang in ("english", "french", "german", "italian", "persian"):
                ensure_synthetic(lang)
    finally:
        if old is None:
            os.environ.pop("XLBENCH_HOME", None)
        else:
            os.environ["XLBENCH_HOME"] = old
    return home


@pytest.fixture
def synthetic_home(synthetic_home_session: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XLBENCH_HOME", str(synthetic_home_session))
    return synthetic_home_session


@pytest.fixture
def no_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs without the MLflow copy (tests of MLflow itself use a real SQLite store)."""
    monkeypatch.setenv("XLBENCH_MLFLOW", "0")


@pytest.fixture
def fresh_home(synthetic_home_session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new data home that holds the generated corpus (linked, with its manifests) and nothing
    else: no features, no records, no MLflow store. Its results folder is ``<home>/results``."""
    import shutil

    home = tmp_path / "fresh-home"
    home.mkdir()
    (home / "synthetic").symlink_to(synthetic_home_session / "synthetic", target_is_directory=True)
    shutil.copytree(synthetic_home_session / "manifests", home / "manifests")
    monkeypatch.setenv("XLBENCH_HOME", str(home))
    monkeypatch.setenv("XLBENCH_RESULTS", str(home / "results"))
    return home


@pytest.fixture
def small_home(synthetic_home_session: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new data home whose generated corpus is a class-balanced slice of the shared one (the
    hidden-label audit's: English 60/20/20 and Italian 40/20/20 train/val/test utterances, hard
    links) and nothing else. For tests of plumbing whose cost is per utterance (extraction with
    a slow encoder, several processes each training): 180 utterances instead of 1,000."""
    from xlbench.audit import SOURCE_SLICE, TARGET_SLICE, slice_language, write_world
    from xlbench.languages import load_language

    monkeypatch.setenv("XLBENCH_HOME", str(synthetic_home_session))
    utts = (slice_language(load_language("english", "synthetic"), SOURCE_SLICE)
            + slice_language(load_language("italian", "synthetic"), TARGET_SLICE))
    home = tmp_path / "small-home"
    write_world(home, utts, {})
    monkeypatch.setenv("XLBENCH_HOME", str(home))
    monkeypatch.setenv("XLBENCH_RESULTS", str(home / "results"))
    for lang in ("english", "italian"):
        load_language(lang, "synthetic")  # its manifests, as `xlbench data prepare` would make them
    return home


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: thread hand-offs cost more than they save, and vary with the machine's load
    (the runner uses one thread for frozen heads too)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def one_torch_thread_per_module() -> Iterator[None]:
    """``one_torch_thread`` for a whole module (module-scoped fixtures that compute with torch)."""
    with torch_threads(1):
        yield
