/* ckpt-test: */
/*
 * Signal-driven I/O: the read end of a pipe with O_ASYNC, owned by the
 * task (F_SETOWN) and set to send SIGUSR1 (F_SETSIG) instead of SIGIO.
 * After the restore the owner, the signal and O_ASYNC are still set,
 * and a write into the pipe brings SIGUSR1 with the fd in si_fd.
 */
#include "ckpt_test.h"

#include <time.h>

int main(void)
{
	int p[2];
	sigset_t set;

	ckpt_block_term();
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGIO);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &set, NULL) == 0, "block SIGUSR1, SIGIO");
	CHECK_SYS(pipe(p) == 0, "pipe");
	CHECK_SYS(fcntl(p[0], F_SETOWN, getpid()) == 0, "F_SETOWN");
	CHECK_SYS(fcntl(p[0], F_SETSIG, SIGUSR1) == 0, "F_SETSIG");
	CHECK_SYS(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_ASYNC) == 0, "O_ASYNC");

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fcntl(p[0], F_GETOWN) == getpid(), "owner %d, want %d", fcntl(p[0], F_GETOWN), getpid());
	CHECK(fcntl(p[0], F_GETSIG) == SIGUSR1, "F_GETSIG %d, want SIGUSR1", fcntl(p[0], F_GETSIG));
	CHECK(fcntl(p[0], F_GETFL) & O_ASYNC, "O_ASYNC lost: flags %#x", fcntl(p[0], F_GETFL));
	CHECK_SYS(write(p[1], "x", 1) == 1, "write");
	siginfo_t si;
	struct timespec ts = {5, 0};
	int s = sigtimedwait(&set, &si, &ts);
	CHECK(s == SIGUSR1, "no SIGUSR1 after a write into the pipe (got %d: %s)", s, s < 0 ? strerror(errno) : "another signal");
	CHECK(si.si_fd == p[0], "si_fd %d, want %d", si.si_fd, p[0]);
	ckpt_pass();
}
