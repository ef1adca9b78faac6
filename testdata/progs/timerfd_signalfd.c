/* ckpt-test: */
/*
 * timerfds and a signalfd: a timer armed for an hour with an hour's
 * interval (time left must carry over), a one-shot timer that already
 * expired and was not read (one expiration must still be there), a
 * periodic timer (4 s) that expired and was not read (fdinfo shows no time
 * left, interval 4 s: it must come back armed, with its expiration), and a
 * signalfd for SIGUSR1 with a SIGUSR1 pending (readable after restore).
 */
#include "ckpt_test.h"

#include <sys/signalfd.h>
#include <sys/timerfd.h>

int main(void)
{
	ckpt_block_term();
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &m, NULL) == 0, "block SIGUSR1");
	int sfd = signalfd(-1, &m, SFD_NONBLOCK);
	int hour = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	int once = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	int every = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	CHECK_SYS(sfd >= 0 && hour >= 0 && once >= 0 && every >= 0, "create");
	struct itimerspec its = {{3600, 0}, {3600, 0}};
	CHECK_SYS(timerfd_settime(hour, 0, &its, NULL) == 0, "arm hour");
	struct itimerspec one = {{0, 0}, {0, 1000000}};
	CHECK_SYS(timerfd_settime(once, 0, &one, NULL) == 0, "arm once");
	struct itimerspec periodic = {{4, 0}, {0, 1000000}};
	CHECK_SYS(timerfd_settime(every, 0, &periodic, NULL) == 0, "arm periodic");
	usleep(20000);
	CHECK_SYS(kill(getpid(), SIGUSR1) == 0, "kill");
	int fl_s = fcntl(sfd, F_GETFL), fd_h = fcntl(hour, F_GETFD);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fcntl(sfd, F_GETFL) == fl_s, "signalfd flags %#x -> %#x", fl_s, fcntl(sfd, F_GETFL));
	CHECK(fcntl(hour, F_GETFD) == fd_h, "timerfd fd flags %#x -> %#x", fd_h, fcntl(hour, F_GETFD));
	struct itimerspec cur;
	CHECK_SYS(timerfd_gettime(hour, &cur) == 0, "gettime hour");
	CHECK(cur.it_interval.tv_sec == 3600 && cur.it_value.tv_sec >= 3500 && cur.it_value.tv_sec < 3600,
	      "hour timer: interval %lld, left %lld", (long long)cur.it_interval.tv_sec, (long long)cur.it_value.tv_sec);
	uint64_t n = 0;
	CHECK_SYS(read(once, &n, 8) == 8, "read once");
	CHECK(n == 1, "one-shot expirations %llu, want 1", (unsigned long long)n);
	CHECK_SYS(timerfd_gettime(once, &cur) == 0, "gettime once");
	CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "one-shot timer re-armed");
	/* The periodic timer is armed again: at most 4 s left, 4 s interval. */
	CHECK_SYS(read(every, &n, 8) == 8, "read periodic");
	CHECK(n >= 1, "periodic expirations %llu", (unsigned long long)n);
	CHECK_SYS(timerfd_gettime(every, &cur) == 0, "gettime periodic");
	CHECK(cur.it_interval.tv_sec == 4 && cur.it_interval.tv_nsec == 0, "periodic interval %lld.%09ld",
	      (long long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
	CHECK((cur.it_value.tv_sec != 0 || cur.it_value.tv_nsec != 0) && cur.it_value.tv_sec < 4,
	      "periodic timer: %lld.%09ld s left, want armed", (long long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
	struct signalfd_siginfo si;
	CHECK_SYS(read(sfd, &si, sizeof si) == (ssize_t)sizeof si, "read signalfd");
	CHECK(si.ssi_signo == SIGUSR1, "signalfd gave signal %u", si.ssi_signo);
	CHECK(read(sfd, &si, sizeof si) < 0 && errno == EAGAIN, "signalfd: more signals");
	ckpt_pass();
}
