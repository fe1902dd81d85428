#!/usr/bin/env bash
# The precision and speed-path tests again with the CPU capped to AVX2, where the host has more (AVX-512, VNNI,
# bf16, AMX): torch's ATen kernels (ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA) and genrelens's own CPU
# detection (GENRELENS_CPU_FLAGS: the host's flags less avx512*/vnni/amx) then see an AVX2-only CPU.
# ONNX Runtime cannot be capped: it picks its kernels from cpuid (docs/performance.md says what that leaves out).
#   bash scripts/test_cpu_cap.sh [pytest options]      PYTHON=... to use another interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
. scripts/cpu_cap_env.sh
if [ "$CPU_CAP" = 0 ]; then
  echo "cpu cap: this CPU has nothing above AVX2 (or no /proc/cpuinfo): the main run already covers it"
  exit 0
fi
"$PYTHON" - <<'PY'
from genrelens.encoders import precision as prec

cpu = prec.describe_cpu()
assert cpu["torch_capability"] == "AVX2", cpu
assert not prec.candidates() and not prec.exact_int8(), cpu
print(f"cpu cap: torch {cpu['torch_capability']}, genrelens flags {' '.join(cpu['flags'])}, "
      f"candidates {cpu['candidates'] or 'none'}; ONNX Runtime still sees the real CPU")
PY
exec "$PYTHON" -m pytest -q tests/test_precision.py tests/test_speed_paths.py tests/test_quantize_cwd.py "$@"
