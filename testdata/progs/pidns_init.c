/* ckpt-test: pidns=yes */
/*
 * The init of a PID namespace of its own (the harness starts it with
 * CLONE_NEWPID), with a child and a grandchild. The dump names them by
 * their PIDs inside the namespace and the restore makes a new namespace:
 * after it the init is still PID 1, its child still PID 2 and so on,
 * whatever PIDs the host gave them, and the init still reaps them.
 */
#include "ckpt_test.h"

#include <sys/wait.h>

static void child_loop(pid_t want_self, pid_t want_parent)
{
	ckpt_wait_term();
	CHECK(getpid() == want_self, "pid %d, want %d", getpid(), want_self);
	CHECK(getppid() == want_parent, "ppid %d, want %d", getppid(), want_parent);
	_exit(0);
}

int main(void)
{
	ckpt_block_term();
	CHECK(getpid() == 1, "not the init of a PID namespace: pid %d", getpid());
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		pid_t g = fork();
		CHECK_SYS(g >= 0, "fork");
		if (g == 0)
			child_loop(3, 2);
		ckpt_wait_term();
		CHECK(getpid() == 2 && getppid() == 1, "child: pid %d ppid %d", getpid(), getppid());
		int st;
		CHECK_SYS(kill(g, SIGTERM) == 0, "kill grandchild");
		CHECK_SYS(waitpid(g, &st, 0) == g, "waitpid grandchild");
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "grandchild status %#x", st);
		_exit(0);
	}
	CHECK(c == 2, "first child got pid %d, want 2", c);
	usleep(50000);
	ckpt_ready();
	ckpt_wait_term();
	CHECK(getpid() == 1, "init is pid %d after restore", getpid());
	int st;
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid child");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
