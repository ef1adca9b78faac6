/* ckpt-test: */
/*
 * POSIX message queues (mq_open, in the host's IPC namespace) across a
 * dump and restore:
 *   - a named queue opened O_NONBLOCK (mode 0640), with messages of
 *     several priorities, two of the same, and a second open file on it
 *     (O_WRONLY);
 *   - an unlinked queue with two messages;
 *   - an empty named queue with an mq_notify registration (SIGEV_SIGNAL,
 *     SIGUSR1, a sigev_value).
 * After the restore mq_getattr gives the same attributes and flags, the
 * messages come out in the same order with the same priorities, the
 * unlinked queue has no name, the named one is found by name, and a
 * message on the empty queue fires the notification with its value.
 */
#include "ckpt_test.h"

#include <mqueue.h>
#include <sched.h>
#include <sys/stat.h>

static char name[64], gone[64], note[64];

struct want {
	const char *text;
	unsigned prio;
};

static void check_attr(mqd_t q, const char *what, long flags, long maxmsg, long msgsize, long cur)
{
	struct mq_attr a;

	CHECK_SYS(mq_getattr(q, &a) == 0, "mq_getattr %s", what);
	CHECK(a.mq_flags == flags && a.mq_maxmsg == maxmsg && a.mq_msgsize == msgsize && a.mq_curmsgs == cur,
	      "%s: mq_flags %#lx mq_maxmsg %ld mq_msgsize %ld mq_curmsgs %ld, want %#lx %ld %ld %ld", what,
	      (long)a.mq_flags, (long)a.mq_maxmsg, (long)a.mq_msgsize, (long)a.mq_curmsgs, flags, maxmsg, msgsize, cur);
}

static void check_msgs(mqd_t q, const char *what, const struct want *w, int n)
{
	char buf[256];
	unsigned prio;

	for (int i = 0; i < n; i++) {
		memset(buf, 0, sizeof(buf));
		ssize_t got = mq_receive(q, buf, sizeof(buf), &prio);
		CHECK_SYS(got >= 0, "mq_receive %s, message %d", what, i);
		CHECK((size_t)got == strlen(w[i].text) + 1 && strcmp(buf, w[i].text) == 0 && prio == w[i].prio,
		      "%s: message %d is \"%s\" (priority %u), want \"%s\" (priority %u)", what, i, buf, prio,
		      w[i].text, w[i].prio);
	}
}

int main(void)
{
	struct mq_attr a1 = {.mq_maxmsg = 8, .mq_msgsize = 128};
	struct mq_attr a2 = {.mq_maxmsg = 4, .mq_msgsize = 32};
	struct mq_attr a3 = {.mq_maxmsg = 2, .mq_msgsize = 16};
	static const struct want w1[] = {{"high", 7}, {"high-2", 7}, {"mid", 4}, {"low", 1}, {"zero", 0}};
	static const struct want w2[] = {{"first-out", 9}, {"last-out", 2}};
	sigset_t usr1;
	char buf[256];

	ckpt_block_term();
#ifdef MQ_OWN_NS
	CHECK_SYS(unshare(CLONE_NEWIPC) == 0, "unshare(CLONE_NEWIPC)");
#endif
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0, "block SIGUSR1");
	snprintf(name, sizeof(name), "/ckpt-mqueue-%d", getpid());
	snprintf(gone, sizeof(gone), "/ckpt-mqueue-gone-%d", getpid());
	snprintf(note, sizeof(note), "/ckpt-mqueue-note-%d", getpid());
	umask(022);

	mqd_t q1 = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0640, &a1);
	CHECK_SYS(q1 != (mqd_t)-1, "mq_open %s", name);
	mqd_t q1w = mq_open(name, O_WRONLY);
	CHECK_SYS(q1w != (mqd_t)-1, "mq_open %s O_WRONLY", name);
	mqd_t q2 = mq_open(gone, O_CREAT | O_EXCL | O_RDWR, 0600, &a2);
	CHECK_SYS(q2 != (mqd_t)-1, "mq_open %s", gone);
	CHECK_SYS(mq_unlink(gone) == 0, "mq_unlink %s", gone);
	mqd_t q3 = mq_open(note, O_CREAT | O_EXCL | O_RDWR, 0600, &a3);
	CHECK_SYS(q3 != (mqd_t)-1, "mq_open %s", note);

	CHECK_SYS(mq_send(q1w, "low", 4, 1) == 0 && mq_send(q1, "high", 5, 7) == 0 && mq_send(q1w, "zero", 5, 0) == 0 &&
			  mq_send(q1, "mid", 4, 4) == 0 && mq_send(q1w, "high-2", 7, 7) == 0,
		  "mq_send %s", name);
	CHECK_SYS(mq_send(q2, "last-out", 9, 2) == 0 && mq_send(q2, "first-out", 10, 9) == 0, "mq_send %s", gone);
	struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
	ev.sigev_value.sival_int = 0x1234abcd;
	CHECK_SYS(mq_notify(q3, &ev) == 0, "mq_notify %s", note);

	ckpt_ready();
	ckpt_wait_term();

	sigset_t pend;
	CHECK_SYS(sigpending(&pend) == 0, "sigpending");
	CHECK(!sigismember(&pend, SIGUSR1), "SIGUSR1 pending before any message was sent");

	check_attr(q1, name, O_NONBLOCK, 8, 128, 5);
	check_attr(q1w, "the second file", 0, 8, 128, 5);
	check_attr(q2, gone, 0, 4, 32, 2);
	check_attr(q3, note, 0, 2, 16, 0);
	struct stat st;
	CHECK_SYS(fstat(q1, &st) == 0, "fstat %s", name);
	CHECK((st.st_mode & 07777) == 0640, "%s has mode %#o, want 0640", name, st.st_mode & 07777);

	check_msgs(q1, name, w1, 5);
	errno = 0;
	CHECK(mq_receive(q1, buf, sizeof(buf), NULL) == -1 && errno == EAGAIN, "%s: empty O_NONBLOCK queue gave errno %d", name, errno);
	check_msgs(q2, gone, w2, 2);

	/* The named queue is found by its name, the unlinked one is not. */
	mqd_t again = mq_open(name, O_RDONLY);
	CHECK_SYS(again != (mqd_t)-1, "mq_open %s after the restore", name);
	CHECK_SYS(mq_send(q1w, "again", 6, 3) == 0, "mq_send through the second file");
	CHECK_SYS(mq_receive(again, buf, sizeof(buf), NULL) == 6 && strcmp(buf, "again") == 0, "the queue opened by name is another one");
	errno = 0;
	CHECK(mq_open(gone, O_RDONLY) == (mqd_t)-1 && errno == ENOENT, "%s has a name again (errno %d)", gone, errno);

	/* The notification fires with its value. */
	CHECK_SYS(mq_send(q3, "ping", 5, 0) == 0, "mq_send %s", note);
	siginfo_t si;
	struct timespec ts = {.tv_sec = 5};
	CHECK_SYS(sigtimedwait(&usr1, &si, &ts) == SIGUSR1, "no notification from %s", note);
	CHECK(si.si_code == SI_MESGQ && si.si_value.sival_int == 0x1234abcd, "notification with si_code %d si_value %#x",
	      si.si_code, si.si_value.sival_int);
	struct sigevent ev2 = {.sigev_notify = SIGEV_NONE};
	CHECK_SYS(mq_notify(q3, &ev2) == 0, "mq_notify again after it fired");

	mq_unlink(name);
	mq_unlink(note);
	ckpt_pass();
}
