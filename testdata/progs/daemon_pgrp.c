/* ckpt-test: daemon=yes */
/*
 * A daemon in a process group that is not its session's, both leaders
 * gone: the program L forks C, C calls setsid() and forks E, E makes its
 * own group and forks D, E and C exit. D (session C, group E) is dumped on
 * its own (daemon=yes: D prints "READY <pid>", L exits 0). After the
 * restore D is in session C and group E again, leads neither, and no task
 * has PID C or E.
 */
#include "ckpt_test.h"

#include <sys/wait.h>

int main(void)
{
	sigset_t usr1;

	ckpt_block_term();
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0, "block SIGUSR1");
	pid_t l = getpid();
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork C");
	if (c != 0) {
		/* L: done once the daemon tells it is ready. */
		struct timespec ts = { 20, 0 };
		int st;
		CHECK_SYS(waitpid(c, &st, 0) == c, "reap C");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "C status %#x", st);
		CHECK_SYS(sigtimedwait(&usr1, NULL, &ts) == SIGUSR1, "wait for the daemon");
		_exit(0);
	}
	/* C: a session, and E, a group in it, whose D outlives both. */
	if (setsid() < 0)
		_exit(2);
	pid_t e = fork();
	if (e < 0)
		_exit(3);
	if (e != 0) {
		int st;
		if (waitpid(e, &st, 0) != e || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			_exit(4);
		_exit(0);
	}
	/* E */
	if (setpgid(0, 0) != 0)
		_exit(5);
	pid_t d = fork();
	if (d < 0)
		_exit(6);
	if (d != 0)
		_exit(0);
	/* D, the daemon: C's and E's pids come from its session and group. */
	e = getpgid(0);
	c = getsid(0);
	CHECK_SYS(sigprocmask(SIG_UNBLOCK, &usr1, NULL) == 0, "unblock SIGUSR1");
	for (int i = 0; ckpt_proc_state(c) != '?' || ckpt_proc_state(e) != '?'; i++) {
		CHECK(i < 5000, "C %d or E %d is not gone", c, e);
		ckpt_sleep_ms(1);
	}
	CHECK(e != c, "group %d is the session's", e);

	char line[64];
	int n = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());
	ckpt_write_all(1, line, (size_t)n);
	CHECK_SYS(kill(l, SIGUSR1) == 0, "tell L");
	ckpt_wait_term();

	CHECK(getsid(0) == c, "session %d after the restore, want %d", getsid(0), c);
	CHECK(getpgid(0) == e, "group %d after the restore, want %d", getpgid(0), e);
	CHECK(getsid(0) != getpid() && getpgid(0) != getpid(), "the daemon leads its session or group");
	CHECK(kill(c, 0) != 0 && errno == ESRCH, "pid %d (the gone session leader) names a task after the restore", c);
	CHECK(kill(e, 0) != 0 && errno == ESRCH, "pid %d (the gone group leader) names a task after the restore", e);
	ckpt_pass();
}
