/* ckpt-test: expect=dump-fail dump-error=inherited */
/*
 * A child forked after its parent's io_setup keeps the parent's AIO
 * ring mapped ([aio] in its maps) but has no context of its own: the
 * kernel answers io_getevents on that id with EINVAL in the child. A
 * restore would have to give the child a context it never had, so the
 * dump refuses the child's ring by name, and leaves the tree as it
 * was: afterwards the parent's context still works and the child's
 * still does not exist.
 */
#include "ckpt_test.h"

#include <linux/aio_abi.h>
#include <sys/wait.h>

static int getevents0(aio_context_t ctx)
{
	return (int)syscall(SYS_io_getevents, ctx, 0L, 0L, NULL, NULL);
}

int main(void)
{
	aio_context_t ctx = 0;
	char line[512];
	int status;
	pid_t child;

	ckpt_block_term();
	CHECK_SYS(syscall(SYS_io_setup, 4, &ctx) == 0, "io_setup");
	child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		sigset_t s;
		int sig;

		/* The child's ring is mapped, its context is not there. */
		if (ckpt_maps_line((void *)ctx, line, sizeof(line)) != 0 || !strstr(line, "[aio]"))
			_exit(2);
		if (getevents0(ctx) != -1 || errno != EINVAL)
			_exit(3);
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		sigprocmask(SIG_BLOCK, &s, NULL);
		sigwait(&s, &sig);
		if (getevents0(ctx) != -1 || errno != EINVAL)
			_exit(4);
		_exit(0);
	}

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(getevents0(ctx) == 0, "io_getevents on the parent's context after the refused dump");
	CHECK_SYS(kill(child, SIGUSR1) == 0, "signal the child");
	CHECK_SYS(waitpid(child, &status, 0) == child, "wait for the child");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	CHECK_SYS(syscall(SYS_io_destroy, ctx) == 0, "io_destroy");
	ckpt_pass();
}
