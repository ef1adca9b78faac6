/* ckpt-test: stdin=pipe expect=dump-fail dump-error=outside */
/*
 * A pipe to a process outside the tree on an fd other than stdio: fd 5,
 * stdin's pipe opened anew through /proc/self/fd/0 (its own open file
 * description; a dup of stdin would simply follow the inherited stdin),
 * whose write end the harness holds. A restore could only give the task
 * a new pipe with no one at the other end, so the dump must refuse it,
 * naming the fd, even with --shell-job (which covers stdio only), and
 * leave the task running: afterwards fd 5 is still the same pipe.
 */
#include "ckpt_test.h"

#include <sys/stat.h>

int main(void)
{
	struct stat before, after;

	ckpt_block_term();
	int fd = open("/proc/self/fd/0", O_RDONLY | O_NONBLOCK);
	CHECK_SYS(fd >= 0, "open stdin's pipe anew");
	CHECK_SYS(dup2(fd, 5) == 5 && close(fd) == 0, "move it to fd 5");
	CHECK_SYS(fstat(5, &before) == 0, "fstat");
	CHECK(S_ISFIFO(before.st_mode), "stdin is not a pipe");

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(fstat(5, &after) == 0, "fstat after");
	CHECK(after.st_ino == before.st_ino, "fd 5 is another file after the refused dump");
	ckpt_pass();
}
