/* ckpt-test: */
/*
 * A parent with three unreaped children (zombies), one that exited with
 * status 5, one killed by SIGUSR2 and one killed by SIGKILL (whose
 * action cannot be set: the restore must make it die anyway), and a
 * live child. After the restore
 * the zombies must still be there, be the parent's children, and waitpid()
 * must return their statuses.
 */
#include "ckpt_test.h"

#include <sys/wait.h>

int main(void)
{
	ckpt_block_term();
	pid_t z = fork();
	CHECK_SYS(z >= 0, "fork");
	if (z == 0)
		_exit(5);
	pid_t k = fork();
	CHECK_SYS(k >= 0, "fork");
	if (k == 0) {
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		signal(SIGUSR2, SIG_DFL);
		raise(SIGUSR2);
		_exit(99);
	}
	pid_t kk = fork();
	CHECK_SYS(kk >= 0, "fork");
	if (kk == 0) {
		raise(SIGKILL);
		_exit(99);
	}
	pid_t live = fork();
	CHECK_SYS(live >= 0, "fork");
	if (live == 0) {
		ckpt_wait_term();
		_exit(0);
	}
	for (int i = 0; ckpt_proc_state(z) != 'Z' || ckpt_proc_state(k) != 'Z' || ckpt_proc_state(kk) != 'Z'; i++) {
		CHECK(i < 1000, "child %d never became a zombie", z);
		usleep(1000);
	}
	ckpt_ready();
	ckpt_wait_term();
	CHECK(ckpt_proc_state(z) == 'Z', "child %d is in state %c, want a zombie", z, ckpt_proc_state(z));
	int st = 0;
	CHECK_SYS(waitpid(z, &st, WNOHANG) == z, "waitpid(zombie %d)", z);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 5, "zombie status %#x, want exit 5", st);
	CHECK(ckpt_proc_state(k) == 'Z', "child %d is in state %c, want a zombie", k, ckpt_proc_state(k));
	CHECK_SYS(waitpid(k, &st, WNOHANG) == k, "waitpid(zombie %d)", k);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR2, "zombie status %#x, want killed by SIGUSR2", st);
	CHECK(ckpt_proc_state(kk) == 'Z', "child %d is in state %c, want a zombie", kk, ckpt_proc_state(kk));
	CHECK_SYS(waitpid(kk, &st, WNOHANG) == kk, "waitpid(zombie %d)", kk);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "zombie status %#x, want killed by SIGKILL", st);
	CHECK_SYS(kill(live, SIGTERM) == 0, "kill live child");
	CHECK_SYS(waitpid(live, &st, 0) == live, "waitpid(live)");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "live child status %#x", st);
	ckpt_pass();
}
