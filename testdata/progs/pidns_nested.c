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
 *  - the child (init of its namespace) still reaps its child;
 *  - the grandchild's second thread has its thread id (3) there again.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
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

/* The grandchild's second thread: its ids before and after the restore. */
static volatile int thread_check;
static pid_t thread_before, thread_after;
static char thread_ns_before[64], thread_ns_after[64];

static void thread_nspid(char *out, size_t cap)
{
	char line[256];
	CHECK(ckpt_file_field("/proc/thread-self/status", "NSpid", line, sizeof(line)) == 0, "no NSpid in /proc/thread-self/status");
	char *p = line;
	for (int i = 0; i < OUTER_LEVELS && p; i++) {
		p = strpbrk(p, " \t");
		if (p)
			p += strspn(p, " \t");
	}
	CHECK(p != NULL, "NSpid %s has too few levels", line);
	snprintf(out, cap, "%s", p);
}

static void *thread_main(void *arg)
{
	(void)arg;
	thread_nspid(thread_ns_before, sizeof(thread_ns_before));
	__atomic_store_n(&thread_before, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&thread_check, __ATOMIC_SEQ_CST))
		ckpt_sleep_ms(5);
	thread_nspid(thread_ns_after, sizeof(thread_ns_after));
	thread_after = (pid_t)syscall(SYS_gettid);
	return NULL;
}

static void grandchild(int ready)
{
	char before[64], after[64];
	pthread_t th;
	nspid(before, sizeof(before));
	CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0, "pthread_create");
	while (!__atomic_load_n(&thread_before, __ATOMIC_SEQ_CST))
		ckpt_sleep_ms(1);
	CHECK_SYS(write(ready, "r", 1) == 1, "write ready");
	close(ready);
	ckpt_wait_term();
	__atomic_store_n(&thread_check, 1, __ATOMIC_SEQ_CST);
	CHECK(pthread_join(th, NULL) == 0, "pthread_join");
	CHECK(thread_after == thread_before, "grandchild's thread: tid %d in its namespace, was %d", thread_after, thread_before);
	CHECK(thread_before == 3, "grandchild's thread: tid %d, want 3", thread_before);
	CHECK(strcmp(thread_ns_before, thread_ns_after) == 0, "grandchild's thread: NSpid %s, was %s", thread_ns_after, thread_ns_before);
	CHECK(getpid() == 2, "grandchild: pid %d in its namespace, want 2", getpid());
	CHECK(getppid() == 1, "grandchild: ppid %d, want 1", getppid());
	nspid(after, sizeof(after));
	CHECK(strcmp(before, after) == 0, "grandchild: NSpid %s, was %s", after, before);
	_exit(0);
}

static void child(int ready)
{
	char before[64], after[64];
	CHECK(getpid() == 1, "child: pid %d in its namespace, want 1", getpid());
	nspid(before, sizeof(before));
	pid_t g = fork();
	CHECK_SYS(g >= 0, "fork");
	if (g == 0)
		grandchild(ready);
	close(ready);
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
	int ready[2];
	CHECK_SYS(pipe(ready) == 0, "pipe");
	CHECK_SYS(unshare(CLONE_NEWPID) == 0, "unshare(CLONE_NEWPID)");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		close(ready[0]);
		child(ready[1]);
	}
	close(ready[1]);
	/* The grandchild and its thread exist once it writes. */
	char r;
	CHECK_SYS(read(ready[0], &r, 1) == 1, "read ready");
	close(ready[0]);

	/*
	 * The child's PID as /proc names it: /proc may be a proc of an
	 * outer PID namespace than ours (the harness gives a tree its own
	 * PID namespace without a proc of it), so not c.
	 */
	char kids[4096] = {0};
	CHECK_SYS(ckpt_read_file("/proc/thread-self/children", kids, sizeof(kids)) > 0, "read our children");
	int cp = atoi(kids);
	CHECK(cp > 0, "children %s", kids);
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
