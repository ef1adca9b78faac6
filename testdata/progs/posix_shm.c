/* ckpt-test: args=--link-remap */
/*
 * POSIX shared memory and named semaphores (files in /dev/shm), shared
 * between a parent and its child:
 *  - shm "keep": shm_open, 2 pages mapped MAP_SHARED by both, its fd
 *    open, the name kept;
 *  - shm "gone": shm_open, mapped MAP_SHARED by both, fd closed, then
 *    shm_unlink'ed (a ghost in /dev/shm held by mappings only);
 *  - semaphore "sem" (sem_open, value 3): the child takes one before the
 *    dump (2 left), the name kept;
 *  - semaphore "wait" (sem_open, value 0), sem_unlink'ed: the child
 *    blocks in sem_wait on it across the dump;
 *  - a file in /dev/shm open at offset 5 under a name that was then
 *    unlinked, after it was linked under another (as sem_open does with
 *    its temporary file, which the semaphores' mappings show).
 * After the restore the names and the unlinked state are as they were,
 * the contents are there, both processes still share every object: the
 * child takes "sem" again (1 left) and the parent sees it, the parent
 * posts "wait" and the child wakes up. Dumped and restored with
 * --link-remap, without which CRIU refuses the semaphore and the linked
 * file: the CRIU exchange (TestCRIUInterop) needs it. Without it ckpt
 * dumps them with nothing added on disk, and the dump restores many
 * times (test/e2e/linked_test.go).
 */
#include "ckpt_test.h"

#include <semaphore.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define PG 4096
#define LEN (2 * PG)

static char name_keep[64], name_gone[64], name_sem[64], name_wait[64];
static char path_tmp[64], path_link[64];

static int linked(const char *shmname)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/%s", shmname + 1);
	return stat(path, &st) == 0;
}

static void cleanup(void)
{
	shm_unlink(name_keep);
	shm_unlink(name_gone);
	sem_unlink(name_sem);
	sem_unlink(name_wait);
	unlink(path_tmp);
	unlink(path_link);
}

static int semval(sem_t *s)
{
	int v = -1;

	if (sem_getvalue(s, &v) != 0)
		ckpt_fail("sem_getvalue: %s", strerror(errno));
	return v;
}

