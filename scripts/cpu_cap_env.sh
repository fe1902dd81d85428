# Sourced (bash): cap this CPU to AVX2 for torch (ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA) and genrelens
# (GENRELENS_CPU_FLAGS: the host's flags less avx512*, *vnni*, amx*). ONNX Runtime is not capped: it reads cpuid.
# Sets CPU_CAP=1 when the host has something above AVX2 (so the cap changes something), else CPU_CAP=0.
host_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true)
capped_flags=$(tr ' ' '\n' <<<"$host_flags" | grep -vE '^(avx512|amx|avx_vnni|avx_ne_convert)' | tr '\n' ' ' || true)
CPU_CAP=0
if [ -n "$host_flags" ] && [ "$(wc -w <<<"$host_flags")" != "$(wc -w <<<"$capped_flags")" ]; then
  CPU_CAP=1
  export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 GENRELENS_CPU_FLAGS="$capped_flags"
fi
