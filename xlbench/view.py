"""What a method is lent, and nothing more (DESIGN.md, trust model 1-2).

- ``InputParts``: the harness's inputs divided by task part (source train, target train, the
  validation sets, the test sets), built once per request, so that every run can hand its
  method exactly the parts it declared without re-pooling anything.
- ``ViewInputs``: the input store a method's ``fit`` receives. It serves the keys of the
  declared parts only; any other key is a ``LeakError`` (and the run fails without a record,
  even if the method catches the error). Test inputs are admitted only after ``fit`` returned,
  and only for whole-utterance prediction (``eval_batch``), never for training crops.
- ``BackboneSpec``: how to build the backbone (encoder + linear head) inside the method's
  process, from names and sizes, so no harness object travels with it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from xlbench.errors import LeakError
from xlbench.inputs import Backbone, Batch, FrozenInputs, InputStore, WaveInputs
from xlbench.tasks import TransferTask

Store = FrozenInputs | WaveInputs


def _short(key: str) -> str:
    return key[:12] + "…"


class ViewInputs(InputStore):
    """An input store restricted to a method's view; counts every refused request."""

    def __init__(self, fit_store: Store, allowed: Iterable[str], method: str = "the method"):
        self.mode = fit_store.mode
        self.crop_seconds = fit_store.crop_seconds
        self._fit = fit_store
        self._allowed = frozenset(allowed)
        self._test: Store | None = None
        self._test_keys: frozenset[str] = frozenset()
        self._method = method
        self.refused: list[str] = []  # keys asked for outside the view (the run fails if any)
        missing = self._allowed - set(fit_store.keys)
        if missing:
            raise ValueError(f"{len(missing)} key(s) of the view have no inputs")

    def admit_test(self, store: Store) -> None:
        """After ``fit``: the test keys become servable for whole-utterance prediction."""
        self._test = store
        self._test_keys = frozenset(store.keys)

    def _refuse(self, keys: Sequence[str], what: str) -> LeakError:
        self.refused.extend(keys)
        return LeakError(
            f"{self._method} asked for {what} of {len(keys)} key(s) outside its view (first: {_short(keys[0])}); "
            "a method is lent only the task parts it declares (docs/adding-a-method.md); no record was written"
        )

    def train_batch(self, keys: Sequence[str], rng: np.random.Generator) -> Batch:
        outside = [k for k in keys if k not in self._allowed]
        if outside:
            raise self._refuse(outside, "training crops")
        return self._fit.train_batch(keys, rng)

    def eval_batch(self, keys: Sequence[str]) -> Batch:
        outside = [k for k in keys if k not in self._allowed and k not in self._test_keys]
        if outside:
            raise self._refuse(outside, "inputs")
        if all(k in self._allowed for k in keys):
            return self._fit.eval_batch(keys)
        if self._test is not None and all(k in self._test_keys for k in keys):
            return self._test.eval_batch(keys)
        # a batch mixing fit and test keys: gather each part and restore the order
        fit_pos = [i for i, k in enumerate(keys) if k in self._allowed]
        test_pos = [i for i, k in enumerate(keys) if k not in self._allowed]
        assert self._test is not None
        a = self._fit.eval_batch([keys[i] for i in fit_pos])
        b = self._test.eval_batch([keys[i] for i in test_pos])
        width = max(a.x.shape[1], b.x.shape[1]) if a.x.dim() > 2 else None
        xs = []
        for part in (a, b):
            x = part.x
            if width is not None and x.shape[1] < width:
                x = torch.nn.functional.pad(x, (0, 0) * (x.dim() - 2) + (0, width - x.shape[1]))
            xs.append(x)
        order = torch.tensor(fit_pos + test_pos)
        x = torch.empty((len(keys), *xs[0].shape[1:]), dtype=xs[0].dtype, device=xs[0].device)
        x[order.to(x.device)] = torch.cat(xs)
        lengths = torch.empty(len(keys), dtype=a.lengths.dtype, device=a.lengths.device)
        lengths[order.to(lengths.device)] = torch.cat([a.lengths, b.lengths])
        return Batch(x, lengths)

    def length(self, key: str) -> int:
        if key in self._allowed:
            return self._fit.length(key)
        if key in self._test_keys and self._test is not None:
            return self._test.length(key)
        raise self._refuse([key], "the length")


