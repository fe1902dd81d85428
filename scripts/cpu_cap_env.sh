# Sourced (bash): cap this CPU to AVX2 where it has more (AVX-512, VNNI, bf16, AMX).
# - cpuid itself, for every library of the process and the programs it starts (ONNX Runtime, OpenVINO, oneDNN,
#   torch, numpy): scripts/cpuid_avx2.c, built with gcc into build/ and preloaded (LD_PRELOAD). It needs gcc and
#   Linux's CPUID faulting; without them CPUID_CAP=0 and ONNX Runtime keeps the kernels of the real CPU.
# - torch's ATen kernels (ATEN_CPU_CAPABILITY) and oneDNN (ONEDNN_MAX_CPU_ISA), which also follow cpuid under the
#   preload, and genrelens's own CPU detection (GENRELENS_CPU_FLAGS: the host's flags less avx512*, *vnni*, amx*),
#   which reads /proc/cpuinfo.
# Sets CPU_CAP=1 when the host has something above AVX2 (so the cap changes something), else CPU_CAP=0; and
# CPUID_CAP=1 when cpuid is capped too.
host_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true)
capped_flags=$(tr ' ' '\n' <<<"$host_flags" | grep -vE '^(avx512|amx|avx_vnni|avx_ne_convert)' | tr '\n' ' ' || true)
CPU_CAP=0
CPUID_CAP=0
if [ -n "$host_flags" ] && [ "$(wc -w <<<"$host_flags")" != "$(wc -w <<<"$capped_flags")" ]; then
  CPU_CAP=1
  export ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 GENRELENS_CPU_FLAGS="$capped_flags"
  cap_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cap_lib="$cap_dir/build/cpuid_avx2.so"
  if ! command -v gcc >/dev/null; then
    echo "cpu cap: no gcc to build scripts/cpuid_avx2.c: ONNX Runtime keeps this CPU's kernels" >&2
  elif ! { [ "$cap_lib" -nt "$cap_dir/scripts/cpuid_avx2.c" ] ||
           { mkdir -p "$cap_dir/build" &&
             gcc -O2 -shared -fPIC -o "$cap_lib.$$" "$cap_dir/scripts/cpuid_avx2.c" -ldl &&
             mv -f "$cap_lib.$$" "$cap_lib"; }; }; then  # built aside, then renamed: never a half-written library
    rm -f "$cap_lib.$$"
    echo "cpu cap: scripts/cpuid_avx2.c did not build: ONNX Runtime keeps this CPU's kernels" >&2
  else
    cap_probe=$(LD_PRELOAD="$cap_lib" GENRELENS_CPUID_CAP=report /bin/sh -c : 2>&1 || true)
    case "$cap_probe" in
      "cpuid cap: on"*)
        CPUID_CAP=1
        case " ${LD_PRELOAD:-} " in
          *" $cap_lib "*) ;;  # sourced twice
          *) export LD_PRELOAD="$cap_lib${LD_PRELOAD:+ $LD_PRELOAD}" ;;
        esac ;;
      *) printf '%s\n' "${cap_probe%%$'\n'*}" >&2 ;;
    esac
  fi
fi
