/* ckpt-test: */
/*
 * A process group whose leader is gone: the root (a child subreaper)
 * forks C, C makes its own group and forks D into it, then C exits and
 * the root reaps it; D, re-parented to the root, stays in group C, whose
 * leader is no more (as with a shell's pipeline whose first command
 * ended). A zombie child Z of the root joins group C too. After the
 * restore D and Z are still in group C of the root's session, and pid C
 * is free again.
 */
#include "ckpt_test.h"

#include <sys/prctl.h>
#include <sys/wait.h>

int main(void)
{
	int p[2];

	ckpt_block_term();
	CHECK_SYS(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0, "subreaper");
	CHECK_SYS(pipe(p) == 0, "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork C");
	if (c == 0) {
		if (setpgid(0, 0) != 0)
			_exit(2);
		pid_t d = fork();
		if (d < 0)
			_exit(3);
		if (d == 0) {
			ckpt_wait_term();
			_exit(getpgrp() == getpid() ? 4 : 0);
		}
		if (write(p[1], &d, sizeof(d)) != sizeof(d))
			_exit(5);
		_exit(0);
	}
	pid_t d;
	CHECK_SYS(read(p[0], &d, sizeof(d)) == sizeof(d), "read D's pid");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "reap C");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "C status %#x", st);
	for (int i = 0; getpgid(d) != c || ckpt_proc_state(c) != '?'; i++) {
		CHECK(i < 1000, "D %d is not in group %d", d, c);
		ckpt_sleep_ms(1);
	}
	/* Z: a zombie in group C. */
	pid_t z = fork();
	CHECK_SYS(z >= 0, "fork Z");
	if (z == 0)
		_exit(7);
	CHECK_SYS(setpgid(z, c) == 0, "put Z in group %d", c);
	while (ckpt_proc_state(z) != 'Z')
		ckpt_sleep_ms(1);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(getpgid(d) == c, "D %d is in group %d after the restore, want %d", d, getpgid(d), c);
	CHECK(getsid(d) == getsid(0), "D is in session %d, want %d", getsid(d), getsid(0));
	CHECK(getpgid(z) == c, "zombie Z %d is in group %d, want %d", z, getpgid(z), c);
	CHECK(kill(c, 0) != 0 && errno == ESRCH, "pid %d (the gone leader) exists after the restore", c);
	CHECK_SYS(kill(d, SIGTERM) == 0, "stop D");
	CHECK_SYS(waitpid(d, &st, 0) == d, "reap D");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "D status %#x", st);
	CHECK_SYS(waitpid(z, &st, 0) == z, "reap Z");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "Z status %#x", st);
	ckpt_pass();
}
