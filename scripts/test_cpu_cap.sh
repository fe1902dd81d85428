#!/usr/bin/env bash
# The precision and speed-path tests again with the CPU capped to AVX2, where the host has more (AVX-512, VNNI,
# bf16, AMX): cpuid itself (scripts/cpuid_avx2.c, so ONNX Runtime, OpenVINO, oneDNN, torch and numpy pick their
# AVX2 kernels), torch's ATen kernels (ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA) and genrelens's own CPU
# detection (GENRELENS_CPU_FLAGS: the host's flags less avx512*/vnni/amx) then see an AVX2-only CPU. Without gcc
# or CPUID faulting, cpuid is not capped and ONNX Runtime keeps the real CPU's kernels (it says so).
#   bash scripts/test_cpu_cap.sh [pytest options]      PYTHON=... to use another interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
. scripts/cpu_cap_env.sh
"$PYTHON" -c 'import pytest' 2>/dev/null || {
  echo "cpu cap: no pytest in $PYTHON: run \`bash scripts/setup.sh --test\` first" >&2
  exit 1
}
if [ "$CPU_CAP" = 0 ]; then
  echo "cpu cap: this CPU has nothing above AVX2 (or no /proc/cpuinfo): the main run already covers it"
  exit 0
fi
echo "cpu cap: flags removed: $(comm -23 <(tr ' ' '\n' <<<"$host_flags" | sort -u) \
  <(tr ' ' '\n' <<<"$capped_flags" | sort -u) | tr '\n' ' ')"
CPUID_CAP=$CPUID_CAP "$PYTHON" - <<'PY'
import os

try:
    from numpy._core._multiarray_umath import __cpu_features__ as numpy_cpu  # numpy >= 2
except ImportError:
    from numpy.core._multiarray_umath import __cpu_features__ as numpy_cpu

from genrelens.encoders import precision as prec

cpu = prec.describe_cpu()
assert cpu["torch_capability"] == "AVX2", cpu
assert not prec.candidates() and not prec.exact_int8(), cpu
cpuid = os.environ["CPUID_CAP"] == "1"
assert not cpuid or not any(v for k, v in numpy_cpu.items() if k.startswith("AVX512")), "cpuid still shows AVX-512"
print(f"cpu cap: torch {cpu['torch_capability']}, genrelens flags {' '.join(cpu['flags'])}, "
      f"candidates {cpu['candidates'] or 'none'}; "
      + ("cpuid capped too: ONNX Runtime and OpenVINO run their AVX2 kernels" if cpuid
         else "cpuid not capped: ONNX Runtime still runs this CPU's kernels"))
PY
exec "$PYTHON" -m pytest -q tests/test_precision.py tests/test_speed_paths.py tests/test_quantize_cwd.py "$@"
