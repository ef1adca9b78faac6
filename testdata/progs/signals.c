/* ckpt-test: */
/*
 * signals: signal dispositions, masks, pending signals and the altstack.
 *  - sigaction for every signal 1..64 (except SIGKILL, SIGSTOP, glibc's 32
 *    and 33, and SIGTERM which the protocol uses) with varied handlers,
 *    sa_flags (SA_SIGINFO, SA_RESTART, SA_ONSTACK, SA_NODEFER, SA_RESETHAND,
 *    SA_NOCLDSTOP|SA_NOCLDWAIT) and sa_mask, some SIG_IGN; the kernel's view
 *    (raw rt_sigaction, incl. SA_RESTORER/sa_restorer) must be identical;
 *  - a blocked mask;
 *  - pending signals, process-wide (kill, sigqueue x2 of one RT signal) and
 *    thread-private (tgkill, rt_tgsigqueueinfo x2) with si_value payloads:
 *    after restore they must dequeue in exactly the kernel's order (private
 *    queue first, lowest number first, RT instances FIFO) with the same
 *    si_code/si_pid/si_uid/si_value;
 *  - a 64 KiB sigaltstack: unblocking SIGUSR1 (SA_SIGINFO|SA_ONSTACK) runs
 *    its handler on the alternate stack with the right siginfo and mask.
 */
#include "ckpt_test.h"

#include <sys/syscall.h>

/* The kernel's struct sigaction (same field order for x86-64 and ia32). */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long long mask;
};

static struct ksigaction kact0[65];
static struct sigaction act0[65];
static int configured[65];
static volatile sig_atomic_t generic_count[65];

static void generic_handler(int sig)
{
	if (sig > 0 && sig <= 64)
		generic_count[sig]++;
}

static void generic_siginfo(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (sig > 0 && sig <= 64)
		generic_count[sig]++;
}

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	ckpt_fail("fatal signal %d (si_code %d, addr %p)", sig, si->si_code, si->si_addr);
}

/* SIGUSR1: SA_SIGINFO | SA_ONSTACK. */
static struct {
	volatile int count;
	int signo, code, errno_;
	pid_t pid;
	uid_t uid;
	uintptr_t local_addr;
	int ss_flags;
	sigset_t mask;
} usr1;

static void usr1_handler(int sig, siginfo_t *si, void *uc)
{
	volatile int local = 0;
	stack_t cur;

	(void)uc;
	usr1.count++;
	usr1.signo = sig == si->si_signo ? sig : -1;
	usr1.code = si->si_code;
	usr1.pid = si->si_pid;
	usr1.uid = si->si_uid;
	usr1.local_addr = (uintptr_t)&local;
	usr1.ss_flags = sigaltstack(NULL, &cur) == 0 ? cur.ss_flags : -1;
	sigprocmask(SIG_BLOCK, NULL, &usr1.mask);
}

static int skip_sig(int s)
{
	return s == SIGKILL || s == SIGSTOP || s == 32 || s == 33 || s == SIGTERM;
}

static void kget(int s, struct ksigaction *k)
{
	memset(k, 0, sizeof(*k));
	if (syscall(SYS_rt_sigaction, s, NULL, k, 8) != 0)
		ckpt_fail("rt_sigaction(%d, NULL, &old): %s", s, strerror(errno));
}

static int tgsigqueue(int sig, int code, int value)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	si.si_signo = sig;
	si.si_code = code;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_int = value;
	return (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), sig, &si);
}

/*
 * Raw rt_sigtimedwait: glibc's sigtimedwait() rewrites SI_TKILL to SI_USER,
 * but we want to see exactly what the kernel has queued.
 */
static int ksigtimedwait(const sigset_t *set, siginfo_t *si, const struct timespec *ts)
{
	return (int)syscall(SYS_rt_sigtimedwait, set, si, ts, 8);
}

struct expect_sig {
	int signo, code, value; /* value < 0: do not check */
};

