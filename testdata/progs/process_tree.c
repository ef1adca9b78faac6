/* ckpt-test: */
/*
 * A process tree: the root forks child A (its own process group) and
 * child B (its own session); A forks grandchild G (A's group). Every process keeps a
 * memory pattern of its own, and all share the log fd inherited from the
 * root (one open file description). After the restore each process checks
 * its pid, parent, process group, session and memory; the root forwards
 * SIGTERM to its children, reaps them and passes only if each exited 0.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define REGION (64 * 1024)

struct ident {
	pid_t pid, ppid, pgid, sid;
};

static struct ident me;
static pid_t root_pid;
static unsigned char *region;

static void remember(uint32_t seed)
{
	me.pid = getpid();
	me.ppid = getppid();
	me.pgid = getpgrp();
	me.sid = getsid(0);
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(region != MAP_FAILED, "mmap");
	ckpt_fill(region, REGION, seed, 0);
}

/* verify returns 0 or exits with FAIL. */
static void verify(const char *who, uint32_t seed)
{
	CHECK(getpid() == me.pid, "%s: pid %d -> %d", who, me.pid, getpid());
	/* The root's parent is whoever restored it; the others' must stay. */
	if (me.pid != root_pid)
		CHECK(getppid() == me.ppid, "%s: ppid %d -> %d", who, me.ppid, getppid());
	CHECK(getpgrp() == me.pgid, "%s: pgid %d -> %d", who, me.pgid, getpgrp());
	CHECK(getsid(0) == me.sid, "%s: sid %d -> %d", who, me.sid, getsid(0));
	size_t bad = ckpt_verify(region, REGION, seed, 0);
	CHECK(bad == (size_t)-1 || bad >= REGION, "%s: memory differs at %zu", who, bad);
}

/* A child: wait for SIGTERM from its parent, verify, exit 0 or 1. */
static void child_wait(const char *who, uint32_t seed, pid_t grandchild)
{
	ckpt_wait_term();
	verify(who, seed);
	if (grandchild > 0) {
		int st;
		CHECK_SYS(kill(grandchild, SIGTERM) == 0, "%s: kill grandchild", who);
		CHECK_SYS(waitpid(grandchild, &st, 0) == grandchild, "%s: waitpid", who);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: grandchild status %#x", who, st);
	}
	_exit(0);
}

int main(void)
{
	ckpt_block_term();
	root_pid = getpid();
	remember(1);
	int sync[2];
	CHECK_SYS(pipe(sync) == 0, "pipe");
	pid_t a = fork();
	CHECK_SYS(a >= 0, "fork A");
	if (a == 0) {
		close(sync[0]);
		CHECK_SYS(setpgid(0, 0) == 0, "setpgid");
		remember(2);
		pid_t g = fork();
		CHECK_SYS(g >= 0, "fork G");
		if (g == 0) {
			remember(3);
			CHECK_SYS(write(sync[1], "g", 1) == 1, "sync");
			close(sync[1]);
			child_wait("grandchild", 3, 0);
		}
		CHECK_SYS(write(sync[1], "a", 1) == 1, "sync");
		close(sync[1]);
		child_wait("child A", 2, g);
	}
	pid_t b = fork();
	CHECK_SYS(b >= 0, "fork B");
	if (b == 0) {
		close(sync[0]);
		CHECK_SYS(setsid() == getpid(), "setsid");
		remember(4);
		CHECK_SYS(write(sync[1], "b", 1) == 1, "sync");
		close(sync[1]);
		child_wait("child B", 4, 0);
	}
	close(sync[1]);
	/* The pipe is closed everywhere before READY: ckpt does not dump pipes. */
	char buf[3];
	for (int got = 0; got < 3;) {
		ssize_t n = read(sync[0], buf, sizeof buf);
		CHECK_SYS(n > 0, "sync read");
		got += n;
	}
	close(sync[0]);
	ckpt_ready();
	ckpt_wait_term();
	verify("root", 1);
	pid_t kids[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		int st;
		CHECK_SYS(kill(kids[i], SIGTERM) == 0, "kill child %d", kids[i]);
		CHECK_SYS(waitpid(kids[i], &st, 0) == kids[i], "waitpid %d", kids[i]);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d status %#x", kids[i], st);
	}
	ckpt_pass();
}
