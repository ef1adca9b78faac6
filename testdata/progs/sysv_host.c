/* ckpt-test: */
/*
 * SysV IPC objects in the host's IPC namespace (no unshare), which the
 * dump takes because the tree made, attached or last used them:
 *  - segment A (key 0x5b<pid>, 2 pages, mode 0640), attached read-write;
 *  - segment N (IPC_PRIVATE, a page), not attached, with contents;
 *  - segment P (IPC_PRIVATE), attached read-only, then marked for
 *    removal (IPC_RMID): it goes away with the dumped process;
 *  - semaphore set (IPC_PRIVATE, values 5 1);
 *  - message queue (IPC_PRIVATE) with 2 messages;
 *  - a message queue W and a semaphore set S2 that the tree only made
 *    (which leaves no PID in them) and waits on: one child waits in
 *    msgrcv on W, another in semop on S2, across the dump; the parent
 *    wakes both after the restore.
 * Restored on the same machine, the objects still there are left as they
 * are and P is made again; sysv_host_rm (the same program, between=ipcrm)
 * has all of them removed between dump and restore, so every one is
 * made again. Either way each has its id, key, size, mode, contents,
 * values and messages, and the attaches are back at their addresses.
 * The program removes its objects at the end.
 */
#include "ckpt_test.h"

#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define PG 4096

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msg {
	long type;
	char text[64];
};

static int a = -1, n = -1, p = -1, sem = -1, q = -1, w = -1, s2 = -1;

static void cleanup(void)
{
	if (a >= 0)
		shmctl(a, IPC_RMID, NULL);
	if (n >= 0)
		shmctl(n, IPC_RMID, NULL);
	if (p >= 0)
		shmctl(p, IPC_RMID, NULL);
	if (sem >= 0)
		semctl(sem, 0, IPC_RMID);
	if (q >= 0)
		msgctl(q, IPC_RMID, NULL);
	if (w >= 0)
		msgctl(w, IPC_RMID, NULL);
	if (s2 >= 0)
		semctl(s2, 0, IPC_RMID);
}

