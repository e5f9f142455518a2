#!/usr/bin/env bash
# Regenerate the committed synthetic leaderboard (leaderboards/synthetic) from nothing:
# the paper's tables and Fig. 3 with the CPU default encoder, an encoder comparison, then render.
#
#   tools/make_synthetic_board.sh [ENCODER]     (default: opensmile-compare, the most accurate CPU encoder measured)
#
# Runs in a fresh temporary data home with MLflow off; the records go straight into
# leaderboards/synthetic/records (compact JSON). Existing records are reused, so an interrupted
# regeneration resumes; delete the records folder first to start from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
encoder="${1:-opensmile-compare}"
board=leaderboards/synthetic
records="$board/records"
export XLBENCH_HOME="${XLBENCH_HOME:-$(mktemp -d -t xlbench-board-XXXXXX)}"
export XLBENCH_MLFLOW=0
workers="${WORKERS:-2}"
echo "data home: $XLBENCH_HOME; encoder: $encoder; records: $records"
# Generated pages and figures are rebuilt from the records below; clear them so no page of a setting
# that is no longer reproduced is left behind (leaderboard check would call it stale).
rm -rf "$board/reproduction" "$board/plots"

# The paper's Tables 4-8 and Fig. 3 (bounds, pseudolabel hard/soft at N_k 0/25/50/100, the tau and
# rebalancing ablations, and the 4-emotion Table 6 with DANN and NNPM), three seeds each.
xlbench reproduce all --encoder "$encoder" --data synthetic --seeds 0,1,2 --workers "$workers" \
    --results "$records" --out "$board/reproduction"

# The encoder comparison (issue 16): the bounds and pseudolabel at N_k 0 for every CPU encoder, and
# the lower bound with the MLP head beside the paper's linear one.
for enc in logmel-stats opensmile-egemaps opensmile-compare; do
    xlbench grid --methods crosslingual,multilingual,pseudolabel --encoder "$enc" --n-labeled 0 \
        --seeds 0,1,2 --data synthetic --set pseudolabel.mode=hard --workers "$workers" --results "$records"
    xlbench grid --methods crosslingual --encoder "$enc" --n-labeled 0 --seeds 0,1,2 --data synthetic \
        --set head_type=mlp --workers "$workers" --results "$records"
done

xlbench leaderboard validate --records "$records"
xlbench leaderboard render --records "$records" --out "$board"
xlbench leaderboard check
