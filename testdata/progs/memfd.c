/* ckpt-test: */
/*
 * memfd: files made by memfd_create, open and mapped, shared with a child.
 *  - "ckpt pool" (MFD_CLOEXEC|MFD_ALLOW_SEALING): 3 pages, sealed
 *    F_SEAL_SHRINK|F_SEAL_GROW, fd offset 100, mapped MAP_SHARED rw
 *    (inherited by the child, which maps it a second time itself) and
 *    MAP_PRIVATE with a page copied on write;
 *  - "sealed" (MFD_ALLOW_SEALING): "hello", sealed F_SEAL_WRITE|F_SEAL_SEAL;
 *  - "plain" (no flags): no sealing allowed (F_SEAL_SEAL).
 * After restore: names in /proc/self/fd, close-on-exec, offsets, contents,
 * seals (and that they still forbid), one memfd shared by the fds, the
 * mappings and the child.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#define MFD_ALLOW_SEALING 0x0002U
#endif

static int mfd(const char *name, unsigned flags)
{
	return (int)syscall(SYS_memfd_create, name, flags);
}

static void check_link(int fd, const char *want)
{
	char path[64], link[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink %s", path);
	link[n] = 0;
	CHECK(strcmp(link, want) == 0, "fd %d links to '%s', want '%s'", fd, link, want);
}

int main(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), len = 3 * pg;
	static char buf[3 * 65536];
	int pool, sealed, plain, st;
	char *sh, *pv;
	pid_t c;

	ckpt_block_term();
	pool = mfd("ckpt pool", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK_SYS(pool >= 0, "memfd_create pool");
	CHECK_SYS(ftruncate(pool, (off_t)len) == 0, "ftruncate");
	ckpt_fill(buf, len, 11, 0);
	CHECK_SYS(pwrite(pool, buf, len, 0) == (ssize_t)len, "write pool");
	CHECK_SYS(fcntl(pool, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0, "seal pool");
	CHECK_SYS(lseek(pool, 100, SEEK_SET) == 100, "lseek");
	sh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, pool, 0);
	CHECK_SYS(sh != MAP_FAILED, "mmap shared");
	pv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, pool, 0);
	CHECK_SYS(pv != MAP_FAILED, "mmap private");
	ckpt_fill(sh + pg, 300, 12, 0);	/* into the memfd */
	memcpy(pv + 2 * pg, "private", 8);	/* a copy of its own */

	sealed = mfd("sealed", MFD_ALLOW_SEALING);
	CHECK_SYS(sealed >= 0, "memfd_create sealed");
	CHECK_SYS(write(sealed, "hello", 5) == 5, "write sealed");
	CHECK_SYS(fcntl(sealed, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) == 0, "seal sealed");
	plain = mfd("plain", 0);
	CHECK_SYS(plain >= 0, "memfd_create plain");

	c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		char *own = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, pool, 0);
		CHECK_SYS(own != MAP_FAILED, "child: mmap");
		memcpy(own + 2 * pg, "child", 6);
		ckpt_wait_term();
		CHECK(memcmp(sh + 2 * pg, "child", 6) == 0, "child: its write is gone");
		CHECK(memcmp(own + 8, "parent", 7) == 0, "child: the parent's write after the restore is not shared");
		memcpy(own + 16, "after", 6);
		_exit(0);
	}
	while (memcmp(sh + 2 * pg, "child", 6) != 0)
		usleep(1000);
	ckpt_ready();
	ckpt_wait_term();

	check_link(pool, "/memfd:ckpt pool (deleted)");
	check_link(sealed, "/memfd:sealed (deleted)");
	check_link(plain, "/memfd:plain (deleted)");
	CHECK(fcntl(pool, F_GETFD) & FD_CLOEXEC, "pool lost close-on-exec");
	CHECK(!(fcntl(sealed, F_GETFD) & FD_CLOEXEC), "sealed got close-on-exec");
	CHECK(fcntl(pool, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "pool seals %#x", fcntl(pool, F_GET_SEALS));
	CHECK(fcntl(sealed, F_GET_SEALS) == (F_SEAL_WRITE | F_SEAL_SEAL), "sealed seals %#x", fcntl(sealed, F_GET_SEALS));
	CHECK(fcntl(plain, F_GET_SEALS) == F_SEAL_SEAL, "plain seals %#x", fcntl(plain, F_GET_SEALS));
	CHECK(lseek(pool, 0, SEEK_CUR) == 100, "pool offset %lld", (long long)lseek(pool, 0, SEEK_CUR));

	/* Contents. */
	CHECK_SYS(pread(pool, buf, len, 0) == (ssize_t)len, "pread pool");
	CHECK(ckpt_verify(buf, pg, 11, 0) == (size_t)-1, "pool page 0");
	CHECK(ckpt_verify(buf + pg, 300, 12, 0) == (size_t)-1, "pool: the write through the mapping");
	CHECK(memcmp(buf + 2 * pg, "child", 6) == 0, "pool: the child's write");
	CHECK(memcmp(pv + 2 * pg, "private", 8) == 0, "private copy lost");
	CHECK(ckpt_verify(pv, pg, 11, 0) == (size_t)-1, "private mapping page 0");
	memset(buf, 0, 8);
	CHECK_SYS(pread(sealed, buf, 8, 0) == 5 && memcmp(buf, "hello", 5) == 0, "sealed contents");

	/* The seals still forbid. */
	CHECK(ftruncate(pool, (off_t)(4 * len)) < 0 && errno == EPERM, "pool grew despite F_SEAL_GROW");
	CHECK(write(sealed, "x", 1) < 0 && errno == EPERM, "write despite F_SEAL_WRITE");
	CHECK(fcntl(plain, F_ADD_SEALS, F_SEAL_WRITE) < 0 && errno == EPERM, "plain memfd allows sealing");

	/* One memfd behind the fd and the mappings, of both processes. */
	CHECK_SYS(pwrite(pool, "F", 1, 5) == 1, "pwrite");
	CHECK(sh[5] == 'F', "a write to the fd is not in the shared mapping");
	memcpy(sh + 8, "parent", 7);
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(memcmp(sh + 16, "after", 6) == 0, "the child's write after the restore is not shared");
	ckpt_pass();
}
