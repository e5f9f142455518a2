"""FrozenInputs: training crops pooled from prefix sums must equal pooling the window itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xlbench.encoders.base import masked_pool
from xlbench.inputs import FrozenInputs, WaveInputs, random_crops


def frames_bank(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = [250, 120, 100, 30, 1]  # longer, equal to and shorter than a 100-frame crop
    return {f"u{i}": (3 * rng.standard_normal((n, 6)) + i).astype(np.float16) for i, n in enumerate(lengths)}


def matching_window(frames: np.ndarray, pooled: torch.Tensor, crop: int, how: str) -> int | None:
    """The start of the window whose pooled vector equals ``pooled``, if any."""
    full = torch.from_numpy(frames.astype(np.float32))
    n = min(len(frames), crop)
    for start in range(len(frames) - n + 1):
        ref = masked_pool(full[None, start : start + n], torch.tensor([n]), how)[0]
        if torch.allclose(ref, pooled, atol=2e-3, rtol=1e-3):
            return start
    return None


@pytest.mark.parametrize("how", ["mean", "mean+std", "mean+max"])
def test_training_crops_are_pooled_windows_of_the_frames(how: str) -> None:
    bank = frames_bank()
    inputs = FrozenInputs(bank, frame_rate=50.0, crop_seconds=2.0, pooling=how)  # crop = 100 frames
    keys = list(bank) * 3
    batch = inputs.train_batch(keys, np.random.default_rng(7))
    dim = 12 if how == "mean+std" else 6
    assert batch.x.shape == (len(keys), dim) and batch.x.dtype == torch.float32
    starts = [matching_window(bank[k], batch.x[i], 100, how) for i, k in enumerate(keys)]
    assert all(s is not None for s in starts), starts
    assert starts[3] == starts[4] == 0  # utterances shorter than the crop are taken whole
    # Random starts: the 250-frame utterance is not cut at the same place three times.
    assert len({starts[0], starts[5], starts[10]}) > 1


@pytest.mark.parametrize("how", ["mean", "mean+std", "mean+max"])
def test_evaluation_vectors_pool_whole_utterances(how: str) -> None:
    bank = frames_bank(1)
    inputs = FrozenInputs(bank, frame_rate=50.0, pooling=how)
    batch = inputs.eval_batch(["u3", "u0"])
    for row, key in zip(batch.x, ["u3", "u0"], strict=True):
        full = torch.from_numpy(bank[key].astype(np.float32))[None]
        torch.testing.assert_close(row, masked_pool(full, torch.tensor([full.shape[1]]), how)[0], atol=2e-3, rtol=1e-3)
    assert inputs.length("u0") == 250


def test_crops_depend_on_the_rng_only() -> None:
    inputs = FrozenInputs(frames_bank(), frame_rate=50.0, pooling="mean+std")
    a = inputs.train_batch(["u0"] * 4, np.random.default_rng(3)).x
    b = inputs.train_batch(["u0"] * 4, np.random.default_rng(3)).x
    c = inputs.train_batch(["u0"] * 4, np.random.default_rng(4)).x
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_waveform_crops_have_fixed_width_and_true_lengths() -> None:
    rows = [np.arange(10, dtype=np.float32), np.arange(3, dtype=np.float32)]
    batch = random_crops(rows, 5, np.random.default_rng(0))
    assert batch.x.shape == (2, 5) and batch.lengths.tolist() == [5, 3]
    start = int(batch.x[0, 0])
    assert batch.x[0].tolist() == list(range(start, start + 5))
    assert batch.x[1].tolist() == [0, 1, 2, 0, 0]
    assert WaveInputs.mode == "finetune"
