/* ckpt-test: needs=ia32 */
/*
 * mixed_far64: checkpointed while blocked in a system call made from the
 * "other" CPU mode than the one the program was built for, entered by a far
 * transfer between the 32-bit (0x23) and 64-bit (0x33) user code segments.
 * The restorer must bring back CS (and so the mode), the full 64-bit
 * registers and the right restart_syscall flavour.
 *
 *  - 32-bit build: the 32-bit program far-returns into 64-bit mode (CS
 *    0x33) and there makes the x86-64 nanosleep (number 35) with the
 *    `syscall` instruction and a 16-byte struct timespec {5, 0} of the
 *    64-bit ABI (below 4 GiB, like everything in a 32-bit process). This is
 *    a native 64-bit system call of a compat task: an interrupted sleep is
 *    restarted through the *64-bit* restart_syscall (219), and while it is
 *    blocked the thread's CS is 0x33. Afterwards a 64-bit far return
 *    (lretq to 0x23) goes back to 32-bit mode.
 *
 *  - 64-bit build: the mirror. The 64-bit program switches to a stack
 *    below 4 GiB (MAP_32BIT), calls a thunk copied into a MAP_32BIT page,
 *    which far-returns into 32-bit mode (CS 0x23) and makes the ia32
 *    nanosleep (number 162, struct of two 32-bit ints) with `int $0x80`;
 *    then a 32-bit far return to 0x33 goes back to 64-bit mode and the
 *    thunk returns. r13-r15 hold sentinel values during the 32-bit
 *    excursion (invisible to 32-bit code, preserved by the CPU and the
 *    kernel): they must survive the checkpoint too.
 *
 * READY is printed just before entering the thunk. The call must return 0
 * after at least 5 s of CLOCK_MONOTONIC time (counted from before READY,
 * with the ordinary system call of the build); then SIGTERM is awaited.
 *
 * A fault during the mode switch or the system call (e.g. a kernel without
 * ia32 emulation, or booted with ia32_emulation=off: int $0x80 then raises
 * #GP) is reported as a FAIL line by a SIGSEGV/SIGBUS handler running on
 * an alternate stack.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <ucontext.h>

#define USER32_CS 0x23
#define USER64_CS 0x33

#ifdef __x86_64__

/*
 * Position-independent thunk, copied below 4 GiB. Entered with a near call
 * in 64-bit mode, rsp on a stack below 4 GiB, ebx = req, ecx = rem (32-bit
 * pointers). Returns the ia32 result in eax.
 */
__asm__(".pushsection .text\n"
	".globl mixed_far64_thunk_start\n"
	".hidden mixed_far64_thunk_start\n"
	".globl mixed_far64_thunk_end\n"
	".hidden mixed_far64_thunk_end\n"
	".code64\n"
	"mixed_far64_thunk_start:\n"
	/* far return to 32-bit mode: pops RIP and CS, 8 bytes each */
	"	pushq $0x23\n"
	"	leaq 1f(%rip), %rax\n"
	"	pushq %rax\n"
	"	lretq\n"
	".code32\n"
	"1:	movl $162, %eax\n" /* ia32 nanosleep(ebx, ecx) */
	"	int $0x80\n"
	/* far return to 64-bit mode at 2f: pops EIP and CS, 4 bytes each */
	"	call 3f\n"
	"3:	popl %edx\n"
	"	addl $(2f - 3b), %edx\n"
	"	pushl $0x33\n"
	"	pushl %edx\n"
	"	lretl\n"
	".code64\n"
	/* upper halves are undefined after 32-bit mode: the stack is < 4 GiB */
	"2:	movl %esp, %esp\n"
	"	ret\n"
	"mixed_far64_thunk_end:\n"
	".popsection\n");

extern const char mixed_far64_thunk_start[] __attribute__((visibility("hidden")));
extern const char mixed_far64_thunk_end[] __attribute__((visibility("hidden")));

#define S13 0x1313131313131313ULL
#define S14 0xfedcba9876543210ULL
#define S15 0x8000000000000015ULL

static uint64_t got13, got14, got15;

