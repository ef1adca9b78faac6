/* ckpt-test: stdin=pipe */
/*
 * restart_read: checkpointed while blocked in read(2) on an empty pipe (the
 * ERESTARTSYS case). After the restore the harness writes "ckpt-input\n"
 * into the pipe; the read must return exactly those 11 bytes.
 * SIGTERM is blocked, so it cannot interrupt the read.
 */
#include "ckpt_test.h"

#include <sys/stat.h>

int main(void)
{
	char buf[64];
	struct stat st;
	ssize_t n;
	int fl;

	CHECK_SYS(fstat(0, &st) == 0, "fstat(0)");
	/* A pipe from the harness, or a terminal (the shell-job tty test). */
	CHECK(S_ISFIFO(st.st_mode) || isatty(0), "stdin is neither a pipe nor a tty (mode %o)",
	      (unsigned)st.st_mode);
	fl = fcntl(0, F_GETFL);
	CHECK_SYS(fl >= 0, "F_GETFL");
	CHECK(!(fl & O_NONBLOCK), "stdin is non-blocking");

	ckpt_block_term();
	ckpt_ready();
	memset(buf, 0, sizeof(buf));
	n = read(0, buf, sizeof(buf));

	CHECK(n == 11, "read returned %zd (%s)", n, n < 0 ? strerror(errno) : "wrong length");
	CHECK(memcmp(buf, "ckpt-input\n", 11) == 0, "read '%.*s'", (int)n, buf);
	{
		int was_tty = !S_ISFIFO(st.st_mode);
		CHECK(fstat(0, &st) == 0 && (was_tty ? isatty(0) : S_ISFIFO(st.st_mode)),
		      "stdin is no longer a %s", was_tty ? "tty" : "pipe");
	}

	ckpt_wait_term();
	ckpt_pass();
}
