/* ckpt-test: */
/*
 * sched_attrs: task attributes that must come back (issue 10):
 *  - scheduling, per thread: the main thread SCHED_BATCH with nice 5;
 *    thread I SCHED_IDLE with nice 7; thread R SCHED_RR priority 2 with
 *    SCHED_RESET_ON_FORK and nice -3 (skipped, with a note, where the
 *    kernel refuses real-time policies to this task);
 *  - oom_score_adj 400;
 *  - PR_SET_THP_DISABLE;
 *  - membarrier: registered for MEMBARRIER_CMD_PRIVATE_EXPEDITED (on
 *    Linux 6.3+ read back with MEMBARRIER_CMD_GET_REGISTRATIONS; on every
 *    kernel the private expedited command must work after the restore,
 *    which it does only for a registered mm);
 *  - loginuid 4242 (set only where it is unset, which needs no privilege);
 *  - a MAP_LOCKED mapping and a heap range locked with mlock(): both "lo"
 *    in their smaps VmFlags, with their contents.
 * After SIGTERM each is read back and must be what was set.
 */
#include "ckpt_test.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef SCHED_BATCH
#define SCHED_BATCH 3
#endif
#ifndef SCHED_IDLE
#define SCHED_IDLE 5
#endif
#define GET_REGISTRATIONS (1 << 9)

#define LOCKED_PAGES 3
#define LOGINUID 4242

struct thr {
	pid_t tid;
	int policy, prio, nice, ok;
	pthread_t pt;
};

