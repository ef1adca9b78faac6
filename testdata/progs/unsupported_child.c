/* ckpt-test: expect=dump-fail dump-error=timerfd */
/*
 * A tree whose child holds a timerfd, which ckpt cannot dump yet. The
 * child is found only once the tree is frozen, so the dump fails after
 * it stopped the tree: both processes must be let go exactly as they
 * were (not stopped, not traced, the child's timer still armed).
 */
#include "ckpt_test.h"

#include <sys/timerfd.h>
#include <sys/wait.h>

static void not_traced(const char *who)
{
	char v[64];
	CHECK(ckpt_status_field("TracerPid", v, sizeof v) == 0 && strcmp(v, "0") == 0,
	      "%s: TracerPid %s", who, v);
	CHECK(ckpt_status_field("State", v, sizeof v) == 0 && (v[0] == 'R' || v[0] == 'S'),
	      "%s: state %s", who, v);
}

int main(void)
{
	ckpt_block_term();
	int sync[2];
	CHECK_SYS(pipe(sync) == 0, "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		close(sync[0]);
		int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
		CHECK_SYS(tfd >= 0, "timerfd_create");
		struct itimerspec its = {{3600, 0}, {3600, 0}}, cur;
		CHECK_SYS(timerfd_settime(tfd, 0, &its, NULL) == 0, "timerfd_settime");
		CHECK_SYS(write(sync[1], "c", 1) == 1, "sync");
		close(sync[1]);
		ckpt_wait_term();
		not_traced("child");
		CHECK_SYS(timerfd_gettime(tfd, &cur) == 0, "timerfd_gettime");
		CHECK(cur.it_interval.tv_sec == 3600 && cur.it_value.tv_sec > 3500, "child: timer disarmed");
		_exit(0);
	}
	close(sync[1]);
	char b;
	CHECK_SYS(read(sync[0], &b, 1) == 1, "sync");
	close(sync[0]);
	ckpt_ready();
	ckpt_wait_term();
	not_traced("root");
	int st;
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
