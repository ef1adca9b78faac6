/* ckpt-test: */
/*
 * SysV IPC objects in an IPC namespace of the tree's own
 * (unshare(CLONE_NEWIPC) first), each with an id that is not its
 * namespace's first (one object of each type made and removed before):
 *  - segment A (key 0x5a0001, 3 pages, mode 0640, owner 1000:1001),
 *    attached read-write by the parent and, by fork, its child;
 *  - segment B (key 0x5a0002, a page and 100 bytes), not attached, with
 *    contents;
 *  - segment C (IPC_PRIVATE), attached read-only by both, then marked
 *    for removal (IPC_RMID);
 *  - semaphore set (key 0x5a0003, values 3 0 7); the child waits in
 *    semop for semaphore 1 across the dump;
 *  - message queue (key 0x5a0004, msg_qbytes 4096) with 2 messages of
 *    types 1 and 2.
 * After the restore every object has its id, key, mode, owner and size,
 * the contents, values and messages; the attaches are at their
 * addresses and counted (shm_nattch 2); C is still marked; the parent
 * wakes the child through the semaphore and the child's write to A is
 * shared.
 */
#include "ckpt_test.h"

#include <sched.h>
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

static void check_shm(int id, key_t key, size_t size, unsigned mode, uid_t uid, gid_t gid, unsigned long nattch, int dest)
{
	struct shmid_ds ds;

	CHECK_SYS(shmctl(id, IPC_STAT, &ds) == 0, "shmctl IPC_STAT %d", id);
	CHECK(ds.shm_perm.__key == key, "segment %d: key %#x, want %#x", id, (unsigned)ds.shm_perm.__key, (unsigned)key);
	CHECK(ds.shm_segsz == size, "segment %d: size %zu, want %zu", id, (size_t)ds.shm_segsz, size);
	CHECK((ds.shm_perm.mode & 0777) == mode, "segment %d: mode %o, want %o", id, ds.shm_perm.mode & 0777, mode);
	CHECK(ds.shm_perm.uid == uid && ds.shm_perm.gid == gid, "segment %d: owner %u:%u, want %u:%u", id,
	      (unsigned)ds.shm_perm.uid, (unsigned)ds.shm_perm.gid, (unsigned)uid, (unsigned)gid);
	CHECK(ds.shm_nattch == nattch, "segment %d: %lu attaches, want %lu", id, (unsigned long)ds.shm_nattch, nattch);
	CHECK(!!(ds.shm_perm.mode & SHM_DEST) == dest, "segment %d: mode %#o, marked for removal: want %d", id, ds.shm_perm.mode, dest);
}