/* CHECK that removes the objects first: they are the host's. */
#define HCHECK(cond, fmt, ...)                                             \
	do {                                                               \
		if (!(cond)) {                                             \
			cleanup();                                         \
			ckpt_fail("%s:%d: " fmt, __FILE__, __LINE__,       \
				  ##__VA_ARGS__);                          \
		}                                                          \
	} while (0)

static void check_shm(int id, key_t key, size_t size, unsigned mode, int dest)
{
	struct shmid_ds ds;

	HCHECK(shmctl(id, IPC_STAT, &ds) == 0, "segment %d is gone: %s", id, strerror(errno));
	HCHECK(ds.shm_perm.__key == key, "segment %d: key %#x, want %#x", id, (unsigned)ds.shm_perm.__key, (unsigned)key);
	HCHECK(ds.shm_segsz == size, "segment %d: size %zu, want %zu", id, (size_t)ds.shm_segsz, size);
	HCHECK((ds.shm_perm.mode & 0777) == mode, "segment %d: mode %o, want %o", id, ds.shm_perm.mode & 0777, mode);
	HCHECK(!!(ds.shm_perm.mode & SHM_DEST) == dest, "segment %d: mode %#o, marked for removal: want %d", id, ds.shm_perm.mode, dest);
}

int main(void)
{
	unsigned char *ma, *mp, *mn;
	key_t key = 0x5b000000 | (getpid() & 0xffffff);
	char la[512], lp[512], now[512];

	ckpt_block_term();
	a = shmget(key, 2 * PG, IPC_CREAT | IPC_EXCL | 0640);
	HCHECK(a >= 0, "shmget A: %s", strerror(errno));
	ma = shmat(a, NULL, 0);
	HCHECK(ma != (void *)-1, "shmat A");
	ckpt_fill(ma, 2 * PG, 21, 0);

	n = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
	HCHECK(n >= 0, "shmget N");
	mn = shmat(n, NULL, 0);
	HCHECK(mn != (void *)-1, "shmat N");
	ckpt_fill(mn, PG, 22, 0);
	HCHECK(shmdt(mn) == 0, "shmdt N");

	p = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
	HCHECK(p >= 0, "shmget P");
	mp = shmat(p, NULL, 0);
	HCHECK(mp != (void *)-1, "shmat P");
	ckpt_fill(mp, PG, 23, 0);
	HCHECK(shmdt(mp) == 0, "shmdt P");
	mp = shmat(p, NULL, SHM_RDONLY);
	HCHECK(mp != (void *)-1, "shmat P read-only");
	HCHECK(shmctl(p, IPC_RMID, NULL) == 0, "IPC_RMID P");

	sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	HCHECK(sem >= 0, "semget");
	unsigned short vals[2] = {5, 1};
	HCHECK(semctl(sem, 0, SETALL, (union semun){.array = vals}) == 0, "SETALL");

	q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	HCHECK(q >= 0, "msgget");
	struct msg m1 = {3, "first"}, m2 = {4, "second!"};
	HCHECK(msgsnd(q, &m1, 6, 0) == 0 && msgsnd(q, &m2, 8, 0) == 0, "msgsnd");

	w = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	HCHECK(w >= 0, "msgget W");
	s2 = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	HCHECK(s2 >= 0, "semget S2");
	pid_t cw = fork();
	HCHECK(cw >= 0, "fork");
	if (cw == 0) {
		struct msg r = {0, ""};
		while (msgrcv(w, &r, sizeof(r.text), 0, 0) < 0)
			CHECK_SYS(errno == EINTR, "child: msgrcv on W");
		CHECK(r.type == 7 && strcmp(r.text, "wake") == 0, "child: W gave type %ld %s", r.type, r.text);
		_exit(0);
	}
	pid_t cs = fork();
	HCHECK(cs >= 0, "fork");
	if (cs == 0) {
		struct sembuf op = {0, -1, 0};
		while (semop(s2, &op, 1) != 0)
			CHECK_SYS(errno == EINTR, "child: semop on S2");
		_exit(0);
	}
	for (int i = 0; i < 5000; i++) {
		struct msqid_ds ds;
		if (semctl(s2, 0, GETNCNT) == 1 && msgctl(w, IPC_STAT, &ds) == 0 && ds.msg_lrpid == 0 && ckpt_proc_state(cw) == 'S')
			break;
		usleep(1000);
	}
	usleep(20000);
	if (ckpt_maps_line(ma, la, sizeof(la)) || ckpt_maps_line(mp, lp, sizeof(lp))) {
		cleanup();
		ckpt_fail("segments not in maps");
	}
	ckpt_log("ids: A %d N %d P %d sem %d msg %d", a, n, p, sem, q);
	ckpt_ready();
	ckpt_wait_term();

	HCHECK(shmget(key, 0, 0) == a, "key %#x is segment %d, want %d", (unsigned)key, shmget(key, 0, 0), a);
	check_shm(a, key, 2 * PG, 0640, 0);
	check_shm(n, IPC_PRIVATE, PG, 0600, 0);
	check_shm(p, IPC_PRIVATE, PG, 0600, 1);
	HCHECK(ckpt_maps_line(ma, now, sizeof(now)) == 0 && strcmp(now, la) == 0, "segment A was '%s', is '%s'", la, now);
	HCHECK(ckpt_maps_line(mp, now, sizeof(now)) == 0 && strcmp(now, lp) == 0, "segment P was '%s', is '%s'", lp, now);
	size_t bad = ckpt_verify(ma, 2 * PG, 21, 0);
	HCHECK(bad == (size_t)-1, "segment A: pattern broken at %zu", bad);
	bad = ckpt_verify(mp, PG, 23, 0);
	HCHECK(bad == (size_t)-1, "segment P: pattern broken at %zu", bad);
	mn = shmat(n, NULL, SHM_RDONLY);
	HCHECK(mn != (void *)-1, "shmat N");
	bad = ckpt_verify(mn, PG, 22, 0);
	HCHECK(bad == (size_t)-1, "segment N: pattern broken at %zu", bad);

	unsigned short got[2] = {9, 9};
	HCHECK(semctl(sem, 0, GETALL, (union semun){.array = got}) == 0, "GETALL: %s", strerror(errno));
	HCHECK(got[0] == 5 && got[1] == 1, "semaphore values %u %u, want 5 1", got[0], got[1]);

	struct msg r = {0, ""};
	HCHECK(msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT) == 6 && r.type == 3 && strcmp(r.text, "first") == 0,
	       "first message: type %ld %s", r.type, r.text);
	HCHECK(msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT) == 8 && r.type == 4 && strcmp(r.text, "second!") == 0,
	       "second message: type %ld %s", r.type, r.text);
	/* Wake the children that wait on W and S2. */
	struct msg wake = {7, "wake"};
	struct sembuf up = {0, 1, 0};
	int st;
	HCHECK(msgsnd(w, &wake, 5, 0) == 0, "msgsnd W: %s", strerror(errno));
	HCHECK(semop(s2, &up, 1) == 0, "semop S2: %s", strerror(errno));
	HCHECK(waitpid(cw, &st, 0) == cw && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child waiting on W: status %#x", st);
	HCHECK(waitpid(cs, &st, 0) == cs && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child waiting on S2: status %#x", st);
	cleanup();
	ckpt_pass();
}
