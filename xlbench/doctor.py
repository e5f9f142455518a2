"""``xlbench doctor``: what this machine has and lacks for xlbench, with a fix for each problem.

Every check looks, none repairs and none touches the network: torch's build and device, the data
home (write access and free disk), the Hugging Face cache, encoder weights, the MLflow store,
the synthetic-corpus generator, the optional ``datasets`` package and the real corpora.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xlbench import hub

Status = Literal["ok", "warn", "fail"]
#: below this much free space in the data home a download or a feature cache will not fit
FAIL_BELOW_GB = 1.0
WARN_BELOW_GB = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _existing_parent(path: Path) -> Path | None:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return None


def _writable(folder: Path) -> str | None:
    """None if a file can be created in ``folder`` (created if missing), else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".xlbench-doctor-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _free_gb(path: Path) -> float | None:
    base = _existing_parent(path)
    if base is None:
        return None
    try:
        return shutil.disk_usage(base).free / 1e9
    except OSError:
        return None


def check_torch() -> list[Check]:
    import torch

    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    detail = f"torch {torch.__version__} ({build})"
    if torch.cuda.is_available():
        return [Check("torch", "ok", f"{detail}; device cuda: {torch.cuda.get_device_name(0)}")]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return [Check("torch", "ok", f"{detail}; device mps")]
    if shutil.which("nvidia-smi") and not torch.version.cuda:
        return [
            Check(
                "torch",
                "warn",
                f"{detail}; this machine has an NVIDIA GPU that torch cannot use",
                "install a CUDA build of torch (https://pytorch.org/get-started/locally/)",
            )
        ]
    return [
        Check(
            "torch",
            "warn",
            f"{detail}; device cpu (logmel-stats and cached frozen features are fine; HuBERT extraction and "
            "--finetune are slow)",
            "use a machine with a GPU for HuBERT-size encoders",
        )
    ]


def check_data_home() -> list[Check]:
    from xlbench.home import data_home

    home = data_home()
    why = _writable(home)
    if why:
        return [Check("data home", "fail", f"{home}: cannot write ({why})", "set XLBENCH_HOME to a writable folder")]
    free = _free_gb(home)
    out = [Check("data home", "ok", f"{home} (writable)")]
    if free is None:
        return out
    status: Status = "fail" if free < FAIL_BELOW_GB else "warn" if free < WARN_BELOW_GB else "ok"
    fix = "" if status == "ok" else "free space there, or set XLBENCH_HOME to a larger disk"
    out.append(Check("free disk (data home)", status, f"{free:,.1f} GB free", fix))
    return out


def check_hf_cache() -> list[Check]:
    cache = hub.cache_dir()
    mode = f"offline ({hub.offline_reason()}): nothing is downloaded" if hub.offline() else f"online: {hub.endpoint()}"
    base = _existing_parent(cache)
    if base is None or not os.access(base, os.W_OK):
        return [
            Check(
                "Hugging Face cache",
                "warn",
                f"{cache} is not writable; {mode}",
                "set HF_HOME or HF_HUB_CACHE to a writable folder (weights are downloaded there)",
            )
        ]
    free = _free_gb(cache)
    space = f", {free:,.1f} GB free" if free is not None else ""
    return [Check("Hugging Face cache", "ok", f"{cache}{space}; {mode}")]


def check_weights() -> list[Check]:
    from xlbench.weights import list_weights

    out = []
    for entry in list_weights():
        if entry.name not in ("hubert", "byols"):
            continue
        if entry.present:
            out.append(Check(f"weights: {entry.name}", "ok", f"{entry.revision} in {entry.location}"))
        else:
            use = "runs use logmel-stats with --encoder auto" if entry.name == "hubert" else "--encoder byols"
            out.append(
                Check(
                    f"weights: {entry.name}",
                    "warn",
                    f"not on this machine ({use}; downloaded on first use of --encoder {entry.name})",
                    f"xlbench weights fetch {entry.name}",
                )
            )
    return out


def check_mlflow() -> list[Check]:
    from xlbench import tracking

    if not tracking.enabled():
        return [Check("MLflow", "ok", "tracking off (XLBENCH_MLFLOW=0); run records are still written")]
    if importlib.util.find_spec("mlflow") is None:
        return [Check("MLflow", "fail", "the mlflow package is missing", "pip install mlflow-skinny")]
    uri = tracking.tracking_uri()
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        why = _writable(db.parent)
        if why:
            return [
                Check("MLflow", "fail", f"{db.parent}: cannot write ({why})", "set XLBENCH_HOME or MLFLOW_TRACKING_URI")
            ]
        return [Check("MLflow", "ok", f"local store {db}")]
    return [Check("MLflow", "ok", f"tracking server {uri} (not contacted)")]


def check_generator() -> list[Check]:
    if importlib.util.find_spec("espeakng_loader") is None:
        return [
            Check("espeak-ng", "fail", "espeakng-loader is missing: the synthetic corpus cannot be generated",
                  "pip install espeakng-loader")
        ]
    import espeakng_loader

    try:
        lib = Path(espeakng_loader.get_library_path())
    except Exception as exc:  # the loader raises RuntimeError when its files are missing
        reinstall = "pip install --force-reinstall espeakng-loader"
        return [Check("espeak-ng", "fail", f"espeakng-loader is broken ({exc})", reinstall)]
    if not lib.is_file():
        return [Check("espeak-ng", "fail", f"{lib} is missing", "pip install --force-reinstall espeakng-loader")]
    return [Check("espeak-ng", "ok", f"{lib.name} (generates the synthetic corpus)")]


def check_datasets() -> list[Check]:
    if importlib.util.find_spec("datasets") is None:
        return [
            Check("datasets", "warn", "not installed: `xlbench data import` (Hub copies) is unavailable",
                  "pip install 'xlbench[hub]'")
        ]
    import datasets

    return [Check("datasets", "ok", f"datasets {datasets.__version__} (for `xlbench data import`)")]


def check_corpora() -> list[Check]:
    from xlbench.errors import DataError
    from xlbench.home import manifests_dir
    from xlbench.manifest import load_manifest
    from xlbench.protocol import REAL_CORPORA
    from xlbench.sources import get_command

    try:
        manifests_dir()
    except DataError as exc:
        return [Check("corpora", "fail", str(exc), "set XLBENCH_HOME to a writable folder")]
    out = []
    for name in REAL_CORPORA:
        try:
            manifest = load_manifest(name)
        except DataError as exc:
            out.append(Check(f"corpus: {name}", "fail", str(exc), f"xlbench data prepare --corpus {name} --root DIR"))
            continue
        if manifest is None:
            out.append(Check(f"corpus: {name}", "warn", "not prepared", get_command(name)))
        else:
            out.append(Check(f"corpus: {name}", "ok", f"{len(manifest.utterances)} utterances from {manifest.root}"))
    return out


CHECKS = (check_torch, check_data_home, check_hf_cache, check_weights, check_mlflow, check_generator, check_datasets,
          check_corpora)


def run_checks() -> list[Check]:
    rows: list[Check] = []
    for check in CHECKS:
        try:
            rows.extend(check())
        except Exception as exc:  # a check that breaks is itself a finding, not a crash
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            name = check.__name__.removeprefix("check_").replace("_", " ")
            rows.append(Check(name, "fail", f"check failed: {first}"))
    return rows
