/* ckpt-test: */
/*
 * POSIX timers (timer_create, raw system calls so that ids are the
 * kernel's): ids 0..5 are created and 1 and 3 deleted, leaving gaps.
 *   0: CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN, value 0x1111, every 200 ms
 *      (it fires before the dump; the signal stays pending)
 *   2: CLOCK_REALTIME, SIGEV_THREAD_ID to the main thread, SIGRTMIN+1,
 *      value 0x2222, an hour left, interval 30 min
 *   4: CLOCK_BOOTTIME, SIGEV_NONE, 100 s left, interval 10 s
 *   5: CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, value a pointer, disarmed
 * After the restore: the same ids answer timer_gettime with the same
 * intervals, 1 and 3 are still free, the pending signal and a new one
 * arrive with their si_value, and a new timer can be created.
 */
#include "ckpt_test.h"

static int mk(clockid_t clk, int notify, int sig, long val, int tid)
{
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_ptr = (void *)val;
	sev._sigev_un._tid = tid;
	int id = -1;
	CHECK_SYS(syscall(SYS_timer_create, clk, &sev, &id) == 0, "timer_create(clock %d)", (int)clk);
	return id;
}

static void arm(int id, long vs, long vns, long is, long ins)
{
	struct itimerspec its = {{is, ins}, {vs, vns}};
	CHECK_SYS(syscall(SYS_timer_settime, id, 0, &its, NULL) == 0, "timer_settime(%d)", id);
}

static struct itimerspec get(int id)
{
	struct itimerspec its;
	CHECK_SYS(syscall(SYS_timer_gettime, id, &its) == 0, "timer_gettime(%d)", id);
	return its;
}

static void wait_value(int sig, long val, const char *what)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	struct timespec ts = {2, 0};
	siginfo_t si;
	CHECK_SYS(sigtimedwait(&s, &si, &ts) == sig, "%s: no signal %d", what, sig);
	CHECK(si.si_code == SI_TIMER, "%s: si_code %d, want SI_TIMER", what, si.si_code);
	CHECK((long)si.si_value.sival_ptr == val, "%s: si_value %#lx, want %#lx", what, (long)si.si_value.sival_ptr, val);
}

static int marker;

int main(void)
{
	ckpt_block_term();
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN);
	sigaddset(&m, SIGRTMIN + 1);
	sigaddset(&m, SIGRTMIN + 2);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &m, NULL) == 0, "block");
	int tid = (int)syscall(SYS_gettid);

	int id[6];
	id[0] = mk(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0x1111, 0);
	id[1] = mk(CLOCK_MONOTONIC, SIGEV_NONE, SIGRTMIN, 0, 0);
	id[2] = mk(CLOCK_REALTIME, SIGEV_THREAD_ID, SIGRTMIN + 1, 0x2222, tid);
	id[3] = mk(CLOCK_MONOTONIC, SIGEV_NONE, SIGRTMIN, 0, 0);
	id[4] = mk(CLOCK_BOOTTIME, SIGEV_NONE, SIGRTMIN, 0, 0);
	id[5] = mk(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 2, (long)&marker, 0);
	for (int i = 0; i < 6; i++)
		CHECK(id[i] == i, "timer %d got id %d (ids are handed out in order)", i, id[i]);
	CHECK_SYS(syscall(SYS_timer_delete, 1) == 0 && syscall(SYS_timer_delete, 3) == 0, "timer_delete");
	arm(0, 0, 200000000, 0, 200000000);
	arm(2, 3600, 0, 1800, 0);
	arm(4, 100, 0, 10, 0);
	ckpt_sleep_ms(300); /* timer 0 has fired: SIGRTMIN is pending */

	ckpt_ready();
	ckpt_wait_term();

	struct itimerspec c = get(0);
	CHECK(c.it_interval.tv_sec == 0 && c.it_interval.tv_nsec == 200000000, "timer 0 interval %ld.%09ld",
	      (long)c.it_interval.tv_sec, (long)c.it_interval.tv_nsec);
	c = get(2);
	CHECK(c.it_interval.tv_sec == 1800 && c.it_value.tv_sec > 3500 && c.it_value.tv_sec <= 3600,
	      "timer 2: interval %ld s, left %ld s", (long)c.it_interval.tv_sec, (long)c.it_value.tv_sec);
	c = get(4);
	CHECK(c.it_interval.tv_sec == 10 && c.it_value.tv_sec > 0 && c.it_value.tv_sec <= 100,
	      "timer 4: interval %ld s, left %ld s", (long)c.it_interval.tv_sec, (long)c.it_value.tv_sec);
	c = get(5);
	CHECK(c.it_value.tv_sec == 0 && c.it_value.tv_nsec == 0 && c.it_interval.tv_sec == 0, "timer 5 armed");
	errno = 0;
	CHECK(syscall(SYS_timer_gettime, 1, &c) < 0 && errno == EINVAL, "timer 1 exists after the restore (errno %d)", errno);
	CHECK(syscall(SYS_timer_gettime, 3, &c) < 0 && errno == EINVAL, "timer 3 exists after the restore (errno %d)", errno);
	wait_value(SIGRTMIN, 0x1111, "timer 0, pending at the dump");
	wait_value(SIGRTMIN, 0x1111, "timer 0 after the restore");
	/* Timer 2 fires now, aimed at this thread, with its value. */
	arm(2, 0, 1000000, 1800, 0);
	wait_value(SIGRTMIN + 1, 0x2222, "timer 2");
	/* Timer 5 carries its pointer. */
	arm(5, 0, 1000000, 0, 0);
	wait_value(SIGRTMIN + 2, (long)&marker, "timer 5");
	int n = mk(CLOCK_MONOTONIC, SIGEV_NONE, SIGRTMIN, 0, 0);
	CHECK(n != 0 && n != 2 && n != 4 && n != 5, "a new timer got the id %d of a restored one", n);
	ckpt_pass();
}
