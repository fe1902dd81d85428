/* An LD_PRELOAD library that makes a process, and every program it starts, see an AVX2-only CPU through cpuid:
 * no AVX-512, VNNI, bf16 or AMX. So ONNX Runtime, OpenVINO, oneDNN, torch and numpy all pick the kernels they
 * pick on an AVX2-only CPU (the cores, caches and clocks stay this machine's). Written by hand: no package on PyPI
 * or Debian masks cpuid for one process.
 *
 * How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID; `cpuid_fault` in /proc/cpuinfo) turns every cpuid
 * instruction into a SIGSEGV; the handler runs the real cpuid, clears the bits above AVX2 and steps over the
 * instruction. Faults that are not cpuid go to the handler the program installed (sigaction is wrapped so that
 * later handlers, Python's faulthandler among them, are chained behind this one) or kill the process as usual.
 * Where CPUID faulting is missing the library prints one line to stderr and changes nothing.
 *
 * Build and use (scripts/cpu_cap_env.sh does both):
 *   gcc -O2 -shared -fPIC -o cpuid_avx2.so scripts/cpuid_avx2.c -ldl
 *   LD_PRELOAD=$PWD/cpuid_avx2.so python -c 'import torch; print(torch.backends.cpu.get_cpu_capability())'
 * GENRELENS_CPUID_CAP=report prints "cpuid cap: on" at load and, at exit, how many cpuid instructions it answered.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static struct sigaction chained; /* the program's own SIGSEGV handler (SIG_DFL until it installs one) */
static int active, report;
static unsigned long traps; /* cpuid instructions answered (not exact across threads: for the report only) */

static void mask(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
  if (leaf == 7 && sub == 0) {
    /* EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL */
    *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
    /* ECX: AVX512_VBMI, VBMI2, GFNI, AVX512_VNNI, BITALG, VPOPCNTDQ */
    *c &= ~((1u << 1) | (1u << 6) | (1u << 8) | (1u << 11) | (1u << 12) | (1u << 14));
    /* EDX: AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, AMX_BF16, AVX512_FP16, AMX_TILE, AMX_INT8 */
    *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && sub == 1) {
    *a &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23)); /* AVX_VNNI, AVX512_BF16, AMX_FP16, AVX_IFMA */
    *d &= ~((1u << 4) | (1u << 5) | (1u << 10) | (1u << 19)); /* AVX_VNNI_INT8, AVX_NE_CONVERT, VNNI_INT16, AVX10 */
  } else if (leaf == 0xd && sub == 0) {
    *a &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18)); /* opmask, ZMM and AMX tile state */
  } else if ((leaf == 0xd && sub >= 5 && sub <= 7) || (leaf == 0xd && (sub == 17 || sub == 18)) || leaf == 0x1d ||
             leaf == 0x1e || leaf == 0x24) {
    *a = *b = *c = *d = 0; /* sizes of that state, AMX tile and AVX10 leaves */
  }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  ucontext_t *uc = context;
  unsigned char *ip = (unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
  if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
    unsigned leaf = (unsigned)uc->uc_mcontext.gregs[REG_RAX], sub = (unsigned)uc->uc_mcontext.gregs[REG_RCX];
    unsigned a, b, c, d;
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1); /* this thread only, for the one real cpuid */
    __cpuid_count(leaf, sub, a, b, c, d);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    mask(leaf, sub, &a, &b, &c, &d);
    uc->uc_mcontext.gregs[REG_RAX] = a;
    uc->uc_mcontext.gregs[REG_RBX] = b;
    uc->uc_mcontext.gregs[REG_RCX] = c;
    uc->uc_mcontext.gregs[REG_RDX] = d;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
    traps++;
    return;
  }
  if (chained.sa_flags & SA_SIGINFO) {
    chained.sa_sigaction(sig, info, context);
  } else if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
    chained.sa_handler(sig);
  } else { /* a real fault: the default action, as without this library (the instruction runs again) */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &dfl, NULL);
  }
}

/* SIGSEGV handlers installed after this library's are kept and called for faults that are not cpuid. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  if (sig != SIGSEGV || !active) return real_sigaction(sig, act, old);
  if (old) *old = chained;
  if (act) chained = *act;
  return 0;
}

__sighandler_t signal(int sig, __sighandler_t handler) {
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

__attribute__((constructor)) static void start(void) {
  const char *env = getenv("GENRELENS_CPUID_CAP");
  struct sigaction act;
  report = env && strcmp(env, "report") == 0;
  real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  memset(&act, 0, sizeof act);
  act.sa_sigaction = on_segv;
  act.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&act.sa_mask);
  if (real_sigaction(SIGSEGV, &act, &chained) != 0) {
    fprintf(stderr, "cpuid cap: cannot install a SIGSEGV handler: cpuid not capped\n");
    return;
  }
  if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
    real_sigaction(SIGSEGV, &chained, NULL);
    fprintf(stderr, "cpuid cap: this kernel or CPU has no CPUID faulting: cpuid not capped\n");
    return;
  }
  active = 1;
  if (report) fprintf(stderr, "cpuid cap: on (AVX2 only) in process %d\n", (int)getpid());
}

__attribute__((destructor)) static void stop(void) {
  if (report && active) fprintf(stderr, "cpuid cap: %lu cpuid instructions answered in process %d\n", traps, (int)getpid());
}
