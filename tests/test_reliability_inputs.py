"""Issue 13, point 2: inputs are validated at the edge, through the real CLI.

Numeric method options have documented finite bounds (tested over every field of every built-in
method's config, against docs/reliability.md); command-line numbers are bounded; corpus names
are registered names, never paths; a wav shorter than its header says is corrupt; a folder
named like an audio file is reported.
"""

from __future__ import annotations

import math
from pathlib import Path

import annotated_types as at
import pytest
from click.testing import CliRunner

from tests.corpus_fixtures import make_shemo, write_wav
from tests.test_reliability_errors import one_line_error
from xlbench.audio import AudioError, inspect_audio
from xlbench.cli import main
from xlbench.errors import ConfigError
from xlbench.method import get_method, make_config

BUILT_IN = ("crosslingual", "multilingual", "pseudolabel", "dann", "nnpm")
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


def _declared_in(cls: type, name: str) -> type:
    return next(k for k in reversed(cls.__mro__) if name in getattr(k, "__annotations__", {}))


def numeric_fields() -> list[tuple[str, str]]:
    """(method, option) for every int or float option of the built-in methods."""
    out = []
    for method in BUILT_IN:
        for name, f in get_method(method).Config.model_fields.items():
            kinds = getattr(f.annotation, "__args__", (f.annotation,))
            if any(k in (int, float) for k in kinds) and bool not in kinds:
                out.append((method, name))
    return out


def bounds(method: str, name: str) -> tuple[str | None, float | None, str | None, float | None]:
    """(lower op, lower, upper op, upper) of an option, from its pydantic constraints."""
    lo_op = lo = hi_op = hi = None
    for c in get_method(method).Config.model_fields[name].metadata:
        if isinstance(c, at.Ge):
            lo_op, lo = "≥", c.ge
        elif isinstance(c, at.Gt):
            lo_op, lo = ">", c.gt
        elif isinstance(c, at.Le):
            hi_op, hi = "≤", c.le
        elif isinstance(c, at.Lt):
            hi_op, hi = "<", c.lt
    return lo_op, lo, hi_op, hi


@pytest.mark.parametrize(("method", "name"), numeric_fields(), ids=lambda v: v)
def test_numeric_option_has_documented_finite_bounds(method: str, name: str) -> None:
    lo_op, lo, hi_op, hi = bounds(method, name)
    assert lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi), (method, name)
    owner = _declared_in(get_method(method).Config, name).__name__
    who = "every built-in method" if owner == "TrainConfig" else method
    assert f"| `{name}` | {who} | {lo_op} {lo} | {hi_op} {hi} |" in DOC.read_text(), (method, name)


@pytest.mark.parametrize(("method", "name"), numeric_fields(), ids=lambda v: v)
def test_numeric_option_refuses_values_past_its_bounds(method: str, name: str) -> None:
    _lo_op, lo, hi_op, hi = bounds(method, name)
    cls = get_method(method)
    above = hi if hi_op == "<" else hi * 2 + 1
    below = lo - 1
    for bad in (above, below, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=f"option {name}"):
            make_config(cls, {name: bad})


@pytest.mark.parametrize("value", ["epochs=1e20", "epochs=1000000000", "lr=NaN", "weight_decay=Infinity",
                                   "batch_size=1e12", "crop_seconds=1e9"])
def test_run_refuses_insane_set_values_in_one_line(value: str) -> None:
    key = value.split("=")[0]
    res = CliRunner().invoke(main, ["run", "--method", "pseudolabel", "--target", "italian", "--set", value])
    one_line_error(res, f"pseudolabel option {key}")


@pytest.mark.parametrize(
    "argv",
    [
        ["grid", "--methods", "crosslingual", "--workers", "0", "--dry-run"],
        ["grid", "--methods", "crosslingual", "--workers", "100000", "--dry-run"],
        ["grid", "--methods", "crosslingual", "--timeout-min", "0", "--dry-run"],
        ["features", "extract", "--encoder", "logmel-stats", "--batch-seconds", "1e12"],
        ["leaderboard", "validate", "--min-seeds", "-1"],
        ["leaderboard", "pca", "--target", "italian", "--seed", "-1"],
    ],
    ids=["workers-0", "workers-huge", "timeout-0", "batch-seconds", "min-seeds", "pca-seed"],
)
def test_command_line_numbers_are_bounded(argv: list[str]) -> None:
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2 and "is not in the range" in res.output, res.output
    assert "Traceback" not in res.output


