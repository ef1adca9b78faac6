/* ckpt-test: args=--file-locks */
/*
 * File locks come back with --file-locks (CRIU's meaning): POSIX record
 * locks (a read lock, a write lock and a write lock to EOF on other
 * ranges of one file), OFD locks (F_OFD_SETLK, a write and a read
 * range), flock LOCK_SH and LOCK_EX, and a flock taken by the parent on
 * an open file that its child inherited (one open file description held
 * by two processes: taken once, and held while either keeps it open).
 *
 * After the restore a separate process (not the owner) checks with
 * F_GETLK (type, range, l_pid = the owner), F_OFD_GETLK and
 * flock(LOCK_NB) that every lock is held; then the owner unlocks each
 * and the checker finds them free; the inherited flock stays held until
 * the child, its last holder, is gone. The child also holds a POSIX lock
 * of its own on the parent's open file, which names the child.
 */
#define _FILE_OFFSET_BITS 64
#include "ckpt_test.h"

#include <sys/file.h>
#include <sys/wait.h>

#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#endif

static pid_t owner, kid;

/* held tells what a checker finds: 0 free, else why it is not. */
enum { FREE = 0, HELD = 1 };

/* posix_state checks range [start, start+len) of path with cmd (F_GETLK
 * or F_OFD_GETLK) for a write lock: it must be held as type by process
 * want (-1 for an OFD lock), exactly that range, or be free (type
 * F_UNLCK). Returns an error string or NULL. */
static const char *posix_state(const char *path, int cmd, short type, off_t start, off_t len, pid_t want)
{
	static char msg[160];
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return "open";
	struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	int r = fcntl(fd, cmd, &q);
	close(fd);
	if (r != 0)
		return "GETLK failed";
	if (q.l_type != type) {
		snprintf(msg, sizeof(msg), "%s [%lld,+%lld): type %d, want %d", path, (long long)start, (long long)len, q.l_type, type);
		return msg;
	}
	if (type == F_UNLCK)
		return NULL;
	if (q.l_start != start || q.l_len != len || q.l_pid != want) {
		snprintf(msg, sizeof(msg), "%s: lock [%lld,+%lld) pid %d, want [%lld,+%lld) pid %d", path,
			 (long long)q.l_start, (long long)q.l_len, (int)q.l_pid, (long long)start, (long long)len, (int)want);
		return msg;
	}
	return NULL;
}

/* flock_state checks path with flock(LOCK_NB): sh tells whether a
 * shared lock can be had, ex an exclusive one. */
static const char *flock_state(const char *path, int sh, int ex)
{
	static char msg[120];
	int fd = open(path, O_RDWR);
	if (fd < 0)
		return "open";
	int gsh = flock(fd, LOCK_SH | LOCK_NB) == 0;
	flock(fd, LOCK_UN);
	int gex = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	if (gsh != sh || gex != ex) {
		snprintf(msg, sizeof(msg), "%s: LOCK_SH %s, LOCK_EX %s; want %s, %s", path,
			 gsh ? "free" : "taken", gex ? "free" : "taken", sh ? "free" : "taken", ex ? "free" : "taken");
		return msg;
	}
	return NULL;
}

/* check runs in a new process (locks are only seen from another owner):
 * with held, every lock must be there; without it every lock but the
 * inherited flock must be gone, and that one as inherited says. */
static void check(const char *when, int held, int inherited)
{
	int p[2];
	CHECK_SYS(pipe(p) == 0, "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork checker");
	if (c == 0) {
		close(p[0]);
		/* The first lock that is not as it should be, in this order. */
		const char *e = posix_state("posix", F_GETLK, held ? F_RDLCK : F_UNLCK, 0, 10, owner);
		if (!e)
			e = posix_state("posix", F_GETLK, F_UNLCK, 10, 10, owner);
		if (!e)
			e = posix_state("posix", F_GETLK, held ? F_WRLCK : F_UNLCK, 20, 10, owner);
		if (!e)
			e = posix_state("posix", F_GETLK, held ? F_WRLCK : F_UNLCK, 100, 0, owner);
		if (!e)
			e = posix_state("posix", F_GETLK, inherited ? F_WRLCK : F_UNLCK, 40, 10, kid);
		if (!e)
			e = posix_state("ofd", F_OFD_GETLK, held ? F_WRLCK : F_UNLCK, 0, 5, -1);
		if (!e)
			e = posix_state("ofd", F_OFD_GETLK, held ? F_RDLCK : F_UNLCK, 10, 10, -1);
		if (!e)
			e = flock_state("flock_sh", 1, !held);
		if (!e)
			e = flock_state("flock_ex", !held, !held);
		if (!e)
			e = flock_state("flock_inh", !inherited, !inherited);
		if (e)
			ckpt_write_all(p[1], e, strlen(e));
		_exit(e ? 1 : 0);
	}
	close(p[1]);
	char buf[200] = "";
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	if (n > 0)
		buf[n] = 0;
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid checker");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: %s (checker status %#x)", when, buf, st);
}