#: stores ``InputParts.store_for(..., reuse=True)`` keeps: a run's fit store and its test store
KEPT_STORES = 2


@dataclass
class InputParts:
    """The inputs of one request, one store per split part (built once, shared by every seed)."""

    parts: dict[str, Store] = field(default_factory=dict)  # "source_train", "target_val", ...
    _kept: OrderedDict[tuple[tuple[str, ...], str], Store] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    def store_for(self, keys: Sequence[str], device: torch.device | str = "cpu", *, reuse: bool = False) -> Store:
        """A store holding exactly ``keys``: whole parts are joined, partly used ones subset.

        ``reuse``: the same store for the same keys next time (the last ``KEPT_STORES`` asked
        for). The seeds of a request lend their workers the same fit and test keys; a kept store
        goes to a worker as shared memory, moved there once, which the worker maps read-only
        (xlbench.isolation), instead of being joined and copied again for every run.
        """
        if reuse:
            ident = (tuple(keys), str(device))
            if ident in self._kept:
                self._kept.move_to_end(ident)
                return self._kept[ident]
            store = self.store_for(keys, device)
            self._kept[ident] = store
            while len(self._kept) > KEPT_STORES:
                self._kept.popitem(last=False)
            return store
        wanted = set(keys)
        pieces: list[Store] = []
        for store in self.parts.values():
            have = [k for k in store.keys if k in wanted]
            if not have:
                continue
            pieces.append(store if len(have) == len(store.keys) else store.subset(have))
            wanted -= set(have)
        if wanted:
            raise ValueError(f"{len(wanted)} key(s) have no inputs in any part")
        kind = type(pieces[0])
        return kind.concat(pieces, device)


@dataclass(frozen=True)
class BackboneSpec:
    """Everything needed to build the backbone in the method's process (paper Sec. 3.2.1):
    the encoder (fine-tuning) or its vector size (frozen), the head the method's TrainConfig
    asks for, and whether a training-only feature standardiser goes in front of it."""

    mode: Literal["frozen", "finetune"]
    dim: int
    n_classes: int
    pooling: str
    encoder: str | None = None  # finetune: registry name, built from its options
    encoder_options: tuple[tuple[str, str], ...] = ()
    head_type: str = "linear"
    head_hidden: int = 256
    head_dropout: float = 0.3
    standardize: bool = False  # resolved by the harness (TrainConfig standardize, the encoder)

    def factory(self, inputs: InputStore | None = None, task: TransferTask | None = None) -> Callable[[], Backbone]:
        """``ctx.make_backbone``: a fresh backbone per call; fine-tuning starts every call from
        the same pretrained weights (the encoder is loaded once per process). The standardiser
        is fitted once, here, on the task's training parts as the method's view serves them."""
        from xlbench.components.heads import make_head
        from xlbench.components.standardize import standardizer_for_task

        standardizer = None
        if self.standardize:
            if inputs is None or task is None:
                raise ValueError("a standardiser needs the task's inputs to fit its statistics")
            standardizer = standardizer_for_task(inputs, task)

        def head() -> torch.nn.Module | None:
            return make_head(self.head_type, self.dim, self.n_classes, self.head_hidden, self.head_dropout)

        if self.mode == "frozen":

            def frozen() -> Backbone:
                std = standardizer.clone() if standardizer is not None else None
                return Backbone(None, self.dim, self.n_classes, self.pooling, head=head(), standardizer=std)

            return frozen
        from xlbench import hub
        from xlbench.encoders import build_encoder

        with hub.local_only():  # the harness fetched the weights already; a worker never downloads
            pretrained = build_encoder(self.encoder or "", dict(self.encoder_options))

        def make() -> Backbone:
            enc = copy.deepcopy(pretrained)
            enc.requires_grad_(True)
            return Backbone(enc, self.dim, self.n_classes, self.pooling, head=head())

        return make