def test_parse_seeds_bounds() -> None:
    from xlbench.cli.runs import MAX_SEEDS, parse_seeds

    assert parse_seeds(f"0-{MAX_SEEDS - 1}") == tuple(range(MAX_SEEDS))  # the most allowed
    assert parse_seeds("4294967295") == (4294967295,)
    assert parse_seeds("3, 0-1") == (3, 0, 1)
    with pytest.raises(ConfigError, match="at most"):
        parse_seeds(f"0-{MAX_SEEDS}")
    with pytest.raises(ConfigError, match="distinct"):
        parse_seeds("1,0-2")


# -- names, never paths -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../somewhere/evil", "/etc/passwd", "synth_it/../x", "..", "Emovo.json"])
def test_features_extract_refuses_a_path_as_corpus_name(name: str, private_home: Path) -> None:
    # a file where the path would lead: it must never be read
    evil = private_home / "manifests" / f"{name}.json"
    if not name.startswith("/"):
        evil.parent.mkdir(parents=True, exist_ok=True)
        evil.resolve().parent.mkdir(parents=True, exist_ok=True)
        evil.resolve().write_text("{not a manifest")
    res = CliRunner().invoke(main, ["features", "extract", "--encoder", "logmel-stats", "-c", name])
    line = one_line_error(res, "is not a corpus name")
    assert "corrupt" not in line


# -- audio that lies about its length, folders named like audio -------------------------------


def _truncated(path: Path, size: int = 300) -> Path:
    write_wav(path, seconds=0.5)
    path.write_bytes(path.read_bytes()[:size])
    return path


def test_a_wav_cut_to_300_bytes_is_corrupt(tmp_path: Path) -> None:
    path = _truncated(tmp_path / "cut.wav")
    with pytest.raises(AudioError, match=r"truncated: the header declares 16000 bytes of audio, the file holds 256"):
        inspect_audio(path)
    whole = write_wav(tmp_path / "whole.wav", seconds=0.5)
    assert inspect_audio(whole).frames == 8000  # 0.5 s at 16 kHz, the header and the data agree


def test_data_prepare_refuses_a_truncated_wav_and_skip_bad_skips_it(tmp_path: Path) -> None:
    root = make_shemo(tmp_path / "shemo", ["F01A01", "F01N01", "F01S01", "M01A01", "M01N01", "M01S01"], seconds=0.5)
    _truncated(root / "male" / "M01S01.wav")
    cli = CliRunner()
    res = cli.invoke(main, ["data", "prepare", "--corpus", "shemo", "--root", str(root)])
    one_line_error(res, "M01S01.wav: truncated", "--skip-bad")
    res = cli.invoke(main, ["data", "prepare", "--corpus", "shemo", "--root", str(root), "--skip-bad"])
    assert res.exit_code == 0, res.output
    assert "5 utterances kept" in res.output and "M01S01.wav: truncated" in res.output


def test_data_prepare_reports_a_folder_named_like_audio(tmp_path: Path) -> None:
    root = make_shemo(tmp_path / "shemo", ["F01A01", "F01N01", "M01A01", "M01N01"], seconds=0.3)
    (root / "male" / "M01S02.wav").mkdir()
    cli = CliRunner()
    res = cli.invoke(main, ["data", "prepare", "--corpus", "shemo", "--root", str(root)])
    one_line_error(res, "M01S02.wav", "a folder named like an audio file")
    res = cli.invoke(main, ["data", "prepare", "--corpus", "shemo", "--root", str(root), "--skip-bad"])
    assert res.exit_code == 0, res.output
    assert "male/M01S02.wav: a folder named like an audio file" in res.output
