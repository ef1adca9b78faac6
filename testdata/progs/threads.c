/* ckpt-test: */
/*
 * threads: a multi-threaded process (main thread + 4 pthreads), each thread
 * in a different state at checkpoint time and with its own per-thread
 * kernel state:
 *  - T1 blocked in a futex wait: pthread_cond_wait() on a condition that is
 *    only signalled after SIGTERM;
 *  - T2 looping over 100 ms nanosleep()s, with its own sigaltstack and
 *    SIGUSR2 blocked (only T2 blocks it);
 *  - T3 spinning in user space (a 64-bit counter, kept in a register and
 *    stored to memory each round, must keep increasing after the restore),
 *    with its own sigaltstack and two thread-private pending instances of
 *    the blocked SIGRTMIN+3 (pthread_kill, then pthread_sigqueue with a
 *    value): they must still be pending for T3 only and dequeue in order
 *    with si_code SI_TKILL / SI_QUEUE, si_pid and the value intact;
 *  - T4 blocked in a raw rt_sigtimedwait() (sigwaitinfo) for SIGUSR1
 *    (SIGUSR1 is blocked in every thread; during the wait the kernel
 *    temporarily unblocks it, so the mask the thread returns to must be
 *    the saved one, not the temporary one);
 *  - the main thread waits for SIGTERM with sigwaitinfo() (SIGTERM is
 *    blocked in every thread).
 * Every thread has its own signal mask (different per thread), a TLS block
 * (__thread array with a per-thread pattern, plus an initialised __thread
 * word from the .tdata image) and records its TID and TLS address.
 * All threads meet at a barrier, then READY is printed once T1 and T4 are
 * asleep in the kernel. After SIGTERM:
 *  - /proc/self/task lists exactly the recorded TIDs (same TIDs after the
 *    restore), the main thread's TID is the PID;
 *  - SigBlk, SigPnd and ShdPnd of every task in /proc are what they were
 *    before READY (T4's SigBlk is the temporary sigwaitinfo mask both times);
 *  - T3's counter went on from where it was and is still increasing, T2
 *    still completes sleeps;
 * then the threads are woken (cond signal, stop flag, pthread_kill(T4,
 * SIGUSR1)) and each checks by itself: gettid(), the address and contents
 * of its TLS, its mask (pthread_sigmask query), its altstack (or none),
 * and T3 its pending signals, T4 the siginfo of SIGUSR1. The results are
 * collected with pthread_join(); PASS only if all of them pass.
 */
#include "ckpt_test.h"

#include <dirent.h>
#include <pthread.h>

#define NTHR 5 /* index 0 is the main thread, 1..4 are T1..T4 */
#define TLS_INIT 0x7e57da7au
#define T3_VALUE 0x3e3e3e

struct thr {
	int idx;
	pthread_t pt;
	pid_t tid;
	void *tls_addr;
	sigset_t mask;
	int has_altstack;
	stack_t alt;
	char blk[32], pnd[32], shd[32]; /* /proc status before READY */
	char err[512];
};

static struct thr thr[NTHR];

static __thread uint32_t tls_data[64];
static __thread uint32_t tls_init = TLS_INIT;

static pthread_barrier_t barrier;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int t1_go, t1_waiting; /* under mu */
static volatile int stop;     /* T2, T3 */
static volatile int t4_waiting;
static uint64_t t2_loops, t3_counter; /* __atomic accesses */

static char alt2[48 * 1024] __attribute__((aligned(16)));
static char alt3[40 * 1024] __attribute__((aligned(16)));

