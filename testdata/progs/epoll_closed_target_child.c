/* ckpt-test: */
/*
 * An epoll target whose file only another process of the tree holds:
 * eventfd E (counter 1) at fd 40 is inherited by a child, then the parent
 * adds fd 40 to its epoll and closes it. The epoll keeps the target (the
 * child's fd keeps the file open). After the restore the parent's epoll
 * must report E with its data word while fd 40 of the parent stays
 * closed, and stop reporting it once the child has read E's counter.
 */
#include "ckpt_test.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

int main(void)
{
	ckpt_block_term();
	int e = eventfd(1, 0);
	CHECK_SYS(e >= 0 && dup2(e, 40) == 40 && close(e) == 0, "eventfd at 40");
	pid_t child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		ckpt_wait_term();
		uint64_t v;
		_exit(read(40, &v, 8) == 8 && v == 1 ? 0 : 1);
	}
	int ep = epoll_create1(0);
	CHECK_SYS(ep >= 0, "epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x4040404012345678ULL};
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, 40, &ev) == 0, "add 40");
	CHECK_SYS(close(40) == 0, "close 40");

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fcntl(40, F_GETFD) < 0 && errno == EBADF, "fd 40 of the parent is open after the restore");
	struct epoll_event out[2];
	int n = epoll_wait(ep, out, 2, 0);
	CHECK(n == 1 && out[0].data.u64 == 0x4040404012345678ULL, "epoll_wait: %d events, data %#llx", n,
	      n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
	CHECK_SYS(kill(child, SIGTERM) == 0, "kill child");
	int st;
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x (its read of fd 40)", st);
	/* The child read the counter: E is not readable, and gone with the
	 * child's fd, so the target is gone too. */
	n = epoll_wait(ep, out, 2, 0);
	CHECK(n == 0, "epoll_wait after the child read E: %d events", n);
	ckpt_pass();
}
