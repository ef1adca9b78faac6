/* ckpt-test: */
/*
 * A child created with clone(CLONE_FILES | CLONE_FS): it shares the fd
 * table and the cwd/umask of its parent. After the restore a file the
 * parent opens is open in the child at the same number, and a chdir of
 * the child moves the parent too.
 */
#include "ckpt_test.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

int main(void)
{
	ckpt_block_term();
	CHECK_SYS(mkdir("sub", 0755) == 0, "mkdir");
	int p2c[2];
	CHECK_SYS(pipe(p2c) == 0, "pipe");
	long c = syscall(SYS_clone, CLONE_FILES | CLONE_FS | SIGCHLD, 0, 0, 0, 0);
	CHECK_SYS(c >= 0, "clone");
	if (c == 0) {
		ckpt_wait_term();
		/* The parent opened a file and wrote its fd number in the pipe. */
		int fd = -1;
		CHECK_SYS(read(p2c[0], &fd, sizeof fd) == sizeof fd, "child: read");
		CHECK(fcntl(fd, F_GETFD) >= 0, "child: fd %d the parent opened is not in its table", fd);
		CHECK_SYS(chdir("sub") == 0, "child: chdir");
		_exit(0);
	}
	char cwd0[512];
	CHECK_SYS(getcwd(cwd0, sizeof cwd0) != NULL, "getcwd");
	ckpt_ready();
	ckpt_wait_term();
	int fd = open("opened-after", O_CREAT | O_RDWR, 0644);
	CHECK_SYS(fd >= 0, "open");
	CHECK_SYS(write(p2c[1], &fd, sizeof fd) == sizeof fd, "write");
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	char cwd[512];
	CHECK_SYS(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
	CHECK(strlen(cwd) == strlen(cwd0) + 4 && strcmp(cwd + strlen(cwd0), "/sub") == 0,
	      "the child's chdir did not move the parent: %s (was %s)", cwd, cwd0);
	ckpt_pass();
}
