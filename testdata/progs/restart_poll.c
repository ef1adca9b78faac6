/* ckpt-test: */
/*
 * restart_poll: checkpointed while blocked in poll(NULL, 0, 5000) (a
 * timeout-only poll, restarted through the restart block). It must return 0
 * after at least 5 s of CLOCK_MONOTONIC time counted from before READY.
 * SIGTERM is blocked, so it cannot interrupt the poll.
 */
#include "ckpt_test.h"

#include <poll.h>

int main(void)
{
	int64_t t0, t1;
	int r;

	ckpt_block_term();
	t0 = ckpt_mono_ns();
	ckpt_ready();
	r = poll(NULL, 0, 5000);
	t1 = ckpt_mono_ns();

	CHECK(r == 0, "poll returned %d (%s)", r, r < 0 ? strerror(errno) : "events?");
	CHECK(t1 - t0 >= 5000000000LL, "poll(5000 ms) returned after only %lld ns",
	      (long long)(t1 - t0));
	ckpt_log("polled %lld ms", (long long)((t1 - t0) / 1000000));

	ckpt_wait_term();
	ckpt_pass();
}
