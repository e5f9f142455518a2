"""Fig. 6's representations: the test sets embedded before and after adaptation.

The one place that fits models without writing records: Fig. 6 needs representations, which
records do not hold. :func:`embed_for_pca` trains one seed (in the method's worker, exactly as a
run does) and returns arrays for :func:`xlbench.report.figures.pca_figure`; no number of it
reaches a leaderboard table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from xlbench.errors import ConfigError
from xlbench.fitting import fit_and_predict, input_parts
from xlbench.method import get_method
from xlbench.report.figures import Embedded
from xlbench.runner import RunRequest, prepare
from xlbench.tasks import build_task
from xlbench.training import TrainConfig


def embed_for_pca(
    target: str,
    *,
    seed: int = 0,
    n_labeled: int = 0,
    sets: Mapping[str, Any] | None = None,
    encoder: str = "auto",
    data: str = "auto",
    device: str = "auto",
    finetune: bool = False,
    emotions: str = "5",
    methods: tuple[str, str] = ("crosslingual", "pseudolabel"),
    emit: Callable[[str], None] = print,
) -> tuple[list[Embedded], list[str], tuple[str, str], dict[str, Any]]:
    """Fit the lower bound and pseudolabel (hard) for one seed and return the test
    sets' representations (:class:`xlbench.report.figures.Embedded`), plus class names and languages.

    Fine-tune mode gives the encoder's embeddings (``Method.embed``). A frozen encoder does not
    change with adaptation, so there the representation is the head's output (log-probabilities):
    the only part that learned. No record is written.
    """
    out = []
    names: list[str] = []
    langs = ("english", target)
    for method in methods:
        overrides = dict(sets or {})
        cls = get_method(method)
        fields = set(cls.Config.model_fields)
        overrides = {k: v for k, v in overrides.items() if k in fields}
        if method == "pseudolabel":
            overrides.setdefault("mode", "hard")
        req = RunRequest(method=method, target=target, encoder=encoder, n_labeled=n_labeled, seeds=(seed,),
                         emotions=emotions, overrides=tuple(overrides.items()), finetune=finetune, data=data,
                         device=device, show_progress=False)
        p = prepare(req)
        cfg = p.method_cls.Config(**p.config_dump)
        crop = cfg.crop_seconds if isinstance(cfg, TrainConfig) else 2.0
        inputs = input_parts(p, crop, False)
        task, truth = build_task(p.source, p.target, classes=p.classes, n_labeled=p.n_labeled, seed=seed,
                                 selection=req.selection, needs=p.method_cls.needs)
        emit(f"fitting {method} on {target} (seed {seed}) for the PCA figure")
        result = fit_and_predict(p, inputs, task, truth, show_progress=False, embed=p.mode == "finetune")
        sets_ = (truth.source_test, truth.target_test)
        if p.mode == "finetune":
            reps = [result.embeddings.get(s.name) for s in sets_]
            space = "encoder embedding"
        else:
            reps = [np.log(np.clip(result.probabilities[s.name], 1e-8, 1.0)) for s in sets_]
            space = "head log-probabilities (frozen encoder)"
        if any(r is None for r in reps):
            raise ConfigError(f"method {method} gives no embeddings (Method.embed returned None)")
        stage = "before adaptation (crosslingual)" if method == methods[0] else f"after adaptation ({method} hard)"
        out.append(Embedded(stage, np.asarray(reps[0]), truth.source_test.labels, np.asarray(reps[1]),
                            truth.target_test.labels, space))
        names = [c.value for c in p.classes]
        synthetic = p.target.synthetic
        enc = p.encoder.info().name
    return out, names, langs, {"synthetic": synthetic, "encoder": enc}
