/* An LD_PRELOAD library that makes a process, and every program it starts, see an AVX2-only CPU through cpuid:
 * no AVX-512, VNNI, bf16 or AMX. So ONNX Runtime, OpenVINO, oneDNN, torch and numpy all pick the kernels they
 * pick on an AVX2-only CPU (the cores, caches and clocks stay this machine's). Written by hand: no package on PyPI
 * or Debian masks cpuid for one process.
 *
 * How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID; `cpuid_fault` in /proc/cpuinfo) turns every cpuid
 * instruction into a SIGSEGV; the handler runs the real cpuid, clears the bits above AVX2 and steps over the
 * instruction. Faults that are not cpuid go to the handler the program installed (sigaction, signal, bsd_signal,
 * sysv_signal and sigset are wrapped for SIGSEGV, so that later handlers, Python's faulthandler among them, are
 * chained behind this one; it runs with cpuid uncapped) or kill the process as usual. A handler installed by a
 * raw rt_sigaction system call (Go's runtime) replaces this one: such programs cannot run under the cap.
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
#include <errno.h>
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

/* The leaves taken at load, subleaves 0 and 1: the answer where the real cpuid cannot be reached from the handler
 * (a seccomp filter that forbids arch_prctl); other leaves then read as zeros. */
#define SNAP_BASIC 0x21
#define SNAP_EXT 0x09
static unsigned snap_basic[SNAP_BASIC][2][4], snap_ext[SNAP_EXT][2][4];

static void snapshot(void) {
  unsigned top = __get_cpuid_max(0, 0), ext = __get_cpuid_max(0x80000000u, 0);
  for (unsigned leaf = 0; leaf < SNAP_BASIC && leaf <= top; leaf++)
    for (unsigned sub = 0; sub < 2; sub++) {
      unsigned *r = snap_basic[leaf][sub];
      __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
    }
  for (unsigned i = 0; i < SNAP_EXT && 0x80000000u + i <= ext; i++)
    for (unsigned sub = 0; sub < 2; sub++) {
      unsigned *r = snap_ext[i][sub];
      __cpuid_count(0x80000000u + i, sub, r[0], r[1], r[2], r[3]);
    }
}

static void from_snapshot(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
  unsigned *r = NULL;
  if (sub < 2 && leaf < SNAP_BASIC) r = snap_basic[leaf][sub];
  else if (sub < 2 && leaf >= 0x80000000u && leaf - 0x80000000u < SNAP_EXT) r = snap_ext[leaf - 0x80000000u][sub];
  *a = r ? r[0] : 0, *b = r ? r[1] : 0, *c = r ? r[2] : 0, *d = r ? r[3] : 0;
}

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
  int saved_errno = errno;
  unsigned char *ip = (unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
  if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
    unsigned leaf = (unsigned)uc->uc_mcontext.gregs[REG_RAX], sub = (unsigned)uc->uc_mcontext.gregs[REG_RCX];
    unsigned a, b, c, d;
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1) == 0) { /* this thread only, for the one real cpuid */
      __cpuid_count(leaf, sub, a, b, c, d);
      syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    } else { /* a seccomp filter forbids arch_prctl: a real cpuid would fault again, with SIGSEGV blocked */
      from_snapshot(leaf, sub, &a, &b, &c, &d);
    }
    mask(leaf, sub, &a, &b, &c, &d);
    uc->uc_mcontext.gregs[REG_RAX] = a;
    uc->uc_mcontext.gregs[REG_RBX] = b;
    uc->uc_mcontext.gregs[REG_RCX] = c;
    uc->uc_mcontext.gregs[REG_RDX] = d;
    uc->uc_mcontext.gregs[REG_RIP] += 2;
    traps++;
    errno = saved_errno;
    return;
  }
  struct sigaction h = chained; /* the program may change it from its own handler */
  if (h.sa_handler == SIG_IGN && info->si_code <= 0) { /* a sent SIGSEGV the program ignores: ignored */
    errno = saved_errno;
    return;
  }
  if (h.sa_handler == SIG_DFL || h.sa_handler == SIG_IGN) {
    /* the default action, as without this library: die of SIGSEGV now, for a real fault and a sent signal alike */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    real_sigaction(SIGSEGV, &dfl, NULL);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGSEGV); /* pending until this handler returns */
    return;
  }
  if (h.sa_flags & SA_RESETHAND) { /* as the kernel would: the program's handler runs once */
    memset(&chained, 0, sizeof chained);
    chained.sa_handler = SIG_DFL;
  }
  sigset_t during, before;
  during = h.sa_mask;
  if (!(h.sa_flags & SA_NODEFER)) sigaddset(&during, SIGSEGV);
  sigprocmask(SIG_BLOCK, &during, &before);
  if (h.sa_flags & SA_NODEFER) {
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_UNBLOCK, &segv, NULL);
  }
  /* the program's handler runs with cpuid native (unmasked): SIGSEGV may be blocked there, and a crash
   * reporter's backtrace() loads libgcc_s, whose constructor runs cpuid */
  syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
  if (h.sa_flags & SA_SIGINFO) h.sa_sigaction(sig, info, context);
  else h.sa_handler(sig);
  syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
  sigprocmask(SIG_SETMASK, &before, NULL);
  errno = saved_errno;
}

/* SIGSEGV handlers installed after this library's are kept and called for faults that are not cpuid. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  if (sig != SIGSEGV || !active) return real_sigaction(sig, act, old);
  if (old) *old = chained;
  if (act) chained = *act;
  return 0;
}

typedef __sighandler_t (*signal_fn)(int, __sighandler_t);

static __sighandler_t bsd_semantics(int sig, __sighandler_t handler, int flags) {
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  act.sa_flags = flags;
  sigemptyset(&act.sa_mask);
  if (!(flags & SA_NODEFER)) sigaddset(&act.sa_mask, sig);
  if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

/* signal() and its relatives reach the kernel through glibc's internal __sigaction, past the wrapper above:
 * for SIGSEGV they go through it; everything else is glibc's own (siginterrupt() included). */
#define WRAP(name, flags)                                                                \
  __sighandler_t name(int sig, __sighandler_t handler) {                                 \
    static signal_fn real;                                                               \
    if (sig == SIGSEGV && active && handler != SIG_HOLD) return bsd_semantics(sig, handler, flags); \
    if (!real) real = (signal_fn)dlsym(RTLD_NEXT, #name);                                \
    return real(sig, handler);                                                           \
  }
WRAP(signal, SA_RESTART)
WRAP(bsd_signal, SA_RESTART)
WRAP(sysv_signal, SA_RESETHAND | SA_NODEFER)
WRAP(sigset, SA_RESTART)

__attribute__((constructor)) static void start(void) {
  const char *env = getenv("GENRELENS_CPUID_CAP");
  struct sigaction act;
  report = env && strcmp(env, "report") == 0;
  real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  memset(&act, 0, sizeof act);
  act.sa_sigaction = on_segv;
  act.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&act.sa_mask);
  snapshot();
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
