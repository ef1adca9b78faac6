/* ckpt-test: expect=dump-fail dump-error=session */
/*
 * pty_ctty_refused: a child makes the slave of the process's pty pair the
 * controlling terminal of its new session, then closes every fd of the
 * slave. The restore would need such an fd in the session leader to make
 * the new terminal its controlling terminal again (TIOCSCTTY), so the
 * dump must refuse, naming the session, and leave the tree untouched:
 * the child still has the terminal.
 */
#include "ckpt_test.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static long ctty_of(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (ckpt_read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	char state;
	int ppid, pgrp, session;
	long tty;
	if (!p || sscanf(p + 1, " %c %d %d %d %ld", &state, &ppid, &pgrp, &session, &tty) != 5)
		return -1;
	return tty;
}

int main(void)
{
	ckpt_block_term();
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK_SYS(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "posix_openpt");
	char *sname = ptsname(m);
	CHECK_SYS(sname != NULL, "ptsname");
	struct stat st;
	CHECK_SYS(stat(sname, &st) == 0, "stat %s", sname);
	int ready[2], hold[2];
	CHECK_SYS(pipe(ready) == 0 && pipe(hold) == 0, "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		close(ready[0]);
		close(hold[1]);
		close(m);
		if (setsid() < 0)
			_exit(3);
		int s = open(sname, O_RDWR);
		if (s < 0 || ioctl(s, TIOCSCTTY, 0) != 0)
			_exit(4);
		close(s);
		if (write(ready[1], "r", 1) != 1)
			_exit(5);
		char x;
		while (read(hold[0], &x, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char x;
	CHECK_SYS(read(ready[0], &x, 1) == 1, "child %d set up", (int)c);
	CHECK(ctty_of(c) == (long)st.st_rdev, "child's terminal %#lx, want %#lx", ctty_of(c), (long)st.st_rdev);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(ctty_of(c) == (long)st.st_rdev, "after the refused dump the child's terminal is %#lx, want %#lx", ctty_of(c), (long)st.st_rdev);
	close(hold[1]);
	int ws;
	CHECK_SYS(waitpid(c, &ws, 0) == c, "waitpid");
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child status %#x", ws);
	ckpt_pass();
}
