/* ckpt-test: */
/*
 * A parent blocked in waitpid() at checkpoint time (ERESTARTSYS), with its
 * child blocked in nanosleep() (ERESTART_RESTARTBLOCK). After the restore
 * the child sleeps on and exits 7; the parent's wait goes on and must
 * return that child with that status. SIGTERM then ends the parent.
 */
#include "ckpt_test.h"

#include <sys/wait.h>

int main(void)
{
	ckpt_block_term();
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		struct timespec ts = {3, 0};
		while (nanosleep(&ts, &ts) != 0)
			;
		_exit(7);
	}
	int64_t t0 = ckpt_mono_ns();
	ckpt_ready();
	int st = 0;
	pid_t got = waitpid(c, &st, 0);
	CHECK_SYS(got == c, "waitpid returned %d, want child %d", got, c);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "child status %#x, want exit 7", st);
	CHECK(ckpt_mono_ns() - t0 >= 2900000000LL, "child ended after %lld ns, before its 3 s sleep",
	      (long long)(ckpt_mono_ns() - t0));
	ckpt_wait_term();
	ckpt_pass();
}