int main(void)
{
	int pid = getpid(), kfd, gfd, lfd, st;
	unsigned char *keep, *gone;
	sem_t *sem, *wt;
	struct stat a;

	ckpt_block_term();
	snprintf(name_keep, sizeof(name_keep), "/ckpt-shm-keep-%d", pid);
	snprintf(name_gone, sizeof(name_gone), "/ckpt-shm-gone-%d", pid);
	snprintf(name_sem, sizeof(name_sem), "/ckpt-sem-%d", pid);
	snprintf(name_wait, sizeof(name_wait), "/ckpt-sem-wait-%d", pid);
	snprintf(path_tmp, sizeof(path_tmp), "/dev/shm/ckpt-tmp-%d", pid);
	snprintf(path_link, sizeof(path_link), "/dev/shm/ckpt-linked-%d", pid);
	cleanup();

	lfd = open(path_tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK_SYS(lfd >= 0, "create %s", path_tmp);
	CHECK_SYS(write(lfd, "0123456789", 10) == 10, "write");
	CHECK_SYS(link(path_tmp, path_link) == 0, "link %s", path_link);
	CHECK_SYS(unlink(path_tmp) == 0, "unlink %s", path_tmp);
	CHECK_SYS(lseek(lfd, 5, SEEK_SET) == 5, "lseek");

	kfd = shm_open(name_keep, O_RDWR | O_CREAT | O_EXCL, 0640);
	CHECK_SYS(kfd >= 0, "shm_open %s", name_keep);
	CHECK_SYS(ftruncate(kfd, LEN) == 0, "ftruncate");
	keep = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, kfd, 0);
	CHECK_SYS(keep != MAP_FAILED, "mmap keep");
	ckpt_fill(keep, PG, 1, 0);

	gfd = shm_open(name_gone, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK_SYS(gfd >= 0, "shm_open %s", name_gone);
	CHECK_SYS(ftruncate(gfd, LEN) == 0, "ftruncate");
	gone = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, gfd, 0);
	CHECK_SYS(gone != MAP_FAILED, "mmap gone");
	close(gfd);
	CHECK_SYS(shm_unlink(name_gone) == 0, "shm_unlink %s", name_gone);
	ckpt_fill(gone, PG, 2, 0);

	sem = sem_open(name_sem, O_CREAT | O_EXCL, 0600, 3);
	CHECK_SYS(sem != SEM_FAILED, "sem_open %s", name_sem);
	wt = sem_open(name_wait, O_CREAT | O_EXCL, 0600, 0);
	CHECK_SYS(wt != SEM_FAILED, "sem_open %s", name_wait);
	CHECK_SYS(sem_unlink(name_wait) == 0, "sem_unlink %s", name_wait);

	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		CHECK_SYS(sem_wait(sem) == 0, "child: sem_wait");
		memcpy(keep + PG, "child-keep", 11);
		memcpy(gone + PG, "child-gone", 11);
		/* Blocks across the dump: the parent posts after the restore. */
		while (sem_wait(wt) != 0)
			CHECK_SYS(errno == EINTR, "child: sem_wait on the unlinked semaphore");
		CHECK(memcmp(keep + PG + 100, "parent-keep", 12) == 0, "child: the parent's write to keep is not shared");
		CHECK(memcmp(gone + PG + 100, "parent-gone", 12) == 0, "child: the parent's write to gone is not shared");
		CHECK_SYS(sem_wait(sem) == 0, "child: sem_wait after the restore");
		memcpy(keep + PG + 200, "child-after", 12);
		_exit(0);
	}
	while (memcmp(gone + PG, "child-gone", 11) != 0)
		usleep(1000);
	CHECK(semval(sem) == 2, "semaphore value %d before the dump, want 2", semval(sem));
	CHECK(linked(name_keep) && !linked(name_gone), "names in /dev/shm before the dump");
	ckpt_ready();
	ckpt_wait_term();

	/* Names: keep and sem linked, gone and wait not. */
	CHECK(linked(name_keep), "%s is gone from /dev/shm", name_keep);
	CHECK(!linked(name_gone), "%s is in /dev/shm again", name_gone);
	{
		char p[128];
		snprintf(p, sizeof(p), "/dev/shm/sem.%s", name_sem + 1);
		CHECK_SYS(stat(p, &a) == 0, "stat %s", p);
		snprintf(p, sizeof(p), "/dev/shm/sem.%s", name_wait + 1);
		CHECK(stat(p, &a) != 0, "%s is in /dev/shm again", p);
	}
	CHECK_SYS(fstat(kfd, &a) == 0, "fstat keep");
	CHECK(a.st_nlink == 1 && (a.st_mode & 07777) == 0640 && a.st_size == LEN,
	      "keep: nlink %lu mode %o size %lld", (unsigned long)a.st_nlink, (unsigned)(a.st_mode & 07777), (long long)a.st_size);

	{
		char p[64], l[128], want[128];
		struct stat b;
		ssize_t n;
		snprintf(p, sizeof(p), "/proc/self/fd/%d", lfd);
		n = readlink(p, l, sizeof(l) - 1);
		CHECK_SYS(n > 0, "readlink %s", p);
		l[n] = 0;
		snprintf(want, sizeof(want), "%s (deleted)", path_tmp);
		CHECK(strcmp(l, want) == 0, "the linked file's fd shows %s, want %s", l, want);
		CHECK_SYS(fstat(lfd, &a) == 0 && stat(path_link, &b) == 0, "stat the linked file");
		CHECK(a.st_ino == b.st_ino && a.st_nlink == 1, "the linked file's fd is not %s (nlink %lu)", path_link, (unsigned long)a.st_nlink);
		CHECK(lseek(lfd, 0, SEEK_CUR) == 5, "the linked file's offset is %lld", (long long)lseek(lfd, 0, SEEK_CUR));
		CHECK(access(path_tmp, F_OK) != 0, "%s is there again", path_tmp);
	}

	/* Contents. */
	size_t bad = ckpt_verify(keep, PG, 1, 0);
	CHECK(bad == (size_t)-1, "keep: pattern broken at %zu", bad);
	bad = ckpt_verify(gone, PG, 2, 0);
	CHECK(bad == (size_t)-1, "gone: pattern broken at %zu", bad);
	CHECK(memcmp(keep + PG, "child-keep", 11) == 0, "keep: the child's write is gone");
	CHECK(memcmp(gone + PG, "child-gone", 11) == 0, "gone: the child's write is gone");
	{
		char b[11];
		CHECK_SYS(pread(kfd, b, 11, PG) == 11, "pread keep");
		CHECK(memcmp(b, "child-keep", 11) == 0, "keep's fd and mapping differ");
	}
	CHECK(semval(sem) == 2, "semaphore value %d after the restore, want 2", semval(sem));
	CHECK(semval(wt) == 0, "unlinked semaphore value %d after the restore, want 0", semval(wt));

	/* Still shared with the child. */
	memcpy(keep + PG + 100, "parent-keep", 12);
	memcpy(gone + PG + 100, "parent-gone", 12);
	CHECK_SYS(sem_post(wt) == 0, "sem_post");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(semval(sem) == 1, "semaphore value %d after the child took it, want 1", semval(sem));
	CHECK(memcmp(keep + PG + 200, "child-after", 12) == 0, "the child's write after the restore is not shared");
	cleanup();
	ckpt_pass();
}