/* Run the thunk at entry on the stack whose top is stack_top (< 4 GiB). */
static int call32_nanosleep(uint64_t entry, uint64_t stack_top, uint32_t req,
			    uint32_t rem)
{
	register uint64_t r13 __asm__("r13") = S13;
	register uint64_t r14 __asm__("r14") = S14;
	register uint64_t r15 __asm__("r15") = S15;
	uint64_t rax, rbx = req, rcx = rem;

	/*
	 * The original rsp is kept on the low stack (so that only memory
	 * below 4 GiB is used while in 32-bit mode); nothing is pushed on
	 * the original stack, whose red zone may be live.
	 */
	__asm__ volatile("mov %%rsp, %%r12\n\t"
			 "mov %[stk], %%rsp\n\t"
			 "push %%r12\n\t"
			 "call *%[entry]\n\t"
			 "pop %%rsp\n\t"
			 : "=&a"(rax), "+b"(rbx), "+c"(rcx), "+r"(r13), "+r"(r14),
			   "+r"(r15), [stk] "+S"(stack_top), [entry] "+d"(entry)
			 :
			 : "memory", "cc", "rdi", "r8", "r9", "r10", "r11", "r12");
	got13 = r13;
	got14 = r14;
	got15 = r15;
	return (int)(uint32_t)rax;
}

#else /* 32-bit build */

/*
 * Called with a near call in 32-bit mode, ebx = req, ecx = rem (pointers to
 * 64-bit struct timespec). Returns the low half of the 64-bit result in eax.
 * Clobbers ecx, edx, esi, edi (and r11 and upper halves, invisible here).
 */
__asm__(".pushsection .text\n"
	".globl mixed_far64_thunk\n"
	".hidden mixed_far64_thunk\n"
	".type mixed_far64_thunk, @function\n"
	".code32\n"
	"mixed_far64_thunk:\n"
	/* far return to 64-bit mode at 1f: pops EIP and CS, 4 bytes each */
	"	call 3f\n"
	"3:	popl %edx\n"
	"	addl $(1f - 3b), %edx\n"
	"	pushl $0x33\n"
	"	pushl %edx\n"
	"	lretl\n"
	".code64\n"
	/* upper halves are undefined after 32-bit mode: zero-extend */
	"1:	movl %esp, %esp\n"
	"	movl %ebx, %edi\n" /* req */
	"	movl %ecx, %esi\n" /* rem */
	"	movl $35, %eax\n" /* x86-64 nanosleep(rdi, rsi) */
	"	syscall\n" /* clobbers rcx, r11 */
	/* far return to 32-bit mode at 2f: pops RIP and CS, 8 bytes each */
	"	leaq 2f(%rip), %rdx\n"
	"	pushq $0x23\n"
	"	pushq %rdx\n"
	"	lretq\n"
	".code32\n"
	"2:	ret\n"
	".size mixed_far64_thunk, . - mixed_far64_thunk\n"
	".popsection\n");

/* struct __kernel_timespec: the x86-64 struct timespec */
struct ts64 {
	int64_t tv_sec;
	int64_t tv_nsec;
};

static struct ts64 ts64[2] __attribute__((aligned(16)));

static int call64_nanosleep(struct ts64 *req, struct ts64 *rem)
{
	uint32_t eax;
	struct ts64 *ecx = rem;

	__asm__ volatile("call mixed_far64_thunk"
			 : "=a"(eax), "+c"(ecx)
			 : "b"(req)
			 : "memory", "cc", "edx", "esi", "edi");
	return (int)eax;
}

#endif

static char altstack[64 * 1024];

