/* ckpt-test: */
/*
 * An epoll whose targets' fd numbers no longer hold their files:
 *  - eventfd A was added as fd 40, then fd 40 was closed; fd 41 (a dup)
 *    still holds A;
 *  - the read end of a pipe was added as fd 50, kept by a dup at fd 51,
 *    then fd 50 was dup2'd over by eventfd C (close-on-exec), which was
 *    added as fd 50 too: two targets with tfd 50;
 *  - eventfd D at fd 60 as a plain target.
 * After the restore epoll_wait must report the right files with their
 * data words, fd 40 must stay closed, fd 50 must still be C with its
 * close-on-exec flag, and the epoll's keys (file, fd number) must be as
 * they were: MOD of fd 50 finds C, MOD of fd 41 or 51 finds nothing.
 */
#include "ckpt_test.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#define DA 0xA1A1A1A100000001ULL
#define DB 0xB2B2B2B200000002ULL
#define DC 0xC3C3C3C300000003ULL
#define DD 0xD4D4D4D400000004ULL

static int ep;

/* wait_set returns the data words epoll_wait reports, as a bit set. */
static unsigned wait_set(void)
{
	struct epoll_event out[8];
	int n = epoll_wait(ep, out, 8, 0);
	CHECK_SYS(n >= 0, "epoll_wait");
	unsigned set = 0;
	for (int i = 0; i < n; i++) {
		switch (out[i].data.u64) {
		case DA: set |= 1; break;
		case DB: set |= 2; break;
		case DC: set |= 4; break;
		case DD: set |= 8; break;
		default:
			ckpt_fail("epoll_wait: unknown data %#llx", (unsigned long long)out[i].data.u64);
		}
	}
	return set;
}

static void add(int fd, uint64_t data)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "add fd %d", fd);
}

static void put(int fd, const char *what)
{
	uint64_t one = 1;
	CHECK_SYS(write(fd, &one, 8) == 8, "write %s", what);
}

static void take(int fd, const char *what)
{
	uint64_t v;
	CHECK_SYS(read(fd, &v, 8) == 8, "read %s", what);
}

int main(void)
{
	ckpt_block_term();
	ep = epoll_create1(0);
	CHECK_SYS(ep >= 0, "epoll_create1");

	int a = eventfd(1, 0);
	CHECK_SYS(a >= 0 && dup2(a, 40) == 40 && dup2(a, 41) == 41 && close(a) == 0, "eventfd A at 40, 41");
	add(40, DA);
	CHECK_SYS(close(40) == 0, "close 40");

	int p[2];
	CHECK_SYS(pipe(p) == 0, "pipe");
	CHECK_SYS(dup2(p[0], 50) == 50 && dup2(p[0], 51) == 51 && close(p[0]) == 0, "pipe read end at 50, 51");
	CHECK_SYS(dup2(p[1], 52) == 52 && close(p[1]) == 0, "pipe write end at 52");
	add(50, DB);
	int c = eventfd(0, 0);
	CHECK_SYS(c >= 0 && dup3(c, 50, O_CLOEXEC) == 50 && close(c) == 0, "eventfd C over 50");
	add(50, DC);

	int d = eventfd(0, 0);
	CHECK_SYS(d >= 0 && dup2(d, 60) == 60 && close(d) == 0, "eventfd D at 60");
	add(60, DD);

	CHECK(wait_set() == 1, "before: want only A ready");

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fcntl(40, F_GETFD) < 0 && errno == EBADF, "fd 40 is open after the restore");
	CHECK(fcntl(50, F_GETFD) == FD_CLOEXEC, "fd 50 lost its close-on-exec flag");
	unsigned s = wait_set();
	CHECK(s == 1, "after restore: ready set %#x, want A (1)", s);
	put(52, "pipe");
	s = wait_set();
	CHECK(s == 3, "after a pipe write: ready set %#x, want A|B (3)", s);
	take(41, "A");
	s = wait_set();
	CHECK(s == 2, "after reading A: ready set %#x, want B (2)", s);
	put(50, "C");
	s = wait_set();
	CHECK(s == 6, "after writing C: ready set %#x, want B|C (6)", s);
	char buf[8];
	CHECK_SYS(read(51, buf, 8) == 8, "read pipe");
	s = wait_set();
	CHECK(s == 4, "after reading the pipe: ready set %#x, want C (4)", s);
	put(60, "D");
	s = wait_set();
	CHECK(s == 12, "after writing D: ready set %#x, want C|D (12)", s);
	take(50, "C");
	take(60, "D");
	CHECK(wait_set() == 0, "nothing should be ready");

	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DC};
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_MOD, 50, &ev) == 0, "MOD fd 50 (C)");
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, 41, &ev) < 0 && errno == ENOENT, "MOD fd 41: want ENOENT");
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, 51, &ev) < 0 && errno == ENOENT, "MOD fd 51: want ENOENT");
	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, 40, &ev) < 0 && errno == EBADF, "MOD fd 40: want EBADF");
	ckpt_pass();
}
