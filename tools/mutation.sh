#!/usr/bin/env bash
# Mutation testing of the guarantee modules (docs/testing.md). Not part of CI: it takes long.
#   tools/mutation.sh                      every module of [tool.xlbench-mutation] in pyproject.toml
#   tools/mutation.sh xlbench/tasks.py     only the ones named
# Env: MUTATION_CHILDREN (parallel mutants, default: CPU count), MUTATION_OUT (logs, survivors),
#      MUTATION_NAMES (space-separated mutant names: re-check only those, e.g. a run's survivors).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python tools/mutation.py "$@"
