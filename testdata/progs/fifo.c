/* ckpt-test: */
/*
 * fifo: named pipes (FIFOs) held only by the task.
 *  - q1: a read end (O_RDONLY|O_NONBLOCK) and a write end, 13 bytes
 *    queued, pipe size 2 pages;
 *  - q2: a read-write end with 7 bytes queued;
 *  - q3: a read-write end with 10 bytes queued, then its path unlinked.
 * After restore: the same ends with their flags, the same bytes queued
 * (once), the unlinked FIFO still unlinked, and every end still works.
 */
#include "ckpt_test.h"

#include <sys/stat.h>

static void check_link(int fd, const char *suffix)
{
	char path[64], link[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink %s", path);
	link[n] = 0;
	CHECK(strlen(link) >= strlen(suffix) && strcmp(link + strlen(link) - strlen(suffix), suffix) == 0,
	      "fd %d links to '%s', want '...%s'", fd, link, suffix);
}

static void expect_bytes(int fd, const char *want)
{
	char buf[64];
	size_t n = strlen(want);
	ssize_t got = read(fd, buf, sizeof(buf));

	CHECK_SYS(got >= 0, "read fd %d", fd);
	CHECK((size_t)got == n && memcmp(buf, want, n) == 0, "fd %d: read %zd bytes '%.*s', want '%s'", fd, got, (int)(got > 0 ? got : 0), buf, want);
}

int main(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	int rd, wr, rw, gh, fl;
	struct stat st;

	CHECK_SYS(mkfifo("q1", 0640) == 0, "mkfifo q1");
	CHECK_SYS(mkfifo("q2", 0600) == 0, "mkfifo q2");
	CHECK_SYS(mkfifo("q3", 0600) == 0, "mkfifo q3");
	rd = open("q1", O_RDONLY | O_NONBLOCK);
	CHECK_SYS(rd >= 0, "open q1 for reading");
	wr = open("q1", O_WRONLY);
	CHECK_SYS(wr >= 0, "open q1 for writing");
	CHECK_SYS(fcntl(wr, F_SETPIPE_SZ, (int)(2 * pg)) >= 0, "F_SETPIPE_SZ");
	CHECK_SYS(write(wr, "queued bytes!", 13) == 13, "write q1");
	rw = open("q2", O_RDWR);
	CHECK_SYS(rw >= 0, "open q2");
	CHECK_SYS(write(rw, "rw data", 7) == 7, "write q2");
	gh = open("q3", O_RDWR | O_NONBLOCK);
	CHECK_SYS(gh >= 0, "open q3");
	CHECK_SYS(write(gh, "ghost fifo", 10) == 10, "write q3");
	CHECK_SYS(unlink("q3") == 0, "unlink q3");

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	fl = fcntl(rd, F_GETFL);
	CHECK((fl & O_ACCMODE) == O_RDONLY && (fl & O_NONBLOCK), "q1 read end flags %#x", fl);
	fl = fcntl(wr, F_GETFL);
	CHECK((fl & O_ACCMODE) == O_WRONLY && !(fl & O_NONBLOCK), "q1 write end flags %#x", fl);
	fl = fcntl(rw, F_GETFL);
	CHECK((fl & O_ACCMODE) == O_RDWR && !(fl & O_NONBLOCK), "q2 flags %#x", fl);
	CHECK(fcntl(rd, F_GETPIPE_SZ) == (int)(2 * pg), "q1 size %d", fcntl(rd, F_GETPIPE_SZ));
	check_link(rd, "/q1");
	check_link(wr, "/q1");
	check_link(rw, "/q2");
	check_link(gh, "/q3 (deleted)");
	CHECK_SYS(fstat(gh, &st) == 0, "fstat q3");
	CHECK(S_ISFIFO(st.st_mode) && st.st_nlink == 0, "q3: mode %o, %lu links", (unsigned)st.st_mode, (unsigned long)st.st_nlink);
	CHECK_SYS(stat("q1", &st) == 0, "stat q1");
	CHECK(S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0640, "q1 on disk: mode %o", (unsigned)st.st_mode);

	/* The queued bytes, once. */
	expect_bytes(rd, "queued bytes!");
	CHECK(read(rd, &fl, 1) < 0 && errno == EAGAIN, "q1 holds more bytes");
	expect_bytes(gh, "ghost fifo");
	CHECK_SYS(fcntl(rw, F_SETFL, O_NONBLOCK) == 0, "q2 nonblock");
	expect_bytes(rw, "rw data");

	/* The ends still work. */
	CHECK_SYS(write(wr, "again", 5) == 5, "write q1");
	expect_bytes(rd, "again");
	CHECK_SYS(write(rw, "x", 1) == 1, "write q2");
	expect_bytes(rw, "x");
	ckpt_pass();
}
