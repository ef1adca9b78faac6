/* ckpt-test: */
/*
 * fifo_outside: a FIFO that a process outside the dumped tree holds open
 * too (a grandchild that left the tree: its parent exited). The bytes
 * queued in it at the dump stay in the live FIFO, so the restore must not
 * write them again: after the restore they are read exactly once.
 */
#include "ckpt_test.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

int main(void)
{
	int fd, sync[2], n, st;
	pid_t c, outsider;
	char buf[64];

	CHECK_SYS(mkfifo("q", 0600) == 0, "mkfifo");
	fd = open("q", O_RDWR | O_NONBLOCK);
	CHECK_SYS(fd >= 0, "open q");
	CHECK_SYS(write(fd, "cmd\n", 4) == 4, "write q");
	CHECK_SYS(pipe(sync) == 0, "pipe");
	c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		pid_t g = fork();
		if (g == 0) {
			int h;
			setsid();
			alarm(120);	/* never outlive the test for long */
			h = open("q", O_RDWR);
			if (h < 0)
				_exit(1);
			g = getpid();
			if (write(sync[1], &g, sizeof(g)) != sizeof(g))
				_exit(1);
			for (;;)
				pause();
		}
		_exit(g > 0 ? 0 : 1);
	}
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK_SYS(read(sync[0], &outsider, sizeof(outsider)) == sizeof(outsider), "read the outsider's pid");
	close(sync[0]);
	close(sync[1]);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	n = (int)read(fd, buf, sizeof(buf));
	kill(outsider, SIGKILL);
	CHECK_SYS(n >= 0, "read q");
	CHECK(n == 4 && memcmp(buf, "cmd\n", 4) == 0, "read %d bytes '%.*s', want 'cmd\\n' once", n, n, buf);
	CHECK_SYS(ioctl(fd, FIONREAD, &n) == 0, "FIONREAD");
	CHECK(n == 0, "%d more bytes in the FIFO", n);
	ckpt_pass();
}
