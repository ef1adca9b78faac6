/* ckpt-test: expect=dump-fail dump-error=EPOLL_CTL_DEL */
/*
 * An epoll target whose file no fd of the epoll's process holds any
 * more: eventfd E at fd 40 is inherited by a child, then the parent adds
 * fd 40 to its epoll and closes it. The epoll keeps the target (the
 * child's fd keeps the file open), but the restore could not add it back
 * from the parent: the dump must refuse it by name and leave both
 * processes as they were.
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
		_exit(0);
	}
	int ep = epoll_create1(0);
	CHECK_SYS(ep >= 0, "epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x4040};
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, 40, &ev) == 0, "add 40");
	CHECK_SYS(close(40) == 0, "close 40");

	ckpt_ready();
	ckpt_wait_term();

	struct epoll_event out[2];
	int n = epoll_wait(ep, out, 2, 0);
	CHECK(n == 1 && out[0].data.u64 == 0x4040, "epoll_wait: %d events", n);
	CHECK_SYS(kill(child, SIGTERM) == 0, "kill child");
	int st;
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