static void fault_handler(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	char buf[256];
	unsigned long ip, cs;
	int n;

#ifdef __x86_64__
	ip = (unsigned long)uc->uc_mcontext.gregs[REG_RIP];
	/* CSGSFS: cs in bits 0-15 */
	cs = (unsigned long)uc->uc_mcontext.gregs[REG_CSGSFS] & 0xffff;
#else
	ip = (unsigned long)uc->uc_mcontext.gregs[REG_EIP];
	cs = (unsigned long)uc->uc_mcontext.gregs[REG_CS] & 0xffff;
#endif
	n = snprintf(buf, sizeof(buf),
		     "FAIL: signal %d (si_code %d, addr %p) at ip 0x%lx cs 0x%lx in the "
		     "mode-switching thunk: is ia32 emulation disabled in this kernel?\n",
		     sig, si->si_code, si->si_addr, ip, cs);
	if (n > 0)
		ckpt_write_all(1, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	_exit(1);
}

int main(void)
{
	struct sigaction sa;
	stack_t ss;
	int64_t t0, t1;
	int r;

	ss.ss_sp = altstack;
	ss.ss_size = sizeof(altstack);
	ss.ss_flags = 0;
	CHECK_SYS(sigaltstack(&ss, NULL) == 0, "sigaltstack");
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fault_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction(SIGSEGV)");
	CHECK_SYS(sigaction(SIGBUS, &sa, NULL) == 0, "sigaction(SIGBUS)");
	CHECK_SYS(sigaction(SIGILL, &sa, NULL) == 0, "sigaction(SIGILL)");

#ifdef __x86_64__
	size_t len = (size_t)(mixed_far64_thunk_end - mixed_far64_thunk_start);
	size_t stack_len = 64 * 1024;
	struct {
		int32_t tv_sec, tv_nsec;	/* struct old_timespec32 */
	} *ts;
	char *code, *stack;

	code = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	CHECK_SYS(code != MAP_FAILED, "mmap(MAP_32BIT) code");
	stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	CHECK_SYS(stack != MAP_FAILED, "mmap(MAP_32BIT) stack");
	ts = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	CHECK_SYS(ts != MAP_FAILED, "mmap(MAP_32BIT) data");
	CHECK((uint64_t)(uintptr_t)code < 0xfffff000ULL &&
	      (uint64_t)(uintptr_t)stack + stack_len <= 0x100000000ULL &&
	      (uint64_t)(uintptr_t)ts < 0xfffff000ULL,
	      "MAP_32BIT mappings above 4 GiB: %p %p %p", (void *)code,
	      (void *)stack, (void *)ts);
	CHECK(len > 0 && len <= 4096, "thunk of %zu bytes", len);
	memcpy(code, mixed_far64_thunk_start, len);
	CHECK_SYS(mprotect(code, 4096, PROT_READ | PROT_EXEC) == 0, "mprotect thunk");
	ts[0].tv_sec = 5;
	ts[0].tv_nsec = 0;
	ts[1].tv_sec = -1;
	ts[1].tv_nsec = -1;
	ckpt_log("64-bit build: 32-bit thunk at %p, stack %p, int $0x80 nanosleep",
		 (void *)code, (void *)stack);

	ckpt_block_term();
	t0 = ckpt_mono_ns();
	ckpt_ready();
	r = call32_nanosleep((uint64_t)(uintptr_t)code,
			     (uint64_t)(uintptr_t)stack + stack_len,
			     (uint32_t)(uintptr_t)&ts[0], (uint32_t)(uintptr_t)&ts[1]);
	t1 = ckpt_mono_ns();

	CHECK(r == 0, "int $0x80 nanosleep in 32-bit mode returned %d (%s), rem = %d.%09d",
	      r, r < 0 ? strerror(-r) : "?", ts[1].tv_sec, ts[1].tv_nsec);
	CHECK(got13 == S13 && got14 == S14 && got15 == S15,
	      "r13-r15 changed across the 32-bit excursion: %#llx %#llx %#llx",
	      (unsigned long long)got13, (unsigned long long)got14,
	      (unsigned long long)got15);
	CHECK(ts[0].tv_sec == 5 && ts[0].tv_nsec == 0, "request changed to %d.%09d",
	      ts[0].tv_sec, ts[0].tv_nsec);
#else
	ts64[0].tv_sec = 5;
	ts64[0].tv_nsec = 0;
	ts64[1].tv_sec = -1;
	ts64[1].tv_nsec = -1;
	ckpt_log("32-bit build: 64-bit syscall nanosleep, req at %p", (void *)&ts64[0]);

	ckpt_block_term();
	t0 = ckpt_mono_ns();
	ckpt_ready();
	r = call64_nanosleep(&ts64[0], &ts64[1]);
	t1 = ckpt_mono_ns();

	CHECK(r == 0, "64-bit nanosleep in 64-bit mode returned %d (%s), rem = %lld.%09lld",
	      r, r < 0 ? strerror(-r) : "?", (long long)ts64[1].tv_sec,
	      (long long)ts64[1].tv_nsec);
	CHECK(ts64[0].tv_sec == 5 && ts64[0].tv_nsec == 0, "request changed to %lld.%09lld",
	      (long long)ts64[0].tv_sec, (long long)ts64[0].tv_nsec);
#endif
	CHECK(t1 - t0 >= 5000000000LL, "nanosleep(5 s) returned after only %lld ns",
	      (long long)(t1 - t0));
	ckpt_log("slept %lld ms", (long long)((t1 - t0) / 1000000));

	/* The mode switches are done: back in the build's own mode. */
	{
		unsigned short cs;

		__asm__ volatile("mov %%cs, %0" : "=r"(cs));
#ifdef __x86_64__
		CHECK(cs == USER64_CS, "cs is %#x after the excursion, expected %#x", cs,
		      USER64_CS);
#else
		CHECK(cs == USER32_CS, "cs is %#x after the excursion, expected %#x", cs,
		      USER32_CS);
#endif
	}

	ckpt_wait_term();
	ckpt_pass();
}
