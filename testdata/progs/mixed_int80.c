/* ckpt-test: needs=ia32 */
/*
 * mixed_int80: checkpointed while blocked in an ia32 system call entered
 * through `int $0x80`.
 *  - 64-bit build: a 64-bit process makes the ia32 nanosleep (ia32 number
 *    162, struct old_timespec32 = two 32-bit ints) through `int $0x80`. The
 *    kernel runs it as a compat system call (in_ia32_syscall()), so when it
 *    is interrupted the restart goes through the ia32 restart_syscall
 *    (number 0), and the registers are those of the int $0x80 ABI (eax,
 *    ebx, ecx; only their low halves count). The request and remainder
 *    structs are in a MAP_32BIT page: int $0x80 takes 32-bit pointers.
 *  - 32-bit build: the same call through a plain `int $0x80` (not the vDSO's
 *    sysenter path that glibc uses).
 * The sleep of {5, 0} s starts right after READY and must return 0 after at
 * least 5 s of CLOCK_MONOTONIC time (measured with the ordinary system call
 * of the build, counted from before READY). Then SIGTERM is awaited.
 *
 * If `int $0x80` faults (kernel without ia32 emulation, or booted with
 * ia32_emulation=off), a SIGSEGV handler prints a FAIL line saying so
 * instead of dying silently.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <ucontext.h>

#define IA32_NR_NANOSLEEP 162

/* struct old_timespec32 of the ia32 ABI */
struct ts32 {
	int32_t tv_sec;
	int32_t tv_nsec;
};

/* ia32 nanosleep(req, rem) through int $0x80; returns the (32-bit) result. */
static int int80_nanosleep(uint32_t req, uint32_t rem)
{
#ifdef __x86_64__
	/*
	 * From 64-bit code, int $0x80 takes the number in eax and arguments
	 * in ebx, ecx, edx, esi, edi, ebp. Kernels before 4.17 zeroed r8-r11
	 * on return, so they are clobbered; the result is in eax (sign
	 * extended into rax, but only the low half is defined by the ABI).
	 */
	uint64_t rax = IA32_NR_NANOSLEEP;

	__asm__ volatile("int $0x80"
			 : "+a"(rax)
			 : "b"((uint64_t)req), "c"((uint64_t)rem)
			 : "memory", "cc", "r8", "r9", "r10", "r11");
	return (int)(uint32_t)rax;
#else
	uint32_t eax = IA32_NR_NANOSLEEP;

	__asm__ volatile("int $0x80"
			 : "+a"(eax)
			 : "b"(req), "c"(rem)
			 : "memory", "cc");
	return (int)eax;
#endif
}

static void fault_handler(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	char buf[256];
	unsigned long ip;
	int n;

#ifdef __x86_64__
	ip = (unsigned long)uc->uc_mcontext.gregs[REG_RIP];
#else
	ip = (unsigned long)uc->uc_mcontext.gregs[REG_EIP];
#endif
	n = snprintf(buf, sizeof(buf),
		     "FAIL: signal %d (si_code %d, addr %p) at ip 0x%lx during int $0x80: "
		     "is ia32 emulation disabled in this kernel?\n",
		     sig, si->si_code, si->si_addr, ip);
	if (n > 0)
		ckpt_write_all(1, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	_exit(1);
}

int main(void)
{
	struct sigaction sa;
	struct ts32 *ts;
	int64_t t0, t1;
	int r;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction(SIGSEGV)");
	CHECK_SYS(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction(SIGBUS)");

	/* req = ts[0], rem = ts[1]; below 4 GiB for the 32-bit pointers. */
	ts = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	CHECK_SYS(ts != MAP_FAILED, "mmap(MAP_32BIT)");
	CHECK((uint64_t)(uintptr_t)ts + 4096 <= 0x100000000ULL,
	      "MAP_32BIT page at %p is above 4 GiB", (void *)ts);
	ts[0].tv_sec = 5;
	ts[0].tv_nsec = 0;
	ts[1].tv_sec = -1;
	ts[1].tv_nsec = -1;
	ckpt_log("%d-bit build, ia32 nanosleep through int $0x80, req at %p",
		 (int)sizeof(void *) * 8, (void *)ts);

	ckpt_block_term();
	t0 = ckpt_mono_ns();
	ckpt_ready();
	r = int80_nanosleep((uint32_t)(uintptr_t)&ts[0], (uint32_t)(uintptr_t)&ts[1]);
	t1 = ckpt_mono_ns();

	CHECK(r == 0, "int $0x80 nanosleep returned %d (%s), rem = %d.%09d", r,
	      r < 0 ? strerror(-r) : "?", ts[1].tv_sec, ts[1].tv_nsec);
	CHECK(t1 - t0 >= 5000000000LL, "nanosleep(5 s) returned after only %lld ns",
	      (long long)(t1 - t0));
	CHECK(ts[0].tv_sec == 5 && ts[0].tv_nsec == 0, "request changed to %d.%09d",
	      ts[0].tv_sec, ts[0].tv_nsec);
	ckpt_log("slept %lld ms", (long long)((t1 - t0) / 1000000));

	ckpt_wait_term();
	ckpt_pass();
}
