#!/usr/bin/env bash
# Sets up aekit in ./.venv on a fresh machine:  bash scripts/setup.sh [EXTRA]   (EXTRA: "test")
# When the environment has no torch yet, the CPU build 2.13.0 goes in first: a plain "torch" requirement
# would otherwise pull several GB of CUDA packages. An existing torch (e.g. a CUDA build) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python3 -m venv .venv
py=.venv/bin/python
if ! "$py" -c "import torch" 2>/dev/null; then
    "$py" -m pip install --quiet "torch==2.13.0"
fi
if [ -n "$extra" ]; then
    "$py" -m pip install --quiet -e ".[$extra]"
else
    "$py" -m pip install --quiet -e .
fi
