"""``xlbench reproduce --recipe paper`` and ``xlbench grid --per-gpu``: what they plan, what they
refuse on a CPU (in one line, with the estimated time), and how a page says which recipe made it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch.utils.flop_counter import FlopCounterMode

from xlbench.cli import main
from xlbench.encoders import build_encoder
from xlbench.encoders.cost import flops_per_audio_second
from xlbench.encoders.tiny import tiny_hubert
from xlbench.errors import ConfigError
from xlbench.grid import GridJob, gpu_slots
from xlbench.languages import load_language
from xlbench.recipes import CPU_GFLOPS_PER_CORE, RECIPES, RunSize, check_recipe, recipe_of, run_seconds
from xlbench.report.paper_pages import Scope, reproduction_page
from xlbench.reproduce import reproduce, run_sizes


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_hubert(tmp_path_factory.mktemp("tiny") / "hubert")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# -- what a run costs ---------------------------------------------------------------------------


def test_flops_from_the_config_are_those_of_the_model(tiny_dir: Path) -> None:
    """Counted on the meta device from config.json alone == counted on the loaded model (eager
    attention: torch's FLOP counter does not see inside the CPU's fused attention kernel)."""
    enc = build_encoder("hubert", {"path": str(tiny_dir), "attn": "eager"}).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        enc.model(torch.zeros(1, 4 * 16_000))
    assert flops_per_audio_second("hubert", {"path": str(tiny_dir)}) == counter.get_total_flops() / 4
    # HuBERT base without weights on the machine: its config's defaults, counted here by hand for
    # 4 s (64,000 samples): frames after each convolution, 2 FLOP per multiply-add
    t = [12799, 6399, 3199, 1599, 799, 399, 199]
    convs = 512 * 10 * 2 * t[0] + sum(512 * 512 * 3 * 2 * n for n in t[1:5]) + sum(512 * 512 * 2 * 2 * n for n in t[5:])
    projection, positional = 199 * 512 * 768 * 2, 200 * 768 * 48 * 128 * 2  # conv of 200 outputs, one cut
    layer = 199 * (4 * 768 * 768 + 2 * 768 * 3072) * 2 + 2 * 199 * 199 * 768 * 2  # projections, FFN, attention
    assert flops_per_audio_second("hubert", {}) == (convs + projection + positional + 12 * layer) / 4
    assert flops_per_audio_second("logmel-stats", {}) is None


def test_run_seconds_by_hand() -> None:
    size = RunSize(train_utterances=100, eval_seconds=50.0, test_seconds=30.0)
    # 10 epochs x (3 x 100 crops x 2 s + 50 s) + 30 s = 6530 audio-s; x 1e9 FLOP / 1e10 FLOP/s
    assert run_seconds(size, 1e9, 10.0, epochs=10, crop_seconds=2.0) == pytest.approx(653.0)


def test_run_sizes_count_the_manifests(synthetic_home) -> None:
    english, italian = load_language("english", "synthetic"), load_language("italian", "synthetic")
    job = GridJob("crosslingual", "italian", 0, (0, 1))
    upper = GridJob("multilingual", "italian", -1, (0,))
    sizes = run_sizes([job, upper], "synthetic", None)
    assert len(sizes) == 3 and sizes[0] == sizes[1]
    assert sizes[0].train_utterances == len(english.parts["train"])  # D_s only
    assert sizes[2].train_utterances == len(english.parts["train"]) + len(italian.parts["train"])
    val = sum(u.duration for u in english.parts["val"] + italian.parts["val"])
    assert sizes[0].eval_seconds == pytest.approx(val)


# -- the paper recipe -----------------------------------------------------------------------------


def test_paper_recipe_on_a_cpu_is_refused_in_one_line_with_the_estimate(synthetic_home, tmp_path: Path) -> None:
    res = invoke("reproduce", "table4", "--recipe", "paper", "--data", "synthetic", "--device", "cpu",
                 "--targets", "italian", "--seeds", "0", "--results", str(tmp_path / "r"))
    assert res.exit_code != 0
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("error: recipe paper: 1 fine-tuning run(s) of hubert") and "refused" in line
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()
    # the estimate, worked out here: HuBERT base on synthetic English -> Italian, E = 100
    english, italian = load_language("english", "synthetic"), load_language("italian", "synthetic")
    audio = 100 * (3 * len(english.parts["train"]) * 2.0
                   + sum(u.duration for u in english.parts["val"] + italian.parts["val"]))
    audio += sum(u.duration for u in english.parts["test"] + italian.parts["test"])
    seconds = audio * flops_per_audio_second("hubert", {}) / (CPU_GFLOPS_PER_CORE * 1e9 * os.cpu_count())
    shown = line.split("would take about ")[1].split(" on this CPU")[0]
    value, unit = shown.split()
    factor = {"s": 1, "min": 60, "h": 3600, "days": 86400}[unit]
    assert float(value) * factor == pytest.approx(seconds, rel=0.1, abs=factor)


def test_paper_recipe_plans_fine_tuned_hubert_with_the_papers_settings(synthetic_home, tiny_dir: Path,
                                                                       tmp_path: Path) -> None:
    lines: list[str] = []
    reproduce("table4", targets=["italian", "german"], seeds=(0,), data="synthetic", device="cpu", dry_run=True,
              results=tmp_path, recipe="paper", encoder_options=(("path", str(tiny_dir)),), emit=lines.append)
    assert lines[0].startswith("reproduce table4: 2 job(s), 2 run(s)")
    # the tiny model fits a CPU: an estimate, no refusal
    assert lines[1].startswith("recipe paper: 2 fine-tuning run(s) of hubert") and "refused" not in lines[1]
    # the paper's E/batch/crop are the built-ins' defaults: nothing extra in the labels
    assert lines[2] == "[1/2] crosslingual · italian · N_k 0 · 5 emotions · seeds 0"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sets": {"epochs": 5}}, "--recipe paper fixes epochs=100"),
        ({"encoder": "byols"}, "--recipe paper fine-tunes HuBERT base"),
        ({"recipe": "frozen", "finetune": True}, "--finetune contradicts --recipe frozen"),
    ],
)
def test_settings_that_contradict_a_recipe_are_one_line(kwargs: dict, message: str, tmp_path: Path) -> None:
    kwargs = {"recipe": "paper", **kwargs}
    with pytest.raises(ConfigError, match=message):
        reproduce("table4", targets=["italian"], seeds=(0,), data="synthetic", dry_run=True, results=tmp_path,
                  **kwargs)


def test_check_recipe_keeps_what_agrees() -> None:
    paper = RECIPES["paper"]
    assert check_recipe(paper, "auto", {"epochs": 100}, finetune=True) == "hubert"
    assert check_recipe(RECIPES["frozen"], "logmel-stats", {}, finetune=False) == "logmel-stats"


def test_which_recipe_a_record_is() -> None:
    paper = {"epochs": 100, "batch_size": 100, "crop_seconds": 2.0, "lr": 1e-3}
    assert recipe_of("finetune", "hubert", paper) == "paper"
    assert recipe_of("frozen", "hubert", paper) == "frozen"
    assert recipe_of("finetune", "byols", paper) == "custom"
    assert recipe_of("finetune", "hubert", {**paper, "epochs": 5}) == "custom"


def test_a_page_says_which_recipe_made_it(tmp_path: Path) -> None:
    scope = Scope("hubert", "finetune", "paper", False, (0, 1, 2), recipe="paper")
    text = reproduction_page(["table4"], [], dict(RECIPES["paper"].fixed), scope, ["italian"], tmp_path,
                             tmp_path / "page.md")
    assert "Ours: hubert (finetune, recipe paper)" in text
    command = next(line for line in text.splitlines() if "Regenerate" in line)
    assert "--recipe paper" in command and "--finetune" not in command and "--set" not in command
    assert '"recipe":"paper"' in text.splitlines()[0]  # kept in the marker: `leaderboard check` renders it again
    frozen = reproduction_page(["table4"], [], {}, Scope("hubert", "frozen", "paper", False, (0,)), ["italian"],
                               tmp_path, tmp_path / "page.md")
    assert "recipe paper" not in frozen and '"recipe"' not in frozen and "--recipe" not in frozen


# -- several runs on one GPU ----------------------------------------------------------------------


def test_per_gpu_slots() -> None:
    assert gpu_slots(3, "auto", "local", visible=["0", "1"]).devices == ("0", "1")
    assert gpu_slots(3, "cuda:1", "local", visible=["4", "7"]).devices == ("7",)
    for args, message in [
        ((2, "auto", "local", []), "torch sees no CUDA device here; on a CPU use --workers"),
        ((2, "auto", "slurm", ["0"]), "--per-gpu is for the local executor"),
        ((0, "auto", "local", ["0"]), "--per-gpu must be between 1 and"),
        ((2, "cpu", "local", ["0"]), "use --device auto, cuda or cuda:N"),
        ((2, "cuda:3", "local", ["0"]), "no such CUDA device"),
    ]:
        with pytest.raises(ConfigError, match=message):
            gpu_slots(*args[:3], visible=args[3])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_per_gpu_without_cuda_is_one_line() -> None:
    res = invoke("grid", "--methods", "crosslingual", "--per-gpu", "2", "--data", "synthetic")
    assert res.exit_code != 0 and res.output.strip().splitlines() == [
        "error: --per-gpu N shares a CUDA GPU between runs, and torch sees no CUDA device here; on a CPU use "
        "--workers N (N processes)"]


@pytest.mark.gpu
@pytest.mark.slow
def test_per_gpu_runs_share_the_gpu(synthetic_home, no_mlflow, tmp_path: Path) -> None:
    res = invoke("grid", "--methods", "crosslingual", "--targets", "italian,german", "--seeds", "0",
                 "--data", "synthetic", "--per-gpu", "2", "--set", "epochs=2", "--encoder", "logmel-stats",
                 "--results", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "r").glob("*/*.json"))) == 2