static struct thr idle_thr, rr_thr;
static int wake[2];
static pthread_barrier_t bar;

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	struct sched_param sp = { .sched_priority = t->prio };
	char c;

	t->tid = gettid();
	t->ok = setpriority(PRIO_PROCESS, 0, t->nice) == 0 &&
		sched_setscheduler(0, t->policy, &sp) == 0;
	if (!t->ok)
		ckpt_log("thread %d: %s priority %d nice %d: %s", t->tid,
			 t->policy == SCHED_IDLE ? "SCHED_IDLE" : "SCHED_RR",
			 t->prio, t->nice, strerror(errno));
	pthread_barrier_wait(&bar);
	while (read(wake[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void check_sched(const char *who, pid_t tid, int policy, int prio, int nice)
{
	struct sched_param sp;
	int p;

	errno = 0;
	p = getpriority(PRIO_PROCESS, tid);
	CHECK_SYS(errno == 0, "%s: getpriority", who);
	CHECK(p == nice, "%s: nice %d, want %d", who, p, nice);
	p = sched_getscheduler(tid);
	CHECK_SYS(p >= 0, "%s: sched_getscheduler", who);
	CHECK(p == policy, "%s: policy %#x, want %#x", who, p, policy);
	CHECK_SYS(sched_getparam(tid, &sp) == 0, "%s: sched_getparam", who);
	CHECK(sp.sched_priority == prio, "%s: priority %d, want %d", who, sp.sched_priority, prio);
}

static int read_int_file(const char *path, long long *v)
{
	char buf[64];

	if (ckpt_read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	*v = strtoll(buf, NULL, 10);
	return 0;
}

/* Whether the smaps entry holding addr has VmFlags token "lo". */
static int locked(const void *addr)
{
	static char buf[1 << 20];
	char *p, *line;
	unsigned long a = (unsigned long)addr, s, e;
	int in = 0;

	CHECK(ckpt_read_file("/proc/self/smaps", buf, sizeof(buf)) > 0, "read smaps");
	for (line = strtok_r(buf, "\n", &p); line; line = strtok_r(NULL, "\n", &p)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ' ') &&
		    line[strspn(line, "0123456789abcdef")] == '-') {
			in = a >= s && a < e;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0)
			return strstr(line, " lo") != NULL;
	}
	ckpt_fail("%p not in smaps", addr);
}

int main(void)
{
	long pagesz = sysconf(_SC_PAGESIZE);
	long long v, luid = -1;
	unsigned char *lk, *heap;
	struct sched_param sp = { 0 };
	int membar = 0, rr = 0;
	long regs;

	ckpt_block_term();
	CHECK_SYS(pipe(wake) == 0, "pipe");
	CHECK(pthread_barrier_init(&bar, NULL, 3) == 0, "barrier");

	/* Scheduling. */
	CHECK_SYS(setpriority(PRIO_PROCESS, 0, 5) == 0, "setpriority 5");
	CHECK_SYS(sched_setscheduler(0, SCHED_BATCH, &sp) == 0, "SCHED_BATCH");
	idle_thr = (struct thr){ .policy = SCHED_IDLE, .prio = 0, .nice = 7 };
	rr_thr = (struct thr){ .policy = SCHED_RR | SCHED_RESET_ON_FORK, .prio = 2, .nice = -3 };
	CHECK(pthread_create(&idle_thr.pt, NULL, thread_main, &idle_thr) == 0, "pthread_create");
	CHECK(pthread_create(&rr_thr.pt, NULL, thread_main, &rr_thr) == 0, "pthread_create");
	pthread_barrier_wait(&bar);
	CHECK(idle_thr.ok, "SCHED_IDLE thread");
	rr = rr_thr.ok;

	/* oom_score_adj, THP, membarrier, loginuid. */
	{
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);
		CHECK_SYS(fd >= 0 && write(fd, "400", 3) == 3, "oom_score_adj 400");
		close(fd);
	}
	CHECK_SYS(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0, "PR_SET_THP_DISABLE");
	regs = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	CHECK(regs >= 0 && (regs & MEMBARRIER_CMD_PRIVATE_EXPEDITED), "membarrier(MEMBARRIER_CMD_QUERY) %ld: %s", regs, strerror(errno));
	CHECK(syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) < 0 && errno == EPERM,
	      "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) before the registration: want EPERM");
	CHECK_SYS(syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0,
		  "membarrier register");
	membar = syscall(__NR_membarrier, GET_REGISTRATIONS, 0, 0) >= 0;
	if (!membar)
		ckpt_log("no MEMBARRIER_CMD_GET_REGISTRATIONS (%s): the registration is probed", strerror(errno));
	if (read_int_file("/proc/self/loginuid", &v) == 0 && v == 4294967295LL) {
		int fd = open("/proc/self/loginuid", O_WRONLY);
		if (fd >= 0 && write(fd, "4242", 4) == 4)
			luid = LOGINUID;
		else
			ckpt_log("cannot set loginuid: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
	} else {
		ckpt_log("loginuid is set already: not tested");
	}

	/* Locked memory. */
	lk = mmap(NULL, LOCKED_PAGES * pagesz, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	CHECK_SYS(lk != MAP_FAILED, "mmap MAP_LOCKED");
	for (long i = 0; i < LOCKED_PAGES * pagesz; i++)
		lk[i] = (unsigned char)(i * 7 + 1);
	heap = malloc(8 * pagesz);
	CHECK(heap, "malloc");
	heap = (unsigned char *)(((unsigned long)heap + pagesz - 1) & ~(pagesz - 1));
	memset(heap, 0x5a, 2 * pagesz);
	CHECK_SYS(mlock(heap, 2 * pagesz) == 0, "mlock");
	CHECK(locked(lk) && locked(heap), "not locked before the dump");

	ckpt_ready();
	ckpt_wait_term();

	check_sched("main thread", 0, SCHED_BATCH, 0, 5);
	check_sched("SCHED_IDLE thread", idle_thr.tid, SCHED_IDLE, 0, 7);
	if (rr)
		check_sched("SCHED_RR thread", rr_thr.tid, SCHED_RR | SCHED_RESET_ON_FORK, 2, -3);
	CHECK(read_int_file("/proc/self/oom_score_adj", &v) == 0 && v == 400, "oom_score_adj %lld, want 400", v);
	v = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	CHECK(v == 1, "PR_GET_THP_DISABLE %lld, want 1", v);
	if (membar) {
		regs = syscall(__NR_membarrier, GET_REGISTRATIONS, 0, 0);
		CHECK(regs == MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, "membarrier registrations %#lx", regs);
	}
	CHECK_SYS(syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0,
		  "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) after the restore (not registered?)");
	if (luid >= 0)
		CHECK(read_int_file("/proc/self/loginuid", &v) == 0 && v == luid, "loginuid %lld, want %lld", v, luid);
	CHECK(locked(lk), "the MAP_LOCKED mapping is not locked");
	CHECK(locked(heap), "the mlock()ed heap range is not locked");
	for (long i = 0; i < LOCKED_PAGES * pagesz; i++)
		CHECK(lk[i] == (unsigned char)(i * 7 + 1), "locked byte %ld", i);
	for (long i = 0; i < 2 * pagesz; i++)
		CHECK(heap[i] == 0x5a, "heap byte %ld", i);

	CHECK_SYS(write(wake[1], "xx", 2) == 2, "wake threads");
	pthread_join(idle_thr.pt, NULL);
	pthread_join(rr_thr.pt, NULL);
	ckpt_pass();
}
