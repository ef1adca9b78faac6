/* ckpt-test: */
/*
 * rseq: the thread's restartable-sequences registration.
 * glibc (2.35+) registers an rseq area for each thread (__rseq_offset from
 * the thread pointer, __rseq_size); if it did not (__rseq_size == 0, e.g.
 * glibc.pthread.rseq=0), the program registers its own area with signature
 * 0x53053053. The exact registration (area, length, signature) is probed
 * before READY without disturbing it (re-registering returns EBUSY).
 * After restore:
 *  - cpu_id_start/cpu_id in the area are maintained (equal getcpu());
 *  - re-registering with the same arguments returns EBUSY and with another
 *    signature EPERM (non-destructive proofs of the registration);
 *  - unregistering with exactly these arguments returns 0 and makes the
 *    kernel write RSEQ_CPU_ID_UNINITIALIZED into cpu_id;
 *  - registering again returns 0 and cpu_id is maintained again.
 */
#include "ckpt_test.h"

#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif
#define RSEQ_FLAG_UNREGISTER_ 1
#define CPU_ID_UNINITIALIZED ((uint32_t)-1)

static struct rseq own_area __attribute__((aligned(32)));

static void *thread_pointer(void)
{
	void *tp;

#ifdef __x86_64__
	__asm__("mov %%fs:0, %0" : "=r"(tp));
#else
	__asm__("mov %%gs:0, %0" : "=r"(tp));
#endif
	return tp;
}

static long sys_rseq(volatile struct rseq *area, uint32_t len, int flags, uint32_t sig)
{
	return syscall(SYS_rseq, area, len, flags, sig);
}

static unsigned kernel_cpu(void)
{
	unsigned cpu = ~0u;

	if (syscall(SYS_getcpu, &cpu, NULL, NULL) != 0)
		ckpt_fail("getcpu: %s", strerror(errno));
	return cpu;
}

/* cpu_id_start and cpu_id must match the CPU we run on (retry: migration). */
static void check_cpu_fields(volatile struct rseq *area, const char *when)
{
	uint32_t a = 0, b = 0;
	unsigned c1 = 0, c2 = 0;

	for (int i = 0; i < 1000; i++) {
		sched_yield();
		c1 = kernel_cpu();
		a = area->cpu_id_start;
		b = area->cpu_id;
		c2 = kernel_cpu();
		if (c1 == c2 && a == c1 && b == c1)
			return;
	}
	ckpt_fail("%s: rseq cpu_id_start %u cpu_id %u, but getcpu() says %u/%u", when, a, b,
		  c1, c2);
}

int main(void)
{
	volatile struct rseq *area;
	uint32_t len = 0;
	const char *owner;
	long r;

	if (__rseq_size > 0) {
		static const uint32_t lens[] = { 0, 32, 20 };

		owner = "glibc";
		area = (volatile struct rseq *)((char *)thread_pointer() + __rseq_offset);
		/* Find the registered length: the right one gives EBUSY. */
		for (size_t i = 0; i < 3 && !len; i++) {
			uint32_t l = i == 0 ? __rseq_size : lens[i];

			r = sys_rseq(area, l, 0, RSEQ_SIG);
			if (r < 0 && errno == EBUSY)
				len = l;
		}
		CHECK(len != 0, "cannot confirm glibc's rseq registration (__rseq_size %u)",
		      __rseq_size);
	} else {
		owner = "own";
		area = &own_area;
		len = sizeof(own_area);
		own_area.cpu_id = CPU_ID_UNINITIALIZED;
		r = sys_rseq(area, len, 0, RSEQ_SIG);
		CHECK_SYS(r == 0, "rseq register");
	}
	ckpt_log("%s rseq area %p len %u sig %#x", owner, (void *)area, len, RSEQ_SIG);
	CHECK(area->cpu_id != CPU_ID_UNINITIALIZED, "rseq cpu_id not initialized");
	check_cpu_fields(area, "before");

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	CHECK(area->cpu_id != CPU_ID_UNINITIALIZED && area->cpu_id != (uint32_t)-2,
	      "rseq cpu_id is %#x after restore", area->cpu_id);
	check_cpu_fields(area, "after restore");
	CHECK(area->rseq_cs == 0, "rseq_cs is %#llx", (unsigned long long)area->rseq_cs);

	/* Non-destructive probes of the registration. */
	r = sys_rseq(area, len, 0, RSEQ_SIG);
	CHECK(r < 0 && errno == EBUSY,
	      "re-registering the same area returned %ld (%s), want EBUSY: not registered?", r,
	      r < 0 ? strerror(errno) : "success");
	r = sys_rseq(area, len, 0, RSEQ_SIG ^ 1);
	CHECK(r < 0 && errno == EPERM,
	      "registering with another signature returned %ld (%s), want EPERM", r,
	      r < 0 ? strerror(errno) : "success");

	/* The definitive check: unregister with exactly these arguments. */
	r = sys_rseq(area, len, RSEQ_FLAG_UNREGISTER_, RSEQ_SIG);
	CHECK(r == 0, "rseq unregister(area %p, len %u, sig %#x) failed: %s", (void *)area, len,
	      RSEQ_SIG, strerror(errno));
	CHECK(area->cpu_id == CPU_ID_UNINITIALIZED,
	      "after unregister cpu_id = %#x (the kernel did not write this area)", area->cpu_id);
	r = sys_rseq(area, len, RSEQ_FLAG_UNREGISTER_, RSEQ_SIG);
	CHECK(r < 0 && errno == EINVAL, "second unregister returned %ld", r);

	r = sys_rseq(area, len, 0, RSEQ_SIG);
	CHECK(r == 0, "re-register failed: %s", strerror(errno));
	check_cpu_fields(area, "after re-register");

	ckpt_pass();
}
