/* ckpt-test: */
/*
 * restart_clock_nanosleep: checkpointed while blocked in
 * clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until now + 5 s. It must
 * return 0 (not EINTR) and CLOCK_MONOTONIC must then be >= the target.
 * SIGTERM is blocked, so it cannot interrupt the sleep.
 */
#include "ckpt_test.h"

int main(void)
{
	struct timespec target;
	int64_t t0, t1, tgt;
	int r;

	ckpt_block_term();
	t0 = ckpt_mono_ns();
	tgt = t0 + 5000000000LL;
	target.tv_sec = (time_t)(tgt / 1000000000LL);
	target.tv_nsec = (long)(tgt % 1000000000LL);
	ckpt_ready();
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL);
	t1 = ckpt_mono_ns();

	CHECK(r == 0, "clock_nanosleep returned %d (%s)", r, strerror(r));
	CHECK(t1 >= tgt, "clock_nanosleep returned %lld ns before the target",
	      (long long)(tgt - t1));
	CHECK(t1 - t0 >= 5000000000LL, "slept only %lld ns", (long long)(t1 - t0));
	ckpt_log("slept %lld ms", (long long)((t1 - t0) / 1000000));

	ckpt_wait_term();
	ckpt_pass();
}