static __attribute__((format(printf, 2, 3)))
void tfail(struct thr *t, const char *fmt, ...)
{
	va_list ap;

	if (t->err[0])
		return; /* keep the first error */
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

/*
 * The raw rt_sigtimedwait: glibc's sigwaitinfo/sigtimedwait report SI_TKILL
 * as SI_USER, and the exact si_code is part of what must be restored.
 */
static int sys_sigtimedwait(const sigset_t *set, siginfo_t *si,
			    const struct timespec *timeout)
{
	return (int)syscall(SYS_rt_sigtimedwait, set, si, timeout, (size_t)8);
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* Per-thread setup, run by the thread itself. */
static void thread_setup(struct thr *t)
{
	int e;

	t->tid = my_tid();
	t->tls_addr = tls_data;
	ckpt_fill(tls_data, sizeof(tls_data), 0x100u + (uint32_t)t->idx, 0);
	e = pthread_sigmask(SIG_SETMASK, &t->mask, NULL);
	if (e)
		ckpt_fail("T%d: pthread_sigmask: %s", t->idx, strerror(e));
	if (t->has_altstack && sigaltstack(&t->alt, NULL) != 0)
		ckpt_fail("T%d: sigaltstack: %s", t->idx, strerror(errno));
}

/* Per-thread checks after the restore, run by the thread itself. */
static void thread_check(struct thr *t)
{
	sigset_t cur;
	stack_t ss;
	size_t bad;
	int e, s;

	if (my_tid() != t->tid)
		tfail(t, "gettid() is %d, was %d", (int)my_tid(), (int)t->tid);
	if ((void *)tls_data != t->tls_addr)
		tfail(t, "TLS block at %p, was at %p", (void *)tls_data, t->tls_addr);
	bad = ckpt_verify(tls_data, sizeof(tls_data), 0x100u + (uint32_t)t->idx, 0);
	if (bad != (size_t)-1)
		tfail(t, "TLS data at %p differs at offset %zu", (void *)tls_data, bad);
	if (tls_init != TLS_INIT)
		tfail(t, "initialised TLS word is 0x%08x, expected 0x%08x", tls_init,
		      TLS_INIT);

	e = pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (e)
		tfail(t, "pthread_sigmask query: %s", strerror(e));
	else if ((s = ckpt_sigset_diff(&cur, &t->mask)) != 0)
		tfail(t, "signal %d is %sblocked, expected %sblocked", s,
		      sigismember(&cur, s) ? "" : "not ",
		      sigismember(&t->mask, s) ? "" : "not ");

	if (sigaltstack(NULL, &ss) != 0)
		tfail(t, "sigaltstack query: %s", strerror(errno));
	else if (t->has_altstack) {
		if (ss.ss_sp != t->alt.ss_sp || ss.ss_size != t->alt.ss_size ||
		    ss.ss_flags != 0)
			tfail(t, "altstack is sp=%p size=%zu flags=%d, expected sp=%p size=%zu flags=0",
			      ss.ss_sp, (size_t)ss.ss_size, ss.ss_flags, t->alt.ss_sp,
			      (size_t)t->alt.ss_size);
	} else if (!(ss.ss_flags & SS_DISABLE)) {
		tfail(t, "has an altstack sp=%p size=%zu flags=%d, expected none",
		      ss.ss_sp, (size_t)ss.ss_size, ss.ss_flags);
	}
}

static void *t1_main(void *arg)
{
	struct thr *t = arg;

	thread_setup(t);
	pthread_barrier_wait(&barrier);

	pthread_mutex_lock(&mu);
	t1_waiting = 1;
	while (!t1_go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	thread_check(t);
	return t->err[0] ? t->err : NULL;
}

static void *t2_main(void *arg)
{
	struct thr *t = arg;

	thread_setup(t);
	pthread_barrier_wait(&barrier);

	while (!stop) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		/* EINTR is restart_nanosleep's business, not this test's. */
		if (nanosleep(&ts, NULL) != 0 && errno != EINTR) {
			tfail(t, "nanosleep: %s", strerror(errno));
			break;
		}
		__atomic_add_fetch(&t2_loops, 1, __ATOMIC_RELAXED);
	}

	thread_check(t);
	return t->err[0] ? t->err : NULL;
}

static void *t3_main(void *arg)
{
	struct thr *t = arg;
	const int rt = SIGRTMIN + 3;
	struct timespec zero = { 0, 0 };
	union sigval v;
	siginfo_t si;
	sigset_t set, pend;
	uint64_t c = 0;
	int e, s;

	thread_setup(t);
	/* Two private instances of the blocked RT signal, in this order. */
	e = pthread_kill(pthread_self(), rt);
	if (e)
		ckpt_fail("T3: pthread_kill(self): %s", strerror(e));
	v.sival_int = T3_VALUE;
	e = pthread_sigqueue(pthread_self(), rt, v);
	if (e)
		ckpt_fail("T3: pthread_sigqueue(self): %s", strerror(e));
	pthread_barrier_wait(&barrier);

	while (!stop)
		__atomic_store_n(&t3_counter, ++c, __ATOMIC_RELAXED);

	thread_check(t);

	/* Only the RT signal is pending, and it still is. */
	if (sigpending(&pend) != 0) {
		tfail(t, "sigpending: %s", strerror(errno));
		return t->err;
	}
	for (s = 1; s <= 64; s++)
		if (sigismember(&pend, s) != (s == rt))
			tfail(t, "signal %d is %spending (SIGRTMIN+3 = %d)", s,
			      sigismember(&pend, s) ? "" : "not ", rt);
	sigemptyset(&set);
	sigaddset(&set, rt);
	s = sys_sigtimedwait(&set, &si, &zero);
	if (s != rt)
		tfail(t, "1st sigtimedwait(SIGRTMIN+3) returned %d: %s", s,
		      s < 0 ? strerror(errno) : "?");
	else if (si.si_code != SI_TKILL || si.si_pid != getpid())
		tfail(t, "1st SIGRTMIN+3: si_code %d si_pid %d, expected SI_TKILL (%d) from %d",
		      si.si_code, (int)si.si_pid, SI_TKILL, (int)getpid());
	s = sys_sigtimedwait(&set, &si, &zero);
	if (s != rt)
		tfail(t, "2nd sigtimedwait(SIGRTMIN+3) returned %d: %s", s,
		      s < 0 ? strerror(errno) : "?");
	else if (si.si_code != SI_QUEUE || si.si_pid != getpid() ||
		 si.si_value.sival_int != T3_VALUE)
		tfail(t, "2nd SIGRTMIN+3: si_code %d si_pid %d value %#x, expected SI_QUEUE (%d) from %d value %#x",
		      si.si_code, (int)si.si_pid, si.si_value.sival_int, SI_QUEUE,
		      (int)getpid(), T3_VALUE);
	s = sys_sigtimedwait(&set, &si, &zero);
	if (s != -1 || errno != EAGAIN)
		tfail(t, "3rd sigtimedwait(SIGRTMIN+3) returned %d (errno %d), expected EAGAIN",
		      s, errno);
	return t->err[0] ? t->err : NULL;
}

static void *t4_main(void *arg)
{
	struct thr *t = arg;
	sigset_t set;
	siginfo_t si;
	int s;

	thread_setup(t);
	pthread_barrier_wait(&barrier);

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	t4_waiting = 1;
	do
		s = sys_sigtimedwait(&set, &si, NULL);
	while (s < 0 && errno == EINTR);

	if (s != SIGUSR1)
		tfail(t, "rt_sigtimedwait(SIGUSR1) returned %d: %s", s,
		      s < 0 ? strerror(errno) : "?");
	else if (si.si_signo != SIGUSR1 || si.si_code != SI_TKILL ||
		 si.si_pid != getpid() || si.si_uid != getuid())
		tfail(t, "SIGUSR1: si_code %d si_pid %d si_uid %d, expected SI_TKILL (%d) from %d/%d",
		      si.si_code, (int)si.si_pid, (int)si.si_uid, SI_TKILL,
		      (int)getpid(), (int)getuid());
	thread_check(t);
	return t->err[0] ? t->err : NULL;
}

/* Value of a "Name:" line of /proc/self/task/TID/status. */
static void task_status(pid_t tid, const char *name, char *out, size_t cap)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (ckpt_file_field(path, name, out, cap) < 0)
		ckpt_fail("%s has no %s line", path, name);
}

/* Wait (up to 5 s) until the thread is asleep in the kernel. */
static void wait_sleeping(int idx)
{
	for (int i = 0; i < 500; i++) {
		if (ckpt_proc_state(thr[idx].tid) == 'S')
			return;
		ckpt_sleep_ms(10);
	}
	ckpt_fail("T%d (tid %d) is not sleeping after 5 s (state %c)", idx,
		  (int)thr[idx].tid, ckpt_proc_state(thr[idx].tid));
}

static void snapshot_status(int idx, char *blk, char *pnd, char *shd)
{
	task_status(thr[idx].tid, "SigBlk", blk, 32);
	task_status(thr[idx].tid, "SigPnd", pnd, 32);
	task_status(thr[idx].tid, "ShdPnd", shd, 32);
}

/* /proc/self/task must list exactly the recorded TIDs. */
static void check_task_list(void)
{
	int seen[NTHR] = { 0 };
	int n = 0;
	struct dirent *de;
	DIR *d = opendir("/proc/self/task");

	CHECK_SYS(d != NULL, "opendir /proc/self/task");
	while ((de = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		int found = 0;

		if (de->d_name[0] == '.' || *end)
			continue;
		n++;
		for (int i = 0; i < NTHR; i++)
			if (thr[i].tid == tid) {
				seen[i]++;
				found = 1;
			}
		CHECK(found, "/proc/self/task has an unknown thread %ld", tid);
	}
	closedir(d);
	for (int i = 0; i < NTHR; i++)
		CHECK(seen[i] == 1, "T%d (tid %d) is %s in /proc/self/task", i,
		      (int)thr[i].tid, seen[i] ? "repeated" : "missing");
	CHECK(n == NTHR, "/proc/self/task has %d threads, expected %d", n, NTHR);
}

int main(void)
{
	static void *(*const fn[NTHR])(void *) = { NULL, t1_main, t2_main, t3_main, t4_main };
	uint64_t c_ready, c1, c2, l1, l2;
	sigset_t base;
	int e;

	/* SIGTERM and SIGUSR1 blocked everywhere; the rest differs per thread. */
	sigemptyset(&base);
	sigaddset(&base, SIGTERM);
	sigaddset(&base, SIGUSR1);
	for (int i = 0; i < NTHR; i++) {
		thr[i].idx = i;
		thr[i].mask = base;
	}
	sigaddset(&thr[0].mask, SIGQUIT);
	sigaddset(&thr[1].mask, SIGWINCH);
	sigaddset(&thr[1].mask, SIGRTMIN + 1);
	sigaddset(&thr[2].mask, SIGUSR2);
	sigaddset(&thr[3].mask, SIGRTMIN + 3);
	sigaddset(&thr[3].mask, SIGPIPE);
	sigaddset(&thr[4].mask, SIGHUP);
	sigaddset(&thr[4].mask, SIGRTMIN + 5);
	thr[2].has_altstack = 1;
	thr[2].alt.ss_sp = alt2;
	thr[2].alt.ss_size = sizeof(alt2);
	thr[3].has_altstack = 1;
	thr[3].alt.ss_sp = alt3;
	thr[3].alt.ss_size = sizeof(alt3);

	/* Threads start with SIGTERM and SIGUSR1 already blocked. */
	CHECK_SYS(sigprocmask(SIG_BLOCK, &base, NULL) == 0, "sigprocmask");
	thread_setup(&thr[0]);
	e = pthread_barrier_init(&barrier, NULL, NTHR);
	CHECK(e == 0, "pthread_barrier_init: %s", strerror(e));
	for (int i = 1; i < NTHR; i++) {
		e = pthread_create(&thr[i].pt, NULL, fn[i], &thr[i]);
		CHECK(e == 0, "pthread_create T%d: %s", i, strerror(e));
	}
	pthread_barrier_wait(&barrier);

	CHECK(thr[0].tid == getpid(), "main thread tid %d != pid %d", (int)thr[0].tid,
	      (int)getpid());
	/* T1 holds no mutex once we get it: it is inside pthread_cond_wait. */
	for (;;) {
		int w;

		pthread_mutex_lock(&mu);
		w = t1_waiting;
		pthread_mutex_unlock(&mu);
		if (w)
			break;
		ckpt_sleep_ms(1);
	}
	while (!t4_waiting)
		ckpt_sleep_ms(1);
	wait_sleeping(1);
	wait_sleeping(2);
	wait_sleeping(4);
	while (__atomic_load_n(&t3_counter, __ATOMIC_RELAXED) == 0)
		ckpt_sleep_ms(1);
	for (int i = 0; i < NTHR; i++) {
		snapshot_status(i, thr[i].blk, thr[i].pnd, thr[i].shd);
		ckpt_log("T%d tid %d TLS %p SigBlk %s SigPnd %s", i, (int)thr[i].tid,
			 thr[i].tls_addr, thr[i].blk, thr[i].pnd);
	}

	c_ready = __atomic_load_n(&t3_counter, __ATOMIC_RELAXED);
	ckpt_ready();
	ckpt_wait_term();

	check_task_list();
	for (int i = 0; i < NTHR; i++) {
		char blk[32], pnd[32], shd[32];

		/*
		 * A wait interrupted by the checkpoint returns EINTR and is
		 * entered again by the loop around it: give T4 a moment to
		 * be back in rt_sigtimedwait with its temporary mask.
		 */
		for (int tries = 0;; tries++) {
			snapshot_status(i, blk, pnd, shd);
			if (strcmp(blk, thr[i].blk) == 0 || tries >= 100)
				break;
			ckpt_sleep_ms(10);
		}
		CHECK(strcmp(blk, thr[i].blk) == 0, "T%d: SigBlk %s, was %s", i, blk,
		      thr[i].blk);
		CHECK(strcmp(pnd, thr[i].pnd) == 0, "T%d: SigPnd %s, was %s", i, pnd,
		      thr[i].pnd);
		CHECK(strcmp(shd, thr[i].shd) == 0, "T%d: ShdPnd %s, was %s", i, shd,
		      thr[i].shd);
	}

	c1 = __atomic_load_n(&t3_counter, __ATOMIC_RELAXED);
	l1 = __atomic_load_n(&t2_loops, __ATOMIC_RELAXED);
	ckpt_sleep_ms(350);
	c2 = __atomic_load_n(&t3_counter, __ATOMIC_RELAXED);
	l2 = __atomic_load_n(&t2_loops, __ATOMIC_RELAXED);
	CHECK(c1 >= c_ready, "T3 counter went back from %llu to %llu",
	      (unsigned long long)c_ready, (unsigned long long)c1);
	CHECK(c2 > c1, "T3 counter does not increase any more (%llu)",
	      (unsigned long long)c2);
	CHECK(l2 > l1, "T2 completed no 100 ms sleep in 350 ms (%llu loops)",
	      (unsigned long long)l2);
	ckpt_log("T3 counter %llu at READY, %llu -> %llu; T2 loops %llu -> %llu",
		 (unsigned long long)c_ready, (unsigned long long)c1,
		 (unsigned long long)c2, (unsigned long long)l1,
		 (unsigned long long)l2);

	/* Wake everybody and collect their own verdicts. */
	stop = 1;
	pthread_mutex_lock(&mu);
	t1_go = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	e = pthread_kill(thr[4].pt, SIGUSR1);
	CHECK(e == 0, "pthread_kill(T4, SIGUSR1): %s", strerror(e));

	thread_check(&thr[0]);
	CHECK(!thr[0].err[0], "main thread: %s", thr[0].err);
	for (int i = 1; i < NTHR; i++) {
		void *res;

		e = pthread_join(thr[i].pt, &res);
		CHECK(e == 0, "pthread_join T%d: %s", i, strerror(e));
		CHECK(res == NULL, "T%d: %s", i, (const char *)res);
	}
	ckpt_pass();
}
