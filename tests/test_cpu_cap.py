"""The cpuid cap (scripts/cpuid_avx2.c, preloaded by scripts/cpu_cap_env.sh): a process under it sees an AVX2-only
CPU in every library, ONNX Runtime included, and still dies of its real faults as before.

Skipped where the cap cannot run: no gcc, not Linux x86-64, or no CPUID faulting in the kernel or CPU."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "scripts" / "cpuid_avx2.c"


@pytest.fixture(scope="module")
def cap_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a capped process (only the preload: not the ATEN/oneDNN/genrelens variables)."""
    if sys.platform != "linux" or platform.machine() != "x86_64" or shutil.which("gcc") is None:
        pytest.skip("the cpuid cap needs Linux on x86-64 and gcc")
    lib = tmp_path_factory.mktemp("cpuid") / "cpuid_avx2.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(SOURCE), "-ldl"], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")}
    env["LD_PRELOAD"] = str(lib)
    probe = subprocess.run(["/bin/sh", "-c", ":"], env={**env, "GENRELENS_CPUID_CAP": "report"},
                           capture_output=True, text=True)
    if "cpuid cap: on" not in probe.stderr:
        pytest.skip(f"cpuid cannot be capped here: {probe.stderr.strip()}")
    return env


NUMPY_FEATURES = ("try:\n    from numpy._core._multiarray_umath import __cpu_features__ as f\n"  # numpy >= 2
                  "except ImportError:\n    from numpy.core._multiarray_umath import __cpu_features__ as f\n")


def capped(code: str, env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_every_library_sees_avx2_only(cap_env):
    code = ("import torch\n" + NUMPY_FEATURES +
            "print(torch.backends.cpu.get_cpu_capability(), f['AVX2'],"
            " sorted(k for k, v in f.items() if v and (k.startswith('AVX512') or 'VNNI' in k)))")
    r = capped(code, cap_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["AVX2", "True", "[]"], r.stdout


# u8 activations of 255 times s8 weights of 127: an AVX2 kernel (VPMADDUBSW) adds pairs of products into int16,
# 2 x 255 x 127 = 64770 > 32767, so it saturates; VNNI and AMX kernels are exact. u8 weights are exact everywhere.
SATURATION = """
import numpy as np, onnxruntime as ort
from onnx import TensorProto, helper
K, N = 64, 4
def run(signed):
    w = np.full((K, N), 127, np.int8) if signed else np.full((K, N), 255, np.uint8)
    t = helper.make_tensor("w", TensorProto.INT8 if signed else TensorProto.UINT8, [K, N], w.tobytes(), raw=True)
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, K])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, N])], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.full((1, K), 255, np.uint8)
    return int(s.run(None, {"a": a})[0][0, 0]), int(a[0].astype(np.int64) @ w[:, 0].astype(np.int64))
print(*run(True), *run(False))
"""


def test_onnx_runtime_runs_its_avx2_int8_kernels_under_the_cap(cap_env):
    """The saturation an AVX2-only CPU shows (why int8 uses unsigned weights there) shows under the cap too."""
    r = capped(SATURATION, cap_env)
    assert r.returncode == 0, r.stderr
    signed_got, signed_exact, unsigned_got, unsigned_exact = map(int, r.stdout.split())
    assert signed_got < signed_exact, "signed int8 did not saturate: ONNX Runtime kept kernels above AVX2"
    assert unsigned_got == unsigned_exact


def test_real_faults_still_kill_and_reach_the_programs_handler(cap_env):
    crash = "import ctypes; ctypes.string_at(0)"
    r = capped(crash, cap_env, timeout=60)  # a handler that swallowed the fault would loop on it
    assert r.returncode == -11, (r.returncode, r.stderr)
    # Python's own SIGSEGV handler, installed after the cap's: chained behind it
    r = capped(crash, cap_env, "-X", "faulthandler", timeout=60)
    assert r.returncode == -11 and "Segmentation fault" in r.stderr, (r.returncode, r.stderr)


def test_a_sent_sigsegv_acts_as_without_the_cap(cap_env):
    """kill -SEGV still kills; a program's own handler of it runs, and the cap still holds afterwards."""
    r = capped("import os, signal; os.kill(os.getpid(), signal.SIGSEGV); print('survived')", cap_env, timeout=60)
    assert r.returncode == -11 and "survived" not in r.stdout, (r.returncode, r.stdout)
    code = ("import os, signal\nsignal.signal(signal.SIGSEGV, lambda *a: print('handled'))\n"
            "os.kill(os.getpid(), signal.SIGSEGV)\n" + NUMPY_FEATURES + "print(f['AVX512F'])")
    r = capped(code, cap_env, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["handled", "False"], (r.returncode, r.stdout, r.stderr)
