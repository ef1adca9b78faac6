/* ckpt-test: */
/*
 * pty: a pseudo-terminal pair (/dev/ptmx and /dev/pts/N) held by the
 * process, the slave in raw mode with a changed special character and an
 * owner of its own, a window size, packet mode on the master, and a
 * second pair left locked (O_NONBLOCK) with a line typed on its master, a third whose slave has a lower fd
 * than its master, with bytes queued and an owner (F_SETOWN); a child that makes the slave
 * the controlling terminal of its new session, and a grandchild in
 * another process group that is the terminal's foreground group. Bytes
 * are queued both ways: written on the master for the child (who has
 * not read them) and by the child on the slave for the master.
 *
 * After the restore the process checks the slave's termios, window size,
 * packet mode, lock state and owner, reads the child's queued bytes from the
 * master (in packet mode: after a TIOCPKT_DATA byte), and asks the child
 * to check itself: its controlling terminal is its slave (tty_nr of
 * /proc/self/stat; ttyname names a /dev/pts/M, M may differ from N), it
 * leads its session (TIOCGSID), the grandchild's group is in the
 * foreground (TIOCGPGRP); then the grandchild, in the foreground, reads
 * the bytes queued for the slave and answers "ping" with "pong" through
 * the pair.
 */
#include "ckpt_test.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

#define TO_CHILD "to-child\n"
#define FROM_CHILD "from-child"

