/* ckpt-test: */
/*
 * files: regular files and character devices in the fd table.
 *  - ro.dat  O_RDONLY, read to offset 100                 -> fd 7
 *  - wo.dat  O_WRONLY|O_TRUNC, 50 bytes written           -> fd 42 (O_CLOEXEC)
 *            and a dup sharing the open file description  -> fd 43
 *  - app.dat O_WRONLY|O_APPEND                            -> fd 200
 *  - rw.dat  O_RDWR at offset 4096+7                      -> fd 13
 *  - rw.dat  again, O_RDONLY|O_NONBLOCK at offset 3       -> fd 14
 *  - /dev/null O_RDWR -> 100, /dev/zero O_RDONLY|O_CLOEXEC -> 101,
 *    /dev/urandom O_RDONLY -> 102
 * (originals closed, so the numbers are sparse).
 * After restore: the same set of fds; for each the same /proc/self/fd link,
 * F_GETFL, F_GETFD, offset, st_dev/st_ino/st_mode/st_rdev and fdinfo; and
 * I/O continues where it was: reads follow the pattern, the O_WRONLY write
 * lands at offset 50 and moves the shared offset of the dup, O_APPEND
 * writes go to the end after another fd extended the file, /dev/zero gives
 * zeros, /dev/null swallows writes.
 */
#include "ckpt_test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct fdrec {
	int fd;
	const char *name;
	char link[512];
	int fl, fdflags;
	off_t off;
	int off_errno;
	dev_t dev, rdev;
	ino_t ino;
	mode_t mode;
	char fdinfo[1024];
};

#define MAXFD 16
static struct fdrec recs[MAXFD];
static int nrecs;

static int fdlist0[256], nfdlist0;

/* Sorted list of open fds from /proc/self/fd, without the dir fd itself. */
static int list_fds(int *out, int max)
{
	char buf[4096];
	int n = 0;
	int d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	CHECK_SYS(d >= 0, "open /proc/self/fd");
	for (;;) {
		long nr = syscall(SYS_getdents64, d, buf, sizeof(buf));

		CHECK_SYS(nr >= 0, "getdents64");
		if (nr == 0)
			break;
		for (long off = 0; off < nr; ) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *de = (void *)(buf + off);

			if (de->name[0] != '.') {
				int fd = atoi(de->name);

				if (fd != d) {
					CHECK(n < max, "too many fds");
					out[n++] = fd;
				}
			}
			off += de->reclen;
		}
	}
	close(d);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			int t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

static void snapshot(int fd, const char *name, struct fdrec *r)
{
	char path[64];
	struct stat st;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->name = name;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, r->link, sizeof(r->link) - 1);
	CHECK_SYS(n > 0, "readlink %s", path);
	r->link[n] = '\0';
	r->fl = fcntl(fd, F_GETFL);
	CHECK_SYS(r->fl >= 0, "F_GETFL %d", fd);
	r->fdflags = fcntl(fd, F_GETFD);
	CHECK_SYS(r->fdflags >= 0, "F_GETFD %d", fd);
	errno = 0;
	r->off = lseek(fd, 0, SEEK_CUR);
	r->off_errno = r->off < 0 ? errno : 0;
	CHECK_SYS(fstat(fd, &st) == 0, "fstat %d", fd);
	r->dev = st.st_dev;
	r->rdev = st.st_rdev;
	r->ino = st.st_ino;
	r->mode = st.st_mode;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	CHECK_SYS(ckpt_read_file(path, r->fdinfo, sizeof(r->fdinfo)) > 0, "read %s", path);
	/* Drop the "pos:" line (offsets are compared separately). */
	if (strncmp(r->fdinfo, "pos:", 4) == 0) {
		char *nl = strchr(r->fdinfo, '\n');

		if (nl)
			memmove(r->fdinfo, nl + 1, strlen(nl + 1) + 1);
	}
	/* Turn newlines into ';' for readable messages. */
	for (char *p = r->fdinfo; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = *p == '\n' ? ';' : ' ';
}

static void record(int fd, const char *name)
{
	CHECK(nrecs < MAXFD, "too many records");
	snapshot(fd, name, &recs[nrecs++]);
}

static void write_file(const char *name, size_t len, uint32_t seed)
{
	static char buf[65536];
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK_SYS(fd >= 0, "create %s", name);
	ckpt_fill(buf, len, seed, 0);
	CHECK_SYS(write(fd, buf, len) == (ssize_t)len, "write %s", name);
	close(fd);
}

/* Move fd to target (optionally O_CLOEXEC) and close the original. */
static int move_fd(int fd, int target, int cloexec)
{
	CHECK_SYS(dup3(fd, target, cloexec ? O_CLOEXEC : 0) == target, "dup3(%d, %d)", fd, target);
	close(fd);
	return target;
}

static void check_bytes(const char *what, const char *p, size_t len, uint32_t seed, size_t base)
{
	size_t bad = ckpt_verify(p, len, seed, base);

	if (bad != (size_t)-1)
		ckpt_fail("%s: mismatch at file offset %zu", what, base + bad);
}

