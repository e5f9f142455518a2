#!/usr/bin/env bash
# The GPU measurements of issue 15 in one script: every figure printed against its goal.
#
# Once, on a machine with pip and this project's venv (the GPU machine has no network):
#     bash benchmarks/gpu_check.sh prepare
# downloads into .whl/ (git-ignored) the wheels the GPU image lacks: pydantic, soundfile, soxr,
# platformdirs, espeakng-loader and their needs, for CPython 3.12 on x86-64 (15 MB).
#
# On the GPU machine (the `device` tool: run with carry [".whl"] and timeout_s 600):
#     bash benchmarks/gpu_check.sh encoders   # stage A, about 4 minutes (estimated: never run on a GPU yet)
#     bash benchmarks/gpu_check.sh finetune   # stage B, about 5 minutes (estimated), right after A
#     bash benchmarks/gpu_check.sh            # both in one call: may pass the tool's 10-minute limit
# Two calls, each with timeout_s 600, the second while the machine is still warm, fit a 15-minute
# device budget with the machine's start; every step has its own time limit, so a slow step
# costs its own figure only.
# Logs and the profiler trace go to $OUT (the device tool brings them back), else ./gpu-check-out.
#
# CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh runs every step on a CPU with tiny sizes (a smoke
# test of this script, 3-4 minutes on 2 cores; its numbers measure nothing). There the paper
# recipe is only planned (--dry-run) and --per-gpu is refused, as both must be without a GPU.
#
# Stage A, extraction (benchmarks/bench_encoders.py, full-size HuBERT base with random weights):
#   GPU tests (pytest -m gpu); model-alone throughput for every kernel option and the fraction of
#   the bf16 bound (goal >= 0.30); the extraction path against the model alone (goal >= 0.8); the
#   data path alone from 48 kHz wav files by worker processes; the whole feature-cache path; the
#   cached-epoch speed-up with the prefix-sum path (goal >= 100x); a torch.profiler trace.
# Stage B, fine-tuning (benchmarks/bench_finetune.py): one paper-recipe run on a task sized like
#   English -> Italian (goal <= 180 s on an H100/H200), epoch time, peak GPU memory, the same seed
#   twice (goal: UA within 2 points under bf16); then end to end through the CLI on the generated
#   corpus: `xlbench reproduce table4 --recipe paper` and `xlbench grid --per-gpu 2`.
set -u
cd "$(dirname "$0")/.."
STAGE="${1:-all}"
PKGS=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.7.0 typing-inspection==0.4.5
      typing-extensions==4.15.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0
      platformdirs==4.14.9 espeakng-loader==0.2.4)

if [ "$STAGE" = prepare ]; then
  mkdir -p .whl
  PY="${PYTHON:-.venv/bin/python}"
  for pkg in "${PKGS[@]}"; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$pkg" || { echo "failed: $pkg"; exit 1; }
  done
  du -sh .whl; ls .whl
  exit 0
fi

OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
DEV="${CHECK_DEVICE:-cuda}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 XLBENCH_MLFLOW=0 XLBENCH_PROGRESS=0
export XLBENCH_HOME=/tmp/xlbench-home MPLBACKEND=Agg
PY="${PYTHON:-python3}"

setup() {
  if ! $PY -c "import pydantic, soundfile, soxr, platformdirs, espeakng_loader" 2>/dev/null && [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || { echo "installing .whl failed"; exit 1; }
    export PYTHONPATH=/tmp/site
  fi
  # the package itself (its entry points register the methods and encoders); no network needed
  $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
    || { echo "pip install -e . failed"; $PY -m pip install --no-index --no-deps --no-build-isolation -e . ; exit 1; }
  $PY - <<'EOF' || exit 1
import importlib, torch
missing = [m for m in ("pydantic", "soundfile", "soxr", "platformdirs", "transformers", "xlbench") if importlib.util.find_spec(m) is None]
if missing:
    raise SystemExit(f"missing on this machine: {', '.join(missing)} (run `bash benchmarks/gpu_check.sh prepare` where pip works and carry .whl)")
print(f"python ok: torch {torch.__version__}, CUDA {torch.cuda.is_available()} ({torch.cuda.get_device_name() if torch.cuda.is_available() else '-'})")
EOF
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
}

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log
  local name="$1" limit="$2"; shift 2
  echo; echo "== $name (at most ${limit} s): $*"
  local t0=$SECONDS
  timeout --signal=INT "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "-- $name: exit $rc after $((SECONDS - t0)) s"
}

if [ "$DEV" = cuda ]; then
  ENC_SIZES=(--seconds 1800 --utterances 1000 --data-files 1000 --reencode-budget 15 --compile)
  FT_SIZES=(--size paper --epochs 100 --repeat-epochs 5)
  PLAN_ONLY=()
else  # a smoke test of every step on a CPU
  ENC_SIZES=(--seconds 8 --utterances 10 --data-files 12 --reencode-budget 3 --batch-seconds 8)
  FT_SIZES=(--size tiny --tiny --epochs 2 --repeat-epochs 1)
  PLAN_ONLY=(--dry-run)
fi

stage_a() {
  step gpu-tests 150 $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu_path.py tests/test_features.py
  step bench-encoders 360 $PY benchmarks/bench_encoders.py --device "$DEV" --encoders hubert-base --kernels \
    --data-path --cache-path --profile "$OUT/profile" "${ENC_SIZES[@]}"
}

stage_b() {
  step bench-finetune 330 env PYTHONPATH="${PYTHONPATH:-}:$PWD/methods:$PWD/baselines" \
    $PY benchmarks/bench_finetune.py --device "$DEV" "${FT_SIZES[@]}"
  # end to end through the CLI, on the generated corpus (espeak-ng, made here in ~10 s)
  $PY -c "from xlbench.encoders.tiny import random_hubert_base; random_hubert_base('/tmp/hubert-base-random')"
  step reproduce-paper 150 $PY -m xlbench reproduce table4 --recipe paper --encoder-option path=/tmp/hubert-base-random \
    --data synthetic --targets italian --seeds 0 --device "$DEV" --results /tmp/rp --out /tmp/rp-out "${PLAN_ONLY[@]}"
  step grid-per-gpu 90 $PY -m xlbench grid --methods crosslingual --targets italian,german --seeds 0 --data synthetic \
    --per-gpu 2 --encoder logmel-stats --set epochs=5 --results /tmp/grid
}

T0=$SECONDS
setup
case "$STAGE" in
  all) stage_a; stage_b ;;
  encoders) stage_a ;;
  finetune) stage_b ;;
  *) echo "usage: $0 [prepare|all|encoders|finetune]"; exit 2 ;;
esac

echo; echo "== summary ($STAGE, $((SECONDS - T0)) s in all; logs in $OUT)"
grep -h -E "^GOAL|speed-up goal|fastest:|kernels \{|model only|through the feature cache|data path alone|^run, E=|repeatability|crop gather|peak GPU|passed|failed|error:|records:|grid:|recipe paper" \
  "$OUT"/*.log 2>/dev/null | sed 's/^ *//'
