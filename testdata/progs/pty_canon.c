/* ckpt-test: */
/*
 * pty_canon: a pty pair whose slave is in canonical mode with echo (the
 * default modes of a new terminal), with input queued for the slave's
 * reader that it has not read: complete lines, one ended by VEOF (^D,
 * which the kernel does not queue), one holding the erase character
 * typed after VLNEXT (^V), and a partial line; and their echo queued for
 * the master's reader. After the restore the slave must read the same
 * lines one read each ("line1\n", "eof", "lit<DEL>x\n", "line2\n"),
 * the partial line must still wait for its end (it is not readable until
 * "ial\n" completes it), and the master must read the same echo.
 */
#include "ckpt_test.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

/* lit^V<DEL>x: a DEL (the erase character) queued as it is, after VLNEXT. */
#define TYPED "line1\neof\004lit\026\177x\nline2\npart"
#define ECHOED "line1\r\neoflit^\b^?x\r\nline2\r\npart"

static ssize_t read_wait(int fd, char *buf, size_t n)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return -1;
	return read(fd, buf, n);
}

int main(void)
{
	ckpt_block_term();
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	CHECK_SYS(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0, "posix_openpt");
	int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_NONBLOCK);
	CHECK_SYS(s >= 0, "open the slave");
	struct termios tio;
	CHECK_SYS(tcgetattr(s, &tio) == 0, "tcgetattr");
	CHECK((tio.c_lflag & (ICANON | ECHO)) == (ICANON | ECHO), "a new terminal is not canonical with echo");
	CHECK_SYS(write(m, TYPED, strlen(TYPED)) == (ssize_t)strlen(TYPED), "type on the master");
	for (int i = 0; i < 500; i++) {
		int out = 0;
		CHECK_SYS(ioctl(m, FIONREAD, &out) == 0, "FIONREAD");
		if (out == (int)strlen(ECHOED))
			break;
		ckpt_sleep_ms(10);
	}

	ckpt_ready();
	ckpt_wait_term();

	struct termios t2;
	CHECK_SYS(tcgetattr(s, &t2) == 0, "tcgetattr after");
	CHECK(t2.c_iflag == tio.c_iflag && t2.c_oflag == tio.c_oflag && t2.c_lflag == tio.c_lflag &&
	      memcmp(t2.c_cc, tio.c_cc, sizeof(tio.c_cc)) == 0, "termios changed");
	char buf[256];
	const char *lines[] = {"line1\n", "eof", "lit\177x\n", "line2\n"};
	for (int i = 0; i < 4; i++) {
		memset(buf, 0, sizeof(buf));
		ssize_t n = read_wait(s, buf, sizeof(buf));
		CHECK(n == (ssize_t)strlen(lines[i]) && memcmp(buf, lines[i], n) == 0, "read %d: %zd bytes '%s', want '%s'", i, n, buf, lines[i]);
	}
	/* The partial line is not readable yet. */
	CHECK(read(s, buf, sizeof(buf)) < 0 && errno == EAGAIN, "the partial line was readable");
	CHECK_SYS(write(m, "ial\n", 4) == 4, "end the line");
	memset(buf, 0, sizeof(buf));
	ssize_t n = read_wait(s, buf, sizeof(buf));
	CHECK(n == 8 && memcmp(buf, "partial\n", 8) == 0, "last line: %zd bytes '%s'", n, buf);
	/* The master: the echo queued before the dump, then the new one. */
	const char *want = ECHOED "ial\r\n";
	size_t got = 0;
	memset(buf, 0, sizeof(buf));
	while (got < strlen(want)) {
		n = read_wait(m, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	CHECK(got == strlen(want) && memcmp(buf, want, got) == 0, "echo: %zu bytes '%s'", got, buf);
	ckpt_pass();
}
