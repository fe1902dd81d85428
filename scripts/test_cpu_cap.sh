#!/usr/bin/env bash
# The precision and speed-path tests again with the CPU capped to AVX2, where the host has more (AVX-512, VNNI,
# bf16, AMX): torch's ATen kernels (ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA) and genrelens's own CPU
# detection (GENRELENS_CPU_FLAGS: the host's flags less avx512*/vnni/bf16/amx) then see an AVX2-only CPU.
# ONNX Runtime cannot be capped: it picks its kernels from cpuid (docs/performance.md says what that leaves out).
#   bash scripts/test_cpu_cap.sh [pytest options]      PYTHON=... to use another interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
host_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true)
if [ -z "$host_flags" ]; then
  echo "cpu cap: no /proc/cpuinfo here: skipped"
  exit 0
fi
capped=$(tr ' ' '\n' <<<"$host_flags" | grep -vE '^(avx512|amx|avx_vnni|avx_vnni_int8|avx_ne_convert)' | tr '\n' ' ')
if [ "$(wc -w <<<"$host_flags")" = "$(wc -w <<<"$capped")" ]; then
  echo "cpu cap: this CPU has nothing above AVX2: the main run already covers it"
  exit 0
fi
export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 GENRELENS_CPU_FLAGS="$capped"
"$PYTHON" - <<'PY'
import torch

from genrelens.encoders import precision as prec

cpu = prec.describe_cpu()
assert cpu["torch_capability"] == "AVX2", cpu
assert not prec.candidates() and not prec.exact_int8(), cpu
print(f"cpu cap: torch {cpu['torch_capability']}, genrelens flags {' '.join(cpu['flags'])}, "
      f"candidates {cpu['candidates'] or 'none'}; ONNX Runtime still sees the real CPU")
PY
exec "$PYTHON" -m pytest -q tests/test_precision.py tests/test_speed_paths.py tests/test_quantize_cwd.py "$@"
