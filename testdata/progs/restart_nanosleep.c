/* ckpt-test: */
/*
 * restart_nanosleep: checkpointed while blocked in nanosleep(2) (the
 * ERESTART_RESTARTBLOCK case). The raw nanosleep system call for 5 s must
 * return 0 (not EINTR) after at least 5 s of CLOCK_MONOTONIC time, counted
 * from before READY. SIGTERM is blocked, so it cannot interrupt the sleep.
 */
#include "ckpt_test.h"

#include <sys/syscall.h>

int main(void)
{
	struct timespec req = { 5, 0 }, rem = { -1, -1 };
	int64_t t0, t1;
	long r;

	ckpt_block_term();
	t0 = ckpt_mono_ns();
	ckpt_ready();
	r = syscall(SYS_nanosleep, &req, &rem);
	t1 = ckpt_mono_ns();

	CHECK(r == 0, "nanosleep returned %ld (%s), rem = %ld.%09ld", r,
	      r < 0 ? strerror(errno) : "?", (long)rem.tv_sec, (long)rem.tv_nsec);
	CHECK(t1 - t0 >= 5000000000LL, "nanosleep(5 s) returned after only %lld ns",
	      (long long)(t1 - t0));
	CHECK(req.tv_sec == 5 && req.tv_nsec == 0, "request changed");
	ckpt_log("slept %lld ms", (long long)((t1 - t0) / 1000000));

	ckpt_wait_term();
	ckpt_pass();
}
