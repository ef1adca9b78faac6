/* ckpt-test: expect=dump-fail dump-error=outside */
/*
 * unix_outside: a unix stream socket whose peer is held by a process
 * outside the dumped tree (a grandchild left to the subreaper by a
 * double fork) is refused by name, and the dump leaves the connection
 * as it was: after the refused dump the outside peer still answers.
 */
#include "ckpt_test.h"

#include <sys/socket.h>
#include <sys/wait.h>

int main(void)
{
	int sv[2], status;
	char buf[16];
	pid_t pid;

	ckpt_block_term();
	CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		/* The grandchild: outside the tree once its parent is gone;
		 * it ends when the socket closes, or on SIGTERM. */
		sigset_t all;

		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		setsid();
		close(sv[0]);
		for (;;) {
			ssize_t n = read(sv[1], buf, sizeof(buf));

			if (n <= 0)
				_exit(0);
			if (n == 4 && memcmp(buf, "ping", 4) == 0)
				ckpt_write_all(sv[1], "pong", 4);
		}
	}
	close(sv[1]);
	CHECK_SYS(waitpid(pid, &status, 0) == pid, "waitpid");
	ckpt_write_all(sv[0], "ping", 4);
	CHECK_SYS(read(sv[0], buf, 4) == 4 && memcmp(buf, "pong", 4) == 0, "first answer");

	ckpt_ready();
	ckpt_wait_term();

	ckpt_write_all(sv[0], "ping", 4);
	CHECK_SYS(read(sv[0], buf, 4) == 4 && memcmp(buf, "pong", 4) == 0, "answer after the refused dump");
	close(sv[0]); /* the grandchild ends */
	ckpt_pass();
}