int main(void)
{
	static const int combos[] = {
		SA_SIGINFO,
		SA_RESTART,
		SA_ONSTACK | SA_RESTART,
		SA_NODEFER,
		SA_RESETHAND,
		SA_SIGINFO | SA_NODEFER | SA_RESTART,
		SA_SIGINFO | SA_ONSTACK | SA_RESETHAND,
		0,
	};
	const int rtmin = SIGRTMIN;
	const int rt2 = rtmin + 2, rt5 = rtmin + 5, rt7 = rtmin + 7;
	sigset_t blocked, blocked0, pend0, tmpset;
	stack_t ss, ss0;
	char sigblk0[32], sigign0[32], sigcgt0[32], sigpnd0[32], shdpnd0[32], tmp[32];
	pid_t pid = getpid();
	uid_t uid = getuid();
	int ci = 0;

	/* ---- dispositions ---- */
	for (int s = 1; s <= 64; s++) {
		struct sigaction sa;

		if (skip_sig(s))
			continue;
		memset(&sa, 0, sizeof(sa));
		sigemptyset(&sa.sa_mask);
		for (int t = 1; t <= 64; t++)
			if (!skip_sig(t) && (s * 7 + t * 13) % 5 == 0)
				sigaddset(&sa.sa_mask, t);

		if (s == SIGPIPE || s == SIGWINCH || s == rtmin + 10 || s == SIGRTMAX - 1) {
			sa.sa_handler = SIG_IGN;
		} else if (s == SIGUSR1) {
			sa.sa_sigaction = usr1_handler;
			sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
			sigemptyset(&sa.sa_mask);
			sigaddset(&sa.sa_mask, SIGUSR2);
			sigaddset(&sa.sa_mask, SIGINT);
			sigaddset(&sa.sa_mask, rtmin + 3);
		} else if (s == SIGSEGV || s == SIGBUS || s == SIGILL || s == SIGFPE) {
			sa.sa_sigaction = crash_handler;
			sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESETHAND | SA_ONSTACK;
			sigfillset(&sa.sa_mask);
		} else if (s == SIGCHLD) {
			sa.sa_handler = generic_handler;
			sa.sa_flags = SA_NOCLDSTOP | SA_NOCLDWAIT | SA_RESTART;
		} else {
			sa.sa_flags = combos[ci++ % (int)(sizeof(combos) / sizeof(combos[0]))];
			if (sa.sa_flags & SA_SIGINFO)
				sa.sa_sigaction = generic_siginfo;
			else
				sa.sa_handler = generic_handler;
		}
		CHECK_SYS(sigaction(s, &sa, NULL) == 0, "sigaction(%d)", s);
		configured[s] = 1;
	}
	for (int s = 1; s <= 64; s++) {
		kget(s, &kact0[s]);
		if (configured[s])
			CHECK_SYS(sigaction(s, NULL, &act0[s]) == 0, "sigaction(%d, NULL)", s);
	}

	/* ---- altstack ---- */
	memset(&ss, 0, sizeof(ss));
	ss.ss_size = 64 * 1024;
	ss.ss_sp = malloc(ss.ss_size);
	CHECK(ss.ss_sp != NULL, "malloc altstack");
	CHECK_SYS(sigaltstack(&ss, NULL) == 0, "sigaltstack");
	CHECK_SYS(sigaltstack(NULL, &ss0) == 0, "sigaltstack get");

	/* ---- blocked mask (includes SIGTERM for the protocol) ---- */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGHUP);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGQUIT);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGUSR2);
	sigaddset(&blocked, SIGALRM);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, rt2);
	sigaddset(&blocked, rt5);
	sigaddset(&blocked, rt7);
	sigaddset(&blocked, SIGRTMAX);
	CHECK_SYS(sigprocmask(SIG_SETMASK, &blocked, NULL) == 0, "sigprocmask");
	CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &blocked0) == 0, "sigprocmask get");

	/* ---- pending signals ---- */
	CHECK_SYS(kill(pid, SIGUSR1) == 0, "kill SIGUSR1");            /* shared */
	CHECK_SYS(kill(pid, SIGHUP) == 0, "kill SIGHUP");              /* shared */
	CHECK_SYS(kill(pid, SIGHUP) == 0, "kill SIGHUP (2)");          /* merged */
	CHECK_SYS(syscall(SYS_tgkill, pid, gettid(), SIGUSR2) == 0, "tgkill SIGUSR2"); /* private */
	{
		union sigval v;

		v.sival_int = 111;
		CHECK_SYS(sigqueue(pid, rt2, v) == 0, "sigqueue 111");    /* shared */
		v.sival_int = 222;
		CHECK_SYS(sigqueue(pid, rt2, v) == 0, "sigqueue 222");    /* shared */
	}
	CHECK_SYS(tgsigqueue(rt5, SI_QUEUE, 555) == 0, "rt_tgsigqueueinfo 555"); /* private */
	CHECK_SYS(tgsigqueue(rt2, SI_QUEUE, 333) == 0, "rt_tgsigqueueinfo 333"); /* private */
	CHECK_SYS(sigpending(&pend0) == 0, "sigpending");

	CHECK(ckpt_status_field("SigBlk", sigblk0, sizeof(sigblk0)) == 0, "SigBlk");
	CHECK(ckpt_status_field("SigIgn", sigign0, sizeof(sigign0)) == 0, "SigIgn");
	CHECK(ckpt_status_field("SigCgt", sigcgt0, sizeof(sigcgt0)) == 0, "SigCgt");
	CHECK(ckpt_status_field("SigPnd", sigpnd0, sizeof(sigpnd0)) == 0, "SigPnd");
	CHECK(ckpt_status_field("ShdPnd", shdpnd0, sizeof(shdpnd0)) == 0, "ShdPnd");
	ckpt_log("SigBlk %s SigPnd %s ShdPnd %s", sigblk0, sigpnd0, shdpnd0);

	ckpt_ready();
	ckpt_wait_term();

	/* ---- dispositions ---- */
	for (int s = 1; s <= 64; s++) {
		struct ksigaction k;

		kget(s, &k);
		CHECK(k.handler == kact0[s].handler, "signal %d: handler %p -> %p", s,
		      kact0[s].handler, k.handler);
		CHECK(k.flags == kact0[s].flags, "signal %d: sa_flags %#lx -> %#lx", s,
		      kact0[s].flags, k.flags);
		CHECK(k.restorer == kact0[s].restorer, "signal %d: sa_restorer %p -> %p", s,
		      kact0[s].restorer, k.restorer);
		CHECK(k.mask == kact0[s].mask, "signal %d: sa_mask %#llx -> %#llx", s,
		      kact0[s].mask, k.mask);
		if (configured[s]) {
			struct sigaction a;

			CHECK_SYS(sigaction(s, NULL, &a) == 0, "sigaction(%d, NULL)", s);
			CHECK(a.sa_handler == act0[s].sa_handler && a.sa_flags == act0[s].sa_flags,
			      "signal %d: sigaction() result changed", s);
			CHECK(ckpt_sigset_diff(&a.sa_mask, &act0[s].sa_mask) == 0,
			      "signal %d: sigaction() sa_mask changed", s);
		}
	}

	/* ---- masks and pending sets ---- */
	{
		sigset_t cur;
		int d;

		CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &cur) == 0, "sigprocmask get");
		d = ckpt_sigset_diff(&cur, &blocked0);
		CHECK(d == 0, "blocked mask differs at signal %d", d);
		CHECK_SYS(sigpending(&cur) == 0, "sigpending");
		d = ckpt_sigset_diff(&cur, &pend0);
		CHECK(d == 0, "pending set differs at signal %d", d);
	}
	CHECK(ckpt_status_field("SigBlk", tmp, sizeof(tmp)) == 0 && strcmp(tmp, sigblk0) == 0,
	      "SigBlk %s -> %s", sigblk0, tmp);
	CHECK(ckpt_status_field("SigIgn", tmp, sizeof(tmp)) == 0 && strcmp(tmp, sigign0) == 0,
	      "SigIgn %s -> %s", sigign0, tmp);
	CHECK(ckpt_status_field("SigCgt", tmp, sizeof(tmp)) == 0 && strcmp(tmp, sigcgt0) == 0,
	      "SigCgt %s -> %s", sigcgt0, tmp);
	CHECK(ckpt_status_field("SigPnd", tmp, sizeof(tmp)) == 0 && strcmp(tmp, sigpnd0) == 0,
	      "SigPnd (thread-private pending) %s -> %s", sigpnd0, tmp);
	CHECK(ckpt_status_field("ShdPnd", tmp, sizeof(tmp)) == 0 && strcmp(tmp, shdpnd0) == 0,
	      "ShdPnd (process-wide pending) %s -> %s", shdpnd0, tmp);

	/* ---- altstack ---- */
	{
		stack_t cur;

		CHECK_SYS(sigaltstack(NULL, &cur) == 0, "sigaltstack get");
		CHECK(cur.ss_sp == ss0.ss_sp && cur.ss_size == ss0.ss_size &&
		      cur.ss_flags == ss0.ss_flags,
		      "sigaltstack %p/%zu/%d -> %p/%zu/%d", ss0.ss_sp, ss0.ss_size, ss0.ss_flags,
		      cur.ss_sp, cur.ss_size, cur.ss_flags);
	}

	/* ---- dequeue everything except SIGUSR1, in kernel order ---- */
	{
		const struct expect_sig want[] = {
			/* thread-private queue first, lowest signal first */
			{ SIGUSR2, SI_TKILL, -1 },
			{ rt2, SI_QUEUE, 333 },
			{ rt5, SI_QUEUE, 555 },
			/* then the process-wide queue */
			{ SIGHUP, SI_USER, -1 },
			{ rt2, SI_QUEUE, 111 },
			{ rt2, SI_QUEUE, 222 },
		};
		struct timespec zero = { 0, 0 };
		sigset_t set;

		sigfillset(&set);
		sigdelset(&set, SIGUSR1);
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			siginfo_t si;
			int s;

			memset(&si, 0, sizeof(si));
			s = ksigtimedwait(&set, &si, &zero);
			CHECK(s == want[i].signo, "dequeue #%zu: got signal %d (%s), want %d", i, s,
			      s < 0 ? strerror(errno) : "ok", want[i].signo);
			CHECK(si.si_signo == s, "dequeue #%zu: si_signo %d", i, si.si_signo);
			CHECK(si.si_code == want[i].code, "dequeue #%zu (sig %d): si_code %d, want %d",
			      i, s, si.si_code, want[i].code);
			CHECK(si.si_pid == pid, "dequeue #%zu (sig %d): si_pid %d, want %d", i, s,
			      (int)si.si_pid, (int)pid);
			CHECK(si.si_uid == uid, "dequeue #%zu (sig %d): si_uid %d", i, s,
			      (int)si.si_uid);
			if (want[i].value >= 0)
				CHECK(si.si_value.sival_int == want[i].value,
				      "dequeue #%zu (sig %d): si_value %d, want %d", i, s,
				      si.si_value.sival_int, want[i].value);
		}
		{
			siginfo_t si;
			int s = ksigtimedwait(&set, &si, &zero);

			CHECK(s < 0 && errno == EAGAIN, "extra pending signal %d", s);
		}
	}

	/* ---- deliver SIGUSR1 on the alternate stack ---- */
	for (int s = 1; s <= 64; s++)
		CHECK(generic_count[s] == 0, "handler for signal %d ran unexpectedly", s);
	sigemptyset(&tmpset);
	sigaddset(&tmpset, SIGUSR1);
	CHECK_SYS(sigprocmask(SIG_UNBLOCK, &tmpset, NULL) == 0, "unblock SIGUSR1");
	CHECK(usr1.count == 1, "SIGUSR1 handler ran %d times", usr1.count);
	CHECK(usr1.signo == SIGUSR1, "SIGUSR1 handler: bad signo");
	CHECK(usr1.code == SI_USER, "SIGUSR1 si_code %d, want SI_USER", usr1.code);
	CHECK(usr1.pid == pid && usr1.uid == uid, "SIGUSR1 si_pid %d si_uid %d", (int)usr1.pid,
	      (int)usr1.uid);
	CHECK(usr1.local_addr >= (uintptr_t)ss0.ss_sp &&
	      usr1.local_addr < (uintptr_t)ss0.ss_sp + ss0.ss_size,
	      "SIGUSR1 handler ran at %#lx, outside the altstack %p+%zu",
	      (unsigned long)usr1.local_addr, ss0.ss_sp, ss0.ss_size);
	CHECK(usr1.ss_flags == SS_ONSTACK, "in handler ss_flags = %d", usr1.ss_flags);
	{
		sigset_t want = blocked0;
		int d;

		sigaddset(&want, SIGUSR1);
		sigaddset(&want, SIGUSR2);
		sigaddset(&want, SIGINT);
		sigaddset(&want, rtmin + 3);
		d = ckpt_sigset_diff(&usr1.mask, &want);
		CHECK(d == 0, "mask inside the SIGUSR1 handler differs at signal %d", d);
	}
	{
		sigset_t cur, want = blocked0;
		stack_t st;
		int d;

		sigdelset(&want, SIGUSR1);
		CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &cur) == 0, "sigprocmask get");
		d = ckpt_sigset_diff(&cur, &want);
		CHECK(d == 0, "mask after the handler differs at signal %d", d);
		CHECK_SYS(sigaltstack(NULL, &st) == 0 && st.ss_flags == 0, "altstack after handler");
		CHECK_SYS(sigpending(&cur) == 0, "sigpending");
		for (int s = 1; s <= 64; s++)
			CHECK(sigismember(&cur, s) != 1, "signal %d still pending", s);
	}

	/* A fresh signal is delivered normally too (SIGUSR1 again, by raise). */
	CHECK_SYS(raise(SIGUSR1) == 0, "raise");
	CHECK(usr1.count == 2 && usr1.code == SI_TKILL, "raise(SIGUSR1): count %d code %d",
	      usr1.count, usr1.code);

	ckpt_pass();
}
