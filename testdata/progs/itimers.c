/* ckpt-test: */
/*
 * setitimer timers: ITIMER_REAL every 250 ms (it fires before the dump:
 * SIGALRM, blocked, is pending, and the kernel re-arms the timer only when
 * the signal is dequeued, so getitimer shows no time left), ITIMER_VIRTUAL
 * and ITIMER_PROF with long values and intervals. After the restore all
 * three are armed with the same intervals, the pending SIGALRM is there
 * and another one arrives.
 */
#include "ckpt_test.h"

#include <sys/time.h>

static void wait_sig(int sig, int ms, const char *what)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	siginfo_t si;
	int got = sigtimedwait(&s, &si, &ts);
	CHECK_SYS(got == sig, "%s: no signal %d within %d ms", what, sig, ms);
}

int main(void)
{
	ckpt_block_term();
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGALRM);
	sigaddset(&m, SIGVTALRM);
	sigaddset(&m, SIGPROF);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &m, NULL) == 0, "block timer signals");

	struct itimerval real = {{0, 250000}, {0, 250000}};
	struct itimerval virt = {{100, 0}, {100, 0}};
	struct itimerval prof = {{50, 0}, {60, 0}};
	CHECK_SYS(setitimer(ITIMER_REAL, &real, NULL) == 0, "ITIMER_REAL");
	CHECK_SYS(setitimer(ITIMER_VIRTUAL, &virt, NULL) == 0, "ITIMER_VIRTUAL");
	CHECK_SYS(setitimer(ITIMER_PROF, &prof, NULL) == 0, "ITIMER_PROF");
	ckpt_sleep_ms(400); /* SIGALRM is pending from here on */

	ckpt_ready();
	ckpt_wait_term();

	struct itimerval cur;
	CHECK_SYS(getitimer(ITIMER_VIRTUAL, &cur) == 0, "getitimer(ITIMER_VIRTUAL)");
	CHECK(cur.it_interval.tv_sec == 100 && cur.it_interval.tv_usec == 0, "ITIMER_VIRTUAL interval %ld.%06ld",
	      (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec);
	CHECK(cur.it_value.tv_sec >= 90 && cur.it_value.tv_sec <= 100, "ITIMER_VIRTUAL left %ld s", (long)cur.it_value.tv_sec);
	CHECK_SYS(getitimer(ITIMER_PROF, &cur) == 0, "getitimer(ITIMER_PROF)");
	CHECK(cur.it_interval.tv_sec == 50 && cur.it_interval.tv_usec == 0, "ITIMER_PROF interval %ld.%06ld",
	      (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec);
	CHECK(cur.it_value.tv_sec >= 50 && cur.it_value.tv_sec <= 60, "ITIMER_PROF left %ld s", (long)cur.it_value.tv_sec);
	CHECK_SYS(getitimer(ITIMER_REAL, &cur) == 0, "getitimer(ITIMER_REAL)");
	CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 250000, "ITIMER_REAL interval %ld.%06ld",
	      (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec);
	wait_sig(SIGALRM, 1000, "the SIGALRM pending at the dump");
	wait_sig(SIGALRM, 2000, "ITIMER_REAL after the restore");
	wait_sig(SIGALRM, 2000, "ITIMER_REAL's next interval");
	CHECK_SYS(getitimer(ITIMER_REAL, &cur) == 0, "getitimer(ITIMER_REAL)");
	CHECK(cur.it_interval.tv_usec == 250000, "ITIMER_REAL interval %ld.%06ld",
	      (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec);
	ckpt_pass();
}
