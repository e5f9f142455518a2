"""A method that feeds its training through a torch DataLoader with worker processes (for
tests/test_gpu_path.py: the method's own worker may start processes of its own)."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import torch

from xlbench.method import FitReport, Method


def with_pid(idx: list[int]) -> tuple[int, list[int]]:
    """A module-level collate function: the worker's start method pickles what it starts."""
    return os.getpid(), idx


class LoaderMethod(Method):
    name = "loader-test"
    citation = "test"
    needs = frozenset({"source_train", "validation"})

    def fit(self, task, ctx):
        keys = list(task.source_train.keys)
        loader = torch.utils.data.DataLoader(range(len(keys)), batch_size=8, num_workers=2, collate_fn=with_pid)
        pids, seen = set(), []
        for pid, idx in loader:
            pids.add(pid)
            seen.extend(idx)
            ctx.inputs.train_batch([keys[i] for i in idx], np.random.default_rng(0))  # crops in this process
        self.n_classes = task.n_classes
        return FitReport(extras={"loader_pids": sorted(pids), "method_pid": os.getpid(), "served": len(seen),
                                 "start_method": multiprocessing.get_start_method()})

    def predict_proba(self, keys):
        return np.full((len(keys), self.n_classes), 1.0 / self.n_classes)