/* Read exactly n bytes from fd, waiting at most 5 s for each. */
static int read_full(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 5000) != 1)
			return -1;
		ssize_t k = read(fd, buf + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

/* tty_nr of /proc/self/stat: the controlling terminal's device. */
static long ctty_dev(void)
{
	char buf[1024];
	ssize_t n = ckpt_read_file("/proc/self/stat", buf, sizeof(buf));
	if (n <= 0)
		return -1;
	char *p = strrchr(buf, ')');
	char state;
	int ppid, pgrp, session;
	long tty;
	if (!p || sscanf(p + 1, " %c %d %d %d %ld", &state, &ppid, &pgrp, &session, &tty) != 5)
		return -1;
	return tty;
}

/* The grandchild, in the foreground group: the bytes queued for the
 * slave's reader, then ping -> pong. (The child cannot read its terminal:
 * its group is in the background, and orphaned.) */
static void grandchild(int s, int go, int res)
{
	char c, buf[32] = "", msg[128] = "OK";
	if (read(go, &c, 1) != 1)
		_exit(2);
	if (read_full(s, buf, strlen(TO_CHILD)) != 0 || memcmp(buf, TO_CHILD, strlen(TO_CHILD)) != 0)
		snprintf(msg, sizeof(msg), "queued bytes for the slave: '%.9s' (%s)", buf, strerror(errno));
	else if (read_full(s, buf, 4) != 0 || memcmp(buf, "ping", 4) != 0)
		snprintf(msg, sizeof(msg), "no ping: '%.4s'", buf);
	else if (write(s, "pong", 4) != 4)
		snprintf(msg, sizeof(msg), "write pong: %s", strerror(errno));
	if (write(res, msg, strlen(msg)) < 0)
		_exit(2);
	_exit(0);
}

/* The child: session leader with the slave as its terminal. */
static void child(int s, int cmd, int res, pid_t gc, int go)
{
	char c;
	char msg[256] = "";
	if (read(cmd, &c, 1) != 1)
		_exit(2);
	char name[64] = "";
	struct stat st;
	pid_t sid = -1, fg = -1;
	if (ttyname_r(s, name, sizeof(name)) != 0 || strncmp(name, "/dev/pts/", 9) != 0)
		snprintf(msg, sizeof(msg), "ttyname of the slave: %s", name);
	else if (fstat(s, &st) != 0 || ctty_dev() != (long)st.st_rdev)
		snprintf(msg, sizeof(msg), "the controlling terminal is %#lx, not the slave %#lx", ctty_dev(), (long)st.st_rdev);
	else if (ioctl(s, TIOCGSID, &sid) != 0 || sid != getpid() || getsid(0) != getpid())
		snprintf(msg, sizeof(msg), "session %d, want %d (getsid %d)", (int)sid, (int)getpid(), (int)getsid(0));
	else if ((fg = tcgetpgrp(s)) != gc)
		snprintf(msg, sizeof(msg), "foreground group %d, want %d", (int)fg, (int)gc);
	if (msg[0]) {
		if (write(res, msg, strlen(msg)) < 0)
			_exit(2);
		kill(gc, SIGKILL);
	} else if (write(go, "g", 1) != 1) {
		_exit(2);
	}
	waitpid(gc, NULL, 0);
	_exit(0);
}

int main(void)
{
	ckpt_block_term();
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK_SYS(m >= 0, "posix_openpt");
	CHECK_SYS(grantpt(m) == 0 && unlockpt(m) == 0, "grantpt/unlockpt");
	char sname[64];
	CHECK_SYS(ptsname_r(m, sname, sizeof(sname)) == 0, "ptsname");
	int s = open(sname, O_RDWR | O_NOCTTY);
	CHECK_SYS(s >= 0, "open %s", sname);
	struct termios tio;
	CHECK_SYS(tcgetattr(s, &tio) == 0, "tcgetattr");
	cfmakeraw(&tio);
	tio.c_cc[VSUSP] = 0x1f;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	CHECK_SYS(tcsetattr(s, TCSANOW, &tio) == 0, "tcsetattr");
	CHECK_SYS(tcgetattr(s, &tio) == 0, "tcgetattr");
	struct winsize ws = {.ws_row = 33, .ws_col = 97, .ws_xpixel = 5, .ws_ypixel = 7};
	CHECK_SYS(ioctl(m, TIOCSWINSZ, &ws) == 0, "TIOCSWINSZ");
	int one = 1;
	CHECK_SYS(ioctl(m, TIOCPKT, &one) == 0, "TIOCPKT");
	/* A second pair, left locked as posix_openpt(3) makes it. */
	int m2 = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
	CHECK_SYS(m2 >= 0, "posix_openpt 2");
	/* Typed ahead for a slave nobody opened yet. */
	CHECK_SYS(write(m2, "early\n", 6) == 6, "write on the locked pair");
	/* A third pair whose slave has a lower fd than its master. */
	int m3a = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK_SYS(m3a >= 0 && grantpt(m3a) == 0 && unlockpt(m3a) == 0, "posix_openpt 3");
	int s3 = open(ptsname(m3a), O_RDWR | O_NOCTTY);
	CHECK_SYS(s3 >= 0, "open slave 3");
	int m3 = dup2(m3a, 40);
	CHECK_SYS(m3 == 40 && close(m3a) == 0, "move master 3 above its slave");
	struct termios raw3;
	CHECK_SYS(tcgetattr(s3, &raw3) == 0, "tcgetattr 3");
	cfmakeraw(&raw3);
	CHECK_SYS(tcsetattr(s3, TCSANOW, &raw3) == 0, "tcsetattr 3");
	CHECK_SYS(write(m3, "q3", 2) == 2, "queue for slave 3");
	/* An owner for signal-driven I/O (no O_ASYNC: no SIGIO comes). */
	CHECK_SYS(fcntl(m3, F_SETOWN, getpid()) == 0, "F_SETOWN");
	/* An owner of its own (as grantpt(3) or a server gives it). */
	CHECK_SYS(fchown(s, 4321, 5) == 0, "fchown the slave");

	int cmd[2], res[2], ready[2];
	CHECK_SYS(pipe(cmd) == 0 && pipe(res) == 0 && pipe(ready) == 0, "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		close(m);
		close(cmd[1]);
		close(res[0]);
		close(ready[0]);
		if (setsid() < 0 || ioctl(s, TIOCSCTTY, 0) != 0)
			_exit(3);
		int go[2];
		if (pipe(go) != 0)
			_exit(3);
		pid_t gc = fork();
		if (gc < 0)
			_exit(3);
		if (gc == 0) {
			close(go[1]);
			close(cmd[0]);
			close(ready[1]);
			setpgid(0, 0);
			grandchild(s, go[0], res[1]);
		}
		close(go[0]);
		setpgid(gc, gc);
		if (tcsetpgrp(s, gc) != 0)
			_exit(4);
		if (write(s, FROM_CHILD, strlen(FROM_CHILD)) != (ssize_t)strlen(FROM_CHILD))
			_exit(5);
		if (write(ready[1], &gc, sizeof(gc)) != sizeof(gc))
			_exit(6);
		child(s, cmd[0], res[1], gc, go[1]);
	}
	close(cmd[0]);
	close(res[1]);
	close(ready[1]);
	pid_t gc;
	CHECK_SYS(read(ready[0], &gc, sizeof(gc)) == sizeof(gc), "child set up (pid %d)", (int)c);
	CHECK_SYS(write(m, TO_CHILD, strlen(TO_CHILD)) == (ssize_t)strlen(TO_CHILD), "write to the child");
	/* Both queues settled before READY. */
	for (int i = 0; i < 500; i++) {
		int in = 0, out = 0;
		CHECK_SYS(ioctl(s, FIONREAD, &in) == 0 && ioctl(m, FIONREAD, &out) == 0, "FIONREAD");
		if (in == (int)strlen(TO_CHILD) && out == (int)strlen(FROM_CHILD))
			break;
		ckpt_sleep_ms(10);
	}
	ckpt_log("pty %s, child %d, grandchild %d", sname, (int)c, (int)gc);

	ckpt_ready();
	ckpt_wait_term();

	struct termios t2;
	CHECK_SYS(tcgetattr(s, &t2) == 0, "tcgetattr after");
	CHECK(t2.c_iflag == tio.c_iflag && t2.c_oflag == tio.c_oflag && t2.c_cflag == tio.c_cflag && t2.c_lflag == tio.c_lflag,
	      "termios flags %x %x %x %x, want %x %x %x %x", t2.c_iflag, t2.c_oflag, t2.c_cflag, t2.c_lflag,
	      tio.c_iflag, tio.c_oflag, tio.c_cflag, tio.c_lflag);
	CHECK(memcmp(t2.c_cc, tio.c_cc, sizeof(tio.c_cc)) == 0 && t2.c_cc[VSUSP] == 0x1f, "special characters changed");
	struct winsize w2;
	CHECK_SYS(ioctl(s, TIOCGWINSZ, &w2) == 0, "TIOCGWINSZ");
	CHECK(w2.ws_row == 33 && w2.ws_col == 97 && w2.ws_xpixel == 5 && w2.ws_ypixel == 7, "window %dx%d", w2.ws_col, w2.ws_row);
	int pkt = -1, lck = -1;
	CHECK_SYS(ioctl(m, TIOCGPKT, &pkt) == 0 && ioctl(m, TIOCGPTLCK, &lck) == 0, "TIOCGPKT/TIOCGPTLCK");
	CHECK(pkt == 1 && lck == 0, "packet mode %d, lock %d", pkt, lck);
	CHECK_SYS(ioctl(m2, TIOCGPTLCK, &lck) == 0 && ioctl(m2, TIOCGPKT, &pkt) == 0, "second pair");
	CHECK(lck == 1 && pkt == 0, "second pair: lock %d, packet mode %d, want locked, no packet mode", lck, pkt);
	CHECK(fcntl(m2, F_GETFL) & O_NONBLOCK, "second master lost O_NONBLOCK");
	{
		int u = 0;
		char n2[64], e[8] = "";
		CHECK_SYS(ioctl(m2, TIOCSPTLCK, &u) == 0 && ptsname_r(m2, n2, sizeof(n2)) == 0, "unlock the second pair");
		int s2 = open(n2, O_RDWR | O_NOCTTY);
		CHECK_SYS(s2 >= 0, "open %s", n2);
		CHECK(read_full(s2, e, 6) == 0 && memcmp(e, "early\n", 6) == 0, "the bytes typed on the locked pair: '%.6s'", e);
		close(s2);
	}
	{
		struct stat a, b;
		char *n3 = ptsname(m3);
		CHECK_SYS(n3 && stat(n3, &a) == 0 && fstat(s3, &b) == 0, "stat pair 3");
		CHECK(a.st_rdev == b.st_rdev, "fd %d is not the slave of master %d", s3, m3);
		char q[2];
		CHECK(read_full(s3, q, 2) == 0 && memcmp(q, "q3", 2) == 0, "pair 3 lost its queued bytes");
		CHECK(fcntl(m3, F_GETOWN) == getpid(), "master 3's owner is %d", fcntl(m3, F_GETOWN));
	}
	char *sname2 = ptsname(m);
	struct stat st1, st2;
	CHECK_SYS(sname2 && stat(sname2, &st1) == 0 && fstat(s, &st2) == 0, "stat the slave");
	CHECK(st1.st_rdev == st2.st_rdev, "fd %d is not the slave %s of master %d", s, sname2, m);
	CHECK(st2.st_uid == 4321 && st2.st_gid == 5, "the slave's owner is %d:%d, want 4321:5", (int)st2.st_uid, (int)st2.st_gid);
	ckpt_log("pty after the restore: %s (was %s)", sname2, sname);

	char buf[64];
	CHECK(read_full(m, buf, 1 + strlen(FROM_CHILD)) == 0, "no queued bytes from the child");
	CHECK(buf[0] == TIOCPKT_DATA && memcmp(buf + 1, FROM_CHILD, strlen(FROM_CHILD)) == 0,
	      "from the child: %d '%.10s'", buf[0], buf + 1);
	CHECK_SYS(write(cmd[1], "c", 1) == 1, "ask the child");
	CHECK_SYS(write(m, "ping", 4) == 4, "ping");
	memset(buf, 0, sizeof(buf));
	ssize_t n = read(res[0], buf, sizeof(buf) - 1);
	CHECK(n > 0, "child %d gave no answer", (int)c);
	CHECK(strcmp(buf, "OK") == 0, "child: %s", buf);
	CHECK(read_full(m, buf, 5) == 0 && buf[0] == TIOCPKT_DATA && memcmp(buf + 1, "pong", 4) == 0, "no pong");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
