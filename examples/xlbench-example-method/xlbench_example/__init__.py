"""An example third-party method for xlbench: nearest class centroid.

It computes one centroid per emotion from the labelled embeddings it is given (D_s and,
when N_k > 0, K_t, weighted equally per language) and predicts by cosine similarity to the
centroids. There is no training loop: it shows the smallest complete method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from xlbench.method import FitContext, FitReport, Method, MethodConfig
from xlbench.tasks import TransferTask
from xlbench.training import embed


class CentroidConfig(MethodConfig):
    temperature: float = Field(0.1, gt=0, description="softmax temperature over cosine similarities")
    target_weight: float = Field(1.0, ge=0, description="weight of K_t relative to D_s in the centroids")


class Centroid(Method):
    name = "centroid"
    version = "0.1.0"
    citation = "example plugin (xlbench docs/adding-a-method.md)"
    summary = "nearest class centroid of the frozen embeddings"
    Config = CentroidConfig
    needs = frozenset({"source_train", "target_labeled"})

    def fit(self, task: TransferTask, ctx: FitContext) -> FitReport:
        self.ctx = ctx
        self.model = ctx.make_backbone().to(ctx.device)  # encoder + head; only `embed` is used
        sums = np.zeros((task.n_classes, self.model.dim))
        weights = np.zeros(task.n_classes)
        for labeled, w in ((task.source_train, 1.0), (task.target_labeled, self.config.target_weight)):
            if len(labeled) == 0:
                continue
            vectors = _unit(embed(self.model, ctx.inputs, labeled.keys, ctx.device))
            for c in range(task.n_classes):
                sums[c] += w * vectors[labeled.labels == c].sum(0)
                weights[c] += w * (labeled.labels == c).sum()
        self.centroids = _unit(sums / np.maximum(weights, 1e-9)[:, None])
        return FitReport(extras={"centroid_norms": [float(n) for n in np.linalg.norm(sums, axis=1)]})

    def predict_proba(self, keys: Sequence[str]) -> np.ndarray:
        sims = _unit(embed(self.model, self.ctx.inputs, keys, self.ctx.device)) @ self.centroids.T
        z = sims / self.config.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