int main(void)
{
	int a, b, c, sem, q, st;
	unsigned char *ma, *mc, *mb;
	struct shmid_ds ds;
	char la[512], lc[512], now[512];

	ckpt_block_term();
	CHECK_SYS(unshare(CLONE_NEWIPC) == 0, "unshare(CLONE_NEWIPC)");

	/* Ids that are not the first of the namespace. */
	int x = shmget(IPC_PRIVATE, PG, 0600);
	CHECK_SYS(x >= 0 && shmctl(x, IPC_RMID, NULL) == 0, "shm make and remove");
	x = semget(IPC_PRIVATE, 1, 0600);
	CHECK_SYS(x >= 0 && semctl(x, 0, IPC_RMID) == 0, "sem make and remove");
	x = msgget(IPC_PRIVATE, 0600);
	CHECK_SYS(x >= 0 && msgctl(x, IPC_RMID, NULL) == 0, "msg make and remove");

	a = shmget(0x5a0001, 3 * PG, IPC_CREAT | IPC_EXCL | 0640);
	CHECK_SYS(a >= 0, "shmget A");
	CHECK_SYS(shmctl(a, IPC_STAT, &ds) == 0, "IPC_STAT A");
	ds.shm_perm.uid = 1000;
	ds.shm_perm.gid = 1001;
	CHECK_SYS(shmctl(a, IPC_SET, &ds) == 0, "IPC_SET A");
	ma = shmat(a, NULL, 0);
	CHECK_SYS(ma != (void *)-1, "shmat A");
	ckpt_fill(ma, 3 * PG, 11, 0);

	b = shmget(0x5a0002, PG + 100, IPC_CREAT | IPC_EXCL | 0600);
	CHECK_SYS(b >= 0, "shmget B");
	mb = shmat(b, NULL, 0);
	CHECK_SYS(mb != (void *)-1, "shmat B");
	ckpt_fill(mb, PG + 100, 12, 0);
	CHECK_SYS(shmdt(mb) == 0, "shmdt B");

	c = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
	CHECK_SYS(c >= 0, "shmget C");
	mc = shmat(c, NULL, 0);
	CHECK_SYS(mc != (void *)-1, "shmat C");
	ckpt_fill(mc, PG, 13, 0);
	CHECK_SYS(shmdt(mc) == 0, "shmdt C");
	mc = shmat(c, NULL, SHM_RDONLY);
	CHECK_SYS(mc != (void *)-1, "shmat C read-only");

	sem = semget(0x5a0003, 3, IPC_CREAT | IPC_EXCL | 0600);
	CHECK_SYS(sem >= 0, "semget");
	unsigned short vals[3] = {3, 0, 7};
	CHECK_SYS(semctl(sem, 0, SETALL, (union semun){.array = vals}) == 0, "SETALL");

	q = msgget(0x5a0004, IPC_CREAT | IPC_EXCL | 0620);
	CHECK_SYS(q >= 0, "msgget");
	struct msqid_ds mds;
	CHECK_SYS(msgctl(q, IPC_STAT, &mds) == 0, "msgctl IPC_STAT");
	mds.msg_qbytes = 4096;
	CHECK_SYS(msgctl(q, IPC_SET, &mds) == 0, "msgctl IPC_SET");
	struct msg m1 = {1, "hello"}, m2 = {2, "world!!"};
	CHECK_SYS(msgsnd(q, &m1, 6, 0) == 0 && msgsnd(q, &m2, 8, 0) == 0, "msgsnd");

	pid_t child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		struct sembuf op = {1, -1, 0};
		memcpy(ma + 2 * PG, "child", 6);
		while (semop(sem, &op, 1) != 0)
			CHECK_SYS(errno == EINTR, "child: semop");
		CHECK(ckpt_verify(mc, PG, 13, 0) == (size_t)-1, "child: segment C");
		memcpy(ma + 2 * PG + 100, "after", 6);
		_exit(0);
	}
	CHECK_SYS(shmctl(c, IPC_RMID, NULL) == 0, "IPC_RMID C");
	while (memcmp(ma + 2 * PG, "child", 6) != 0)
		usleep(1000);
	for (int i = 0; i < 5000 && semctl(sem, 1, GETNCNT) != 1; i++)
		usleep(1000);
	CHECK(semctl(sem, 1, GETNCNT) == 1, "the child does not wait on the semaphore");
	if (ckpt_maps_line(ma, la, sizeof(la)) || ckpt_maps_line(mc, lc, sizeof(lc)))
		ckpt_fail("segments not in maps");
	ckpt_log("ids: A %d B %d C %d sem %d msg %d", a, b, c, sem, q);

	ckpt_ready();
	ckpt_wait_term();

	/* Ids and keys. */
	CHECK(shmget(0x5a0001, 0, 0) == a, "key 0x5a0001 is segment %d, want %d", shmget(0x5a0001, 0, 0), a);
	CHECK(shmget(0x5a0002, 0, 0) == b, "key 0x5a0002 is segment %d, want %d", shmget(0x5a0002, 0, 0), b);
	CHECK(semget(0x5a0003, 0, 0) == sem, "key 0x5a0003 is set %d, want %d", semget(0x5a0003, 0, 0), sem);
	CHECK(msgget(0x5a0004, 0) == q, "key 0x5a0004 is queue %d, want %d", msgget(0x5a0004, 0), q);
	check_shm(a, 0x5a0001, 3 * PG, 0640, 1000, 1001, 2, 0);
	check_shm(b, 0x5a0002, PG + 100, 0600, 0, 0, 0, 0);
	check_shm(c, IPC_PRIVATE, PG, 0600, 0, 0, 2, 1);

	/* Attaches at their addresses, contents. */
	if (ckpt_maps_line(ma, now, sizeof(now)))
		ckpt_fail("segment A is not mapped");
	CHECK(strcmp(now, la) == 0, "segment A was '%s', is '%s'", la, now);
	if (ckpt_maps_line(mc, now, sizeof(now)))
		ckpt_fail("segment C is not mapped");
	CHECK(strcmp(now, lc) == 0, "segment C was '%s', is '%s'", lc, now);
	size_t bad = ckpt_verify(ma, 2 * PG, 11, 0);
	CHECK(bad == (size_t)-1, "segment A: pattern broken at %zu", bad);
	CHECK(memcmp(ma + 2 * PG, "child", 6) == 0, "segment A: the child's write is gone");
	bad = ckpt_verify(mc, PG, 13, 0);
	CHECK(bad == (size_t)-1, "segment C: pattern broken at %zu", bad);
	mb = shmat(b, NULL, SHM_RDONLY);
	CHECK_SYS(mb != (void *)-1, "shmat B");
	bad = ckpt_verify(mb, PG + 100, 12, 0);
	CHECK(bad == (size_t)-1, "segment B: pattern broken at %zu", bad);

	/* Semaphores. */
	unsigned short got[3] = {9, 9, 9};
	CHECK_SYS(semctl(sem, 0, GETALL, (union semun){.array = got}) == 0, "GETALL");
	CHECK(got[0] == 3 && got[1] == 0 && got[2] == 7, "semaphore values %u %u %u, want 3 0 7", got[0], got[1], got[2]);

	/* Messages. */
	CHECK_SYS(msgctl(q, IPC_STAT, &mds) == 0, "msgctl IPC_STAT");
	CHECK(mds.msg_qnum == 2 && mds.msg_qbytes == 4096 && mds.msg_cbytes == 14, "queue: %lu messages, %lu bytes, qbytes %lu",
	      (unsigned long)mds.msg_qnum, (unsigned long)mds.msg_cbytes, (unsigned long)mds.msg_qbytes);
	CHECK((mds.msg_perm.mode & 0777) == 0620, "queue mode %o", mds.msg_perm.mode & 0777);
	struct msg r = {0, ""};
	CHECK_SYS(msgrcv(q, &r, sizeof(r.text), 2, IPC_NOWAIT) == 8, "msgrcv type 2");
	CHECK(strcmp(r.text, "world!!") == 0, "message of type 2: %s", r.text);
	CHECK_SYS(msgrcv(q, &r, sizeof(r.text), 0, IPC_NOWAIT) == 6, "msgrcv");
	CHECK(r.type == 1 && strcmp(r.text, "hello") == 0, "message of type %ld: %s", r.type, r.text);

	/* The child goes on. */
	struct sembuf op = {1, 1, 0};
	CHECK_SYS(semop(sem, &op, 1) == 0, "semop");
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(memcmp(ma + 2 * PG + 100, "after", 6) == 0, "the child's write after the restore is not shared");
	check_shm(c, IPC_PRIVATE, PG, 0600, 0, 0, 1, 1);
	ckpt_pass();
}