static size_t file_size(const char *name)
{
	struct stat st;

	CHECK_SYS(stat(name, &st) == 0, "stat %s", name);
	return (size_t)st.st_size;
}

static void read_at(const char *name, char *buf, size_t len, off_t off)
{
	int fd = open(name, O_RDONLY);

	CHECK_SYS(fd >= 0, "open %s", name);
	CHECK_SYS(pread(fd, buf, len, off) == (ssize_t)len, "pread %s", name);
	close(fd);
}

int main(void)
{
	char buf[8192];
	int fd;

	write_file("ro.dat", 16384, 31);
	write_file("wo.dat", 1000, 99);
	write_file("rw.dat", 3 * 4096, 34);

	/* ro.dat -> 7 */
	fd = open("ro.dat", O_RDONLY);
	CHECK_SYS(fd >= 0, "open ro.dat");
	CHECK_SYS(read(fd, buf, 100) == 100, "read ro.dat");
	move_fd(fd, 7, 0);
	/* wo.dat -> 42 (cloexec), 43 */
	fd = open("wo.dat", O_WRONLY | O_TRUNC);
	CHECK_SYS(fd >= 0, "open wo.dat");
	ckpt_fill(buf, 50, 32, 0);
	CHECK_SYS(write(fd, buf, 50) == 50, "write wo.dat");
	move_fd(fd, 42, 1);
	CHECK_SYS(fcntl(42, F_DUPFD, 43) == 43, "F_DUPFD 43");
	/* app.dat -> 200 */
	fd = open("app.dat", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(fd >= 0, "open app.dat");
	ckpt_fill(buf, 30, 33, 0);
	CHECK_SYS(write(fd, buf, 30) == 30, "write app.dat");
	move_fd(fd, 200, 0);
	/* rw.dat -> 13, and again -> 14 */
	fd = open("rw.dat", O_RDWR);
	CHECK_SYS(fd >= 0, "open rw.dat");
	CHECK_SYS(lseek(fd, 4096 + 7, SEEK_SET) == 4096 + 7, "lseek rw.dat");
	move_fd(fd, 13, 0);
	fd = open("rw.dat", O_RDONLY | O_NONBLOCK);
	CHECK_SYS(fd >= 0, "open rw.dat (2)");
	CHECK_SYS(lseek(fd, 3, SEEK_SET) == 3, "lseek rw.dat (2)");
	move_fd(fd, 14, 0);
	/* devices */
	fd = open("/dev/null", O_RDWR);
	CHECK_SYS(fd >= 0, "open /dev/null");
	move_fd(fd, 100, 0);
	fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(fd >= 0, "open /dev/zero");
	move_fd(fd, 101, 1);
	fd = open("/dev/urandom", O_RDONLY);
	CHECK_SYS(fd >= 0, "open /dev/urandom");
	move_fd(fd, 102, 0);

	record(0, "stdin");
	record(1, "stdout");
	record(2, "stderr");
	record(7, "ro.dat");
	record(13, "rw.dat");
	record(14, "rw.dat(nonblock)");
	record(42, "wo.dat");
	record(43, "wo.dat(dup)");
	record(100, "/dev/null");
	record(101, "/dev/zero");
	record(102, "/dev/urandom");
	record(200, "app.dat");
	nfdlist0 = list_fds(fdlist0, 256);

	/* Sanity of the setup. */
	CHECK(recs[3].off == 100 && recs[4].off == 4103 && recs[5].off == 3 && recs[6].off == 50 &&
	      recs[7].off == 50, "offsets before");
	CHECK(recs[6].fdflags == FD_CLOEXEC && recs[7].fdflags == 0 && recs[9].fdflags == FD_CLOEXEC &&
	      recs[3].fdflags == 0, "FD_CLOEXEC before");
	CHECK(recs[11].fl & O_APPEND, "O_APPEND before");
	CHECK(recs[5].fl & O_NONBLOCK, "O_NONBLOCK before");

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* The fd table: same numbers, nothing added or lost. */
	{
		int now[256];
		int n = list_fds(now, 256);

		CHECK(n == nfdlist0, "number of open fds %d -> %d", nfdlist0, n);
		for (int i = 0; i < n; i++)
			CHECK(now[i] == fdlist0[i], "fd set differs: fd %d vs %d", fdlist0[i], now[i]);
	}
	for (int i = 0; i < nrecs; i++) {
		struct fdrec *a = &recs[i], b;

		snapshot(a->fd, a->name, &b);
		CHECK(strcmp(a->link, b.link) == 0, "fd %d (%s): link '%s' -> '%s'", a->fd, a->name,
		      a->link, b.link);
		CHECK(a->fl == b.fl, "fd %d (%s): F_GETFL %#o -> %#o", a->fd, a->name, a->fl, b.fl);
		CHECK(a->fdflags == b.fdflags, "fd %d (%s): F_GETFD %d -> %d", a->fd, a->name,
		      a->fdflags, b.fdflags);
		/* fds 1 and 2 (the log) move while we write READY etc. */
		CHECK(a->fd == 1 || a->fd == 2 || (a->off == b.off && a->off_errno == b.off_errno),
		      "fd %d (%s): offset %lld -> %lld", a->fd, a->name, (long long)a->off,
		      (long long)b.off);
		CHECK(a->dev == b.dev && a->ino == b.ino, "fd %d (%s): dev/ino changed", a->fd,
		      a->name);
		CHECK(a->mode == b.mode && a->rdev == b.rdev, "fd %d (%s): mode/rdev changed", a->fd,
		      a->name);
		CHECK(strcmp(a->fdinfo, b.fdinfo) == 0, "fd %d (%s): fdinfo '%s' -> '%s'", a->fd,
		      a->name, a->fdinfo, b.fdinfo);
	}
	CHECK(recs[1].dev == recs[2].dev && recs[1].ino == recs[2].ino, "stdout/stderr differ");

	/* ro.dat continues at 100. */
	CHECK_SYS(read(7, buf, 50) == 50, "read fd 7");
	check_bytes("fd 7 read", buf, 50, 31, 100);
	CHECK(lseek(7, 0, SEEK_CUR) == 150, "fd 7 offset after read");

	/* wo.dat: write at 50, shared offset with fd 43. */
	ckpt_fill(buf, 10, 35, 50);
	CHECK_SYS(write(42, buf, 10) == 10, "write fd 42");
	CHECK(lseek(43, 0, SEEK_CUR) == 60, "fd 43 does not share the offset of fd 42: %lld",
	      (long long)lseek(43, 0, SEEK_CUR));
	CHECK(file_size("wo.dat") == 60, "wo.dat size %zu, want 60", file_size("wo.dat"));
	read_at("wo.dat", buf, 60, 0);
	check_bytes("wo.dat head", buf, 50, 32, 0);
	check_bytes("wo.dat tail", buf + 50, 10, 35, 50);

	/* app.dat: extended by another fd, then an O_APPEND write goes to the end. */
	fd = open("app.dat", O_WRONLY);
	CHECK_SYS(fd >= 0, "open app.dat");
	ckpt_fill(buf, 20, 37, 30);
	CHECK_SYS(pwrite(fd, buf, 20, 30) == 20, "pwrite app.dat");
	close(fd);
	ckpt_fill(buf, 8, 38, 50);
	CHECK_SYS(write(200, buf, 8) == 8, "write fd 200");
	CHECK(file_size("app.dat") == 58, "app.dat size %zu, want 58", file_size("app.dat"));
	CHECK(lseek(200, 0, SEEK_CUR) == 58, "fd 200 offset %lld", (long long)lseek(200, 0, SEEK_CUR));
	read_at("app.dat", buf, 58, 0);
	check_bytes("app.dat original", buf, 30, 33, 0);
	check_bytes("app.dat extension", buf + 30, 20, 37, 30);
	check_bytes("app.dat appended", buf + 50, 8, 38, 50);

	/* rw.dat: read at 4103, then write. */
	CHECK_SYS(read(13, buf, 10) == 10, "read fd 13");
	check_bytes("fd 13 read", buf, 10, 34, 4103);
	ckpt_fill(buf, 5, 36, 4113);
	CHECK_SYS(write(13, buf, 5) == 5, "write fd 13");
	CHECK(lseek(13, 0, SEEK_CUR) == 4118, "fd 13 offset");
	read_at("rw.dat", buf, 20, 4103);
	check_bytes("rw.dat", buf, 10, 34, 4103);
	check_bytes("rw.dat written", buf + 10, 5, 36, 4113);
	check_bytes("rw.dat after", buf + 15, 5, 34, 4118);
	/* The independent description of rw.dat is at 3. */
	CHECK_SYS(read(14, buf, 4) == 4, "read fd 14");
	check_bytes("fd 14 read", buf, 4, 34, 3);

	/* Devices. */
	memset(buf, 0x55, 4096);
	CHECK_SYS(read(101, buf, 4096) == 4096, "read /dev/zero");
	for (int i = 0; i < 4096; i++)
		CHECK(buf[i] == 0, "/dev/zero gave a non-zero byte");
	CHECK_SYS(write(100, buf, 100) == 100, "write /dev/null");
	CHECK_SYS(read(100, buf, 100) == 0, "read /dev/null");
	CHECK_SYS(read(102, buf, 16) == 16, "read /dev/urandom");
	CHECK_SYS(write(101, buf, 1) < 0 && errno == EBADF, "write to O_RDONLY /dev/zero");
	CHECK_SYS(write(7, buf, 1) < 0 && errno == EBADF, "write to O_RDONLY fd 7");
	CHECK_SYS(read(42, buf, 1) < 0 && errno == EBADF, "read from O_WRONLY fd 42");

	ckpt_pass();
}
