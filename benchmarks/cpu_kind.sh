#!/usr/bin/env bash
# The figures of one CPU-kind table in docs/performance.md, all from the same commands, with the CPU and the load
# printed first. --cap-avx2: the same with the CPU capped to AVX2 (scripts/cpu_cap_env.sh: cpuid for every library,
# ONNX Runtime and OpenVINO included, where gcc and CPUID faulting allow; torch, oneDNN and genrelens always).
#   bash benchmarks/cpu_kind.sh [--cap-avx2] [MODEL_DIR]     (default: the default model)   PYTHON=... to override
set -euo pipefail
case "${1:-}" in
  -h|--help) sed -n '2,5p' "$0" | cut -c3-; exit 0 ;;
  -*) [ "$1" = --cap-avx2 ] || { echo "unknown option $1 (see --help)" >&2; exit 2; } ;;
esac
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
if [ "${1:-}" = "--cap-avx2" ]; then
  shift
  . scripts/cpu_cap_env.sh
  [ "$CPU_CAP" = 1 ] || echo "note: nothing above AVX2 on this CPU: the cap changes nothing"
  [ "$CPU_CAP" = 0 ] || [ "$CPUID_CAP" = 1 ] || echo "note: cpuid not capped: ONNX Runtime runs this CPU's kernels"
fi
M=${1:-$("$PYTHON" -c 'from genrelens.paths import default_model_dir; print(default_model_dir())')}
[ -d "$M" ] || { echo "model folder not found: $M" >&2; exit 2; }
lscpu | grep -E '^(Model name|CPU family|Model|CPU\(s\)):' || true
echo "flags that matter (/proc/cpuinfo: the real CPU's, also under the cap): $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512bw|avx512_vnni|avx_vnni|avx512_bf16|amx_bf16|amx_int8)$' | tr '\n' ' ')"
echo "cap: ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-none} ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-none} cpuid=${CPUID_CAP:-0}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
set -x
"$PYTHON" benchmarks/speed.py --n 256 --model-dir "$M"
"$PYTHON" benchmarks/profile_score.py --n 256 --model-dir "$M" --precision auto
"$PYTHON" benchmarks/speed.py --n 128 --long 6 --no-rest --model-dir "$M"
"$PYTHON" benchmarks/precision.py --n 256
"$PYTHON" benchmarks/bf16_parts.py --model-dir "$M" --split test
"$PYTHON" benchmarks/int8_variants.py --n 256
