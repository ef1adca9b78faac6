/* ckpt-test: */
/*
 * A process in ckpt's PID namespace that made a PID namespace for its
 * children (unshare(CLONE_NEWPID), then fork, as `unshare --pid --fork`
 * does): its child is PID 1 there, and the child's child PID 2. The
 * restore makes the namespace again (clone3 CLONE_NEWPID with set_tid)
 * with the same PIDs inside it and outside it. After the restore:
 *  - the child's getpid() is 1 and the grandchild's 2 (ppid 1);
 *  - each one's NSpid line (/proc/self/status, read through the host's
 *    /proc) is the same as before the dump: the outer PIDs came back;
 *  - the process's pid_for_children is still its child's namespace;
 *  - the child (init of its namespace) still reaps its child.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

/*
 * nspid reads the task's NSpid line. OUTER_LEVELS is the number of PID
 * namespaces above the tree's own that /proc shows and a restore does
 * not keep (pidns_nested_init: the host's, above the namespace the
 * harness makes); they are left out.
 */
#ifndef OUTER_LEVELS
#define OUTER_LEVELS 0
#endif
static void nspid(char *out, size_t cap)
{
	char line[256];
	CHECK(ckpt_status_field("NSpid", line, sizeof(line)) == 0, "no NSpid in /proc/self/status");
	char *p = line;
	for (int i = 0; i < OUTER_LEVELS && p; i++) {
		p = strpbrk(p, " \t");
		if (p)
			p += strspn(p, " \t");
	}
	CHECK(p != NULL, "NSpid %s has too few levels", line);
	snprintf(out, cap, "%s", p);
}

static ino_t ns_ino(const char *path)
{
	struct stat st;
	CHECK_SYS(stat(path, &st) == 0, "stat %s", path);
	return st.st_ino;
}

static void grandchild(void)
{
	char before[64], after[64];
	nspid(before, sizeof(before));
	ckpt_wait_term();
	CHECK(getpid() == 2, "grandchild: pid %d in its namespace, want 2", getpid());
	CHECK(getppid() == 1, "grandchild: ppid %d, want 1", getppid());
	nspid(after, sizeof(after));
	CHECK(strcmp(before, after) == 0, "grandchild: NSpid %s, was %s", after, before);
	_exit(0);
}

static void child(void)
{
	char before[64], after[64];
	CHECK(getpid() == 1, "child: pid %d in its namespace, want 1", getpid());
	nspid(before, sizeof(before));
	pid_t g = fork();
	CHECK_SYS(g >= 0, "fork");
	if (g == 0)
		grandchild();
	CHECK(g == 2, "grandchild got pid %d, want 2", g);
	ckpt_wait_term();
	CHECK(getpid() == 1, "child: pid %d in its namespace, want 1", getpid());
	nspid(after, sizeof(after));
	CHECK(strcmp(before, after) == 0, "child: NSpid %s, was %s", after, before);
	CHECK_SYS(kill(g, SIGTERM) == 0, "kill grandchild");
	int st;
	CHECK_SYS(waitpid(g, &st, 0) == g, "waitpid grandchild");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "grandchild failed (status %#x)", st);
	_exit(0);
}

int main(void)
{
	char path[64];

	ckpt_block_term();
	pid_t self = getpid();
	CHECK_SYS(unshare(CLONE_NEWPID) == 0, "unshare(CLONE_NEWPID)");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0)
		child();

	/*
	 * The child's PID as /proc names it: /proc may be a proc of an
	 * outer PID namespace than ours (the harness gives a tree its own
	 * PID namespace without a proc of it), so not c.
	 */
	char kids[4096] = {0};
	CHECK_SYS(ckpt_read_file("/proc/thread-self/children", kids, sizeof(kids)) > 0, "read our children");
	int cp = atoi(kids);
	CHECK(cp > 0, "children %s", kids);
	/* Wait until the grandchild exists, so that the dump sees it. */
	for (int i = 0; i < 500; i++) {
		memset(kids, 0, sizeof(kids));
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", cp, cp);
		if (ckpt_read_file(path, kids, sizeof(kids)) > 0 && kids[0])
			break;
		ckpt_sleep_ms(2);
	}
	ckpt_ready();
	ckpt_wait_term();

	CHECK(getpid() == self, "pid %d, want %d", getpid(), self);
	memset(kids, 0, sizeof(kids));
	CHECK_SYS(ckpt_read_file("/proc/thread-self/children", kids, sizeof(kids)) > 0, "read our children");
	cp = atoi(kids);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", cp);
	CHECK(ns_ino(path) != ns_ino("/proc/self/ns/pid"), "the child is in its parent's PID namespace");
	CHECK(ns_ino(path) == ns_ino("/proc/self/ns/pid_for_children"), "pid_for_children is not the child's namespace");
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid child");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	ckpt_pass();
}
