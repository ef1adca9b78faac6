/* ckpt-test: */
/*
 * restart_sigsuspend: checkpointed while blocked in sigsuspend() (the
 * ERESTARTNOHAND case, with a temporary signal mask). SIGTERM and SIGUSR1
 * are blocked, sigsuspend() waits with only SIGUSR1 blocked. When SIGTERM
 * arrives the handler runs (with SIGTERM and SIGUSR1 blocked inside), and
 * sigsuspend() returns -1/EINTR with the original mask {SIGTERM, SIGUSR1}
 * back in place (the saved mask survived the checkpoint).
 */
#include "ckpt_test.h"

static volatile sig_atomic_t got_term;
static volatile sig_atomic_t handler_mask_ok = -1;
static volatile sig_atomic_t handler_other;

static void on_term(int sig, siginfo_t *si, void *uc)
{
	sigset_t cur;

	(void)uc;
	if (sig != SIGTERM || si->si_signo != SIGTERM) {
		handler_other++;
		return;
	}
	got_term++;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	/* Inside: SIGUSR1 (suspend mask) + SIGTERM (the delivered signal). */
	handler_mask_ok = sigismember(&cur, SIGTERM) == 1 && sigismember(&cur, SIGUSR1) == 1;
}

int main(void)
{
	sigset_t block, waitmask, before, after;
	struct sigaction sa;
	char blk0[64], blk1[64];
	int r, e;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_term;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGTERM, &sa, NULL) == 0, "sigaction");

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	CHECK_SYS(sigprocmask(SIG_SETMASK, &block, NULL) == 0, "sigprocmask");
	CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &before) == 0, "sigprocmask get");
	CHECK(ckpt_status_field("SigBlk", blk0, sizeof(blk0)) == 0, "SigBlk");

	waitmask = block;
	sigdelset(&waitmask, SIGTERM);

	ckpt_ready();
	r = sigsuspend(&waitmask);
	e = errno;

	CHECK(r == -1 && e == EINTR, "sigsuspend returned %d errno %d (%s)", r, e, strerror(e));
	CHECK(got_term == 1, "SIGTERM handler ran %d times", (int)got_term);
	CHECK(handler_other == 0, "handler got an unexpected signal");
	CHECK(handler_mask_ok == 1, "mask inside the handler was wrong");
	CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &after) == 0, "sigprocmask get");
	{
		int d = ckpt_sigset_diff(&before, &after);
		CHECK(d == 0, "blocked mask after sigsuspend differs at signal %d", d);
	}
	CHECK(sigismember(&after, SIGTERM) == 1 && sigismember(&after, SIGUSR1) == 1,
	      "blocked mask lost SIGTERM/SIGUSR1");
	CHECK(ckpt_status_field("SigBlk", blk1, sizeof(blk1)) == 0, "SigBlk");
	CHECK(strcmp(blk0, blk1) == 0, "SigBlk %s -> %s", blk0, blk1);
	{
		sigset_t pend;

		CHECK_SYS(sigpending(&pend) == 0, "sigpending");
		for (int s = 1; s <= 64; s++)
			CHECK(sigismember(&pend, s) != 1, "signal %d pending after sigsuspend", s);
	}
	ckpt_pass();
}