static void lk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
	CHECK_SYS(fcntl(fd, cmd, &fl) == 0, "fcntl(%d, type %d, %lld+%lld)", cmd, type, (long long)start, (long long)len);
}

int main(void)
{
	ckpt_block_term();
	owner = getpid();
	int fp = open("posix", O_RDWR | O_CREAT, 0644);
	int fo = open("ofd", O_RDWR | O_CREAT, 0644);
	int fs = open("flock_sh", O_RDWR | O_CREAT, 0644);
	int fe = open("flock_ex", O_RDWR | O_CREAT, 0644);
	int fi = open("flock_inh", O_RDWR | O_CREAT, 0644);
	CHECK_SYS(fp >= 0 && fo >= 0 && fs >= 0 && fe >= 0 && fi >= 0, "create");
	lk(fp, F_SETLK, F_RDLCK, 0, 10);
	lk(fp, F_SETLK, F_WRLCK, 20, 10);
	lk(fp, F_SETLK, F_WRLCK, 100, 0);
	lk(fo, F_OFD_SETLK, F_WRLCK, 0, 5);
	lk(fo, F_OFD_SETLK, F_RDLCK, 10, 10);
	CHECK_SYS(flock(fs, LOCK_SH) == 0, "flock(LOCK_SH)");
	CHECK_SYS(flock(fe, LOCK_EX) == 0, "flock(LOCK_EX)");
	CHECK_SYS(flock(fi, LOCK_EX) == 0, "flock(LOCK_EX) inherited");
	kid = fork();
	CHECK_SYS(kid >= 0, "fork");
	if (kid == 0) {
		/* Holds fi, the parent's open file, until it is killed, and a
		 * POSIX lock of its own through fp, another open file of the
		 * parent's. */
		lk(fp, F_SETLK, F_WRLCK, 40, 10);
		for (;;)
			pause();
	}
	for (int i = 0;; i++) {
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 40, .l_len = 10};
		CHECK_SYS(fcntl(fp, F_GETLK, &q) == 0, "F_GETLK");
		if (q.l_type == F_WRLCK)
			break;
		CHECK(i < 20000, "the child took no lock");
		usleep(1000);
	}
	check("before the dump", HELD, HELD);

	ckpt_ready();
	ckpt_wait_term();

	check("after the restore", HELD, HELD);
	/* The owner can still unlock each. */
	lk(fp, F_SETLK, F_UNLCK, 0, 10);
	lk(fp, F_SETLK, F_UNLCK, 20, 10);
	lk(fp, F_SETLK, F_UNLCK, 100, 0);
	lk(fo, F_OFD_SETLK, F_UNLCK, 0, 5);
	lk(fo, F_OFD_SETLK, F_UNLCK, 10, 10);
	CHECK_SYS(flock(fs, LOCK_UN) == 0, "flock(LOCK_UN) shared");
	CHECK_SYS(flock(fe, LOCK_UN) == 0, "flock(LOCK_UN) exclusive");
	/* The inherited flock belongs to the open file, which the child
	 * still holds after the parent closes it. */
	CHECK_SYS(close(fi) == 0, "close");
	check("after unlocking", FREE, HELD);
	CHECK_SYS(kill(kid, SIGKILL) == 0, "kill child");
	int st;
	CHECK_SYS(waitpid(kid, &st, 0) == kid, "waitpid child");
	check("once the child is gone", FREE, FREE);
	ckpt_pass();
}
