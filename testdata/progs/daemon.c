/* ckpt-test: daemon=yes */
/*
 * A double-forked daemon, dumped on its own: the program L forks C, C
 * calls setsid() and forks D, C exits. D lives on in session C and group
 * C, whose leader is gone. D is a child subreaper and has three children:
 *   K, a plain child in D's session and group;
 *   Y, a daemon of its own: D forked X, X called setsid() and forked Y,
 *      X exited, Y came to D: Y is in session X, whose leader is gone;
 *   G, in group F of session C: D forked F, F made its own group and
 *      forked G, F exited: G's group leader and session leader are gone;
 *   Z, a zombie in session W, whose leader is gone (as Y, then it exited
 *      with status 7 and D has not reaped it).
 * The harness dumps D (daemon=yes: D prints "READY <pid>", L exits 0).
 * After the restore each task checks its session and group: the same
 * numbers, no task leads them, and the gone leaders' PIDs name no task.
 */
#include "ckpt_test.h"

#include <sys/prctl.h>
#include <sys/wait.h>

/* Wait for SIGTERM, then exit 0 if the session and group are sid, pgid. */
static void member(pid_t sid, pid_t pgid)
{
	ckpt_wait_term();
	if (getsid(0) != sid)
		_exit(10);
	if (getpgid(0) != pgid)
		_exit(11);
	if (getpid() == sid || getpid() == pgid)
		_exit(12);
	_exit(0);
}

/* Fork a child that makes its own session (or only group) and forks a
 * grandchild, which stays a member; the child exits and is reaped. The
 * grandchild, re-parented to this subreaper, is returned in *gc. */
static pid_t orphan(int session, int zombie, pid_t *gc)
{
	int p[2];

	CHECK_SYS(pipe(p) == 0, "pipe");
	pid_t x = fork();
	CHECK_SYS(x >= 0, "fork");
	if (x == 0) {
		close(p[0]);
		if (session ? setsid() < 0 : setpgid(0, 0) != 0)
			_exit(2);
		pid_t sid = getsid(0), me = getpid();
		pid_t y = fork();
		if (y < 0)
			_exit(3);
		if (y == 0) {
			close(p[1]);
			if (zombie)
				_exit(7);
			member(sid, me);
		}
		if (write(p[1], &y, sizeof(y)) != sizeof(y))
			_exit(4);
		_exit(0);
	}
	close(p[1]);
	CHECK_SYS(read(p[0], gc, sizeof(*gc)) == sizeof(*gc), "read grandchild pid");
	close(p[0]);
	int st;
	CHECK_SYS(waitpid(x, &st, 0) == x, "reap %d", x);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d status %#x", x, st);
	return x;
}

static void reap_ok(pid_t pid, const char *name)
{
	int st;

	CHECK_SYS(kill(pid, SIGTERM) == 0, "SIGTERM %s %d", name, pid);
	CHECK_SYS(waitpid(pid, &st, 0) == pid, "reap %s %d", name, pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %d: status %#x (10: session, 11: group, 12: leads them)", name, pid, st);
}

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
	/* C */
	if (setsid() < 0)
		_exit(2);
	pid_t d = fork();
	if (d < 0)
		_exit(3);
	if (d != 0)
		_exit(0);
	/* D, the daemon (c is 0 here: C's session names it). */
	c = getsid(0);
	CHECK_SYS(sigprocmask(SIG_UNBLOCK, &usr1, NULL) == 0, "unblock SIGUSR1");
	for (int i = 0; ckpt_proc_state(c) != '?'; i++) {
		CHECK(i < 5000, "C %d is not gone", c);
		ckpt_sleep_ms(1);
	}
	CHECK_SYS(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper");
	pid_t k = fork();
	CHECK_SYS(k >= 0, "fork K");
	if (k == 0)
		member(c, c);
	pid_t y, g;
	pid_t x = orphan(1, 0, &y);
	pid_t f = orphan(0, 0, &g);
	pid_t z;
	pid_t w = orphan(1, 1, &z);
	for (int i = 0; ckpt_proc_state(z) != 'Z'; i++) {
		CHECK(i < 5000, "Z %d is not a zombie", z);
		ckpt_sleep_ms(1);
	}

	char line[64];
	int n = snprintf(line, sizeof(line), "READY %d\n", (int)getpid());
	ckpt_write_all(1, line, (size_t)n);
	CHECK_SYS(kill(l, SIGUSR1) == 0, "tell L");
	ckpt_wait_term();

	CHECK(getsid(0) == c, "session %d after the restore, want %d", getsid(0), c);
	CHECK(getpgid(0) == c, "group %d after the restore, want %d", getpgid(0), c);
	CHECK(getsid(0) != getpid() && getpgid(0) != getpid(), "the daemon leads its session or group");
	CHECK(kill(c, 0) != 0 && errno == ESRCH, "pid %d (the gone session leader) names a task after the restore", c);
	CHECK(getsid(y) == x && getpgid(y) == x, "Y %d: session %d group %d, want %d", y, getsid(y), getpgid(y), x);
	CHECK(getsid(g) == c && getpgid(g) == f, "G %d: session %d group %d, want %d %d", g, getsid(g), getpgid(g), c, f);
	CHECK(kill(x, 0) != 0 && errno == ESRCH, "pid %d (Y's gone session leader) names a task", x);
	CHECK(kill(f, 0) != 0 && errno == ESRCH, "pid %d (G's gone group leader) names a task", f);
	CHECK(getsid(z) == w && getpgid(z) == w, "zombie Z %d: session %d group %d, want %d", z, getsid(z), getpgid(z), w);
	CHECK(kill(w, 0) != 0 && errno == ESRCH, "pid %d (Z's gone session leader) names a task", w);
	int st;
	CHECK_SYS(waitpid(z, &st, 0) == z, "reap zombie Z %d", z);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "zombie Z %d: status %#x, want exit 7", z, st);
	reap_ok(k, "K");
	reap_ok(y, "Y");
	reap_ok(g, "G");
	ckpt_pass();
}
