#!/usr/bin/env bash
# Sets up aekit with every extra ("all") in ./.venv on a fresh machine:  bash scripts/setup.sh [EXTRA]
# (EXTRA: "test", installed on top of "all")
# When the environment has no torch yet, the CPU build 2.13.0 goes in first: a plain "torch" requirement
# would otherwise pull several GB of CUDA packages. An existing torch (e.g. a CUDA build) is kept.
# With EXTRA "test" it also installs Debian's chromium when /usr/bin/chromium is missing: the dashboard's
# browser test drives that browser (Playwright's own browser download needs the internet at test time).
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"
python3 -m venv .venv
py=.venv/bin/python
if ! "$py" -c "import torch" 2>/dev/null; then
    "$py" -m pip install --quiet "torch==2.13.0"
fi
# "all": the dashboard, tables, plots and metrics extras on top of the core (see pyproject.toml)
"$py" -m pip install --quiet -e ".[all${extra:+,$extra}]"
if [ "$extra" = "test" ] && [ ! -x /usr/bin/chromium ]; then
    # A failure here only warns: every other test still runs, and the browser test then fails saying why.
    sudo=""
    if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; }; then
        echo "scripts/setup.sh: warning: could not install Debian's chromium, which the dashboard's" \
            "browser test needs; run 'apt-get install chromium' as root" >&2
    fi
fi
