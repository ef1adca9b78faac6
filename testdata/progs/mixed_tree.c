/* ckpt-test: needs=ia32 */
/*
 * mixed_tree: a tree of both ABIs. The program forks a child that execs
 * the other build of this program (NAME.64 <-> NAME.32, next to
 * /proc/self/exe), so a 64-bit parent has a 32-bit child and the other way
 * round. Each process keeps a memory pattern and its ids; after the
 * restore each checks its pid, parent, group, session, memory, the CPU
 * mode it runs in (CS 0x33 or 0x23) and its /proc/self/exe; the parent
 * also checks the child's exe, forwards SIGTERM, reaps it and passes only
 * if it exited 0.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/wait.h>

#define REGION (64 * 1024)

#ifdef __x86_64__
#define MY_SUFFIX ".64"
#define OTHER_SUFFIX ".32"
#define MY_CS 0x33
#else
#define MY_SUFFIX ".32"
#define OTHER_SUFFIX ".64"
#define MY_CS 0x23
#endif

static pid_t my_pid, my_ppid, my_pgid, my_sid;
static unsigned char *region;

static unsigned cs(void)
{
	unsigned short v;
	__asm__ volatile("mov %%cs, %0" : "=r"(v));
	return v;
}

static void remember(uint32_t seed)
{
	my_pid = getpid();
	my_ppid = getppid();
	my_pgid = getpgrp();
	my_sid = getsid(0);
	region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(region != MAP_FAILED, "mmap");
	ckpt_fill(region, REGION, seed, 0);
}

/* exe_of returns the target of /proc/PID/exe. */
static void exe_of(pid_t pid, char *out, size_t cap)
{
	char link[64];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, out, cap - 1);
	CHECK_SYS(n > 0, "readlink %s", link);
	out[n] = '\0';
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void verify(const char *who, uint32_t seed, int is_root)
{
	char exe[4096];

	CHECK(getpid() == my_pid, "%s: pid %d -> %d", who, my_pid, getpid());
	if (!is_root)
		CHECK(getppid() == my_ppid, "%s: ppid %d -> %d", who, my_ppid, getppid());
	CHECK(getpgrp() == my_pgid, "%s: pgid %d -> %d", who, my_pgid, getpgrp());
	CHECK(getsid(0) == my_sid, "%s: sid %d -> %d", who, my_sid, getsid(0));
	size_t bad = ckpt_verify(region, REGION, seed, 0);
	CHECK(bad == (size_t)-1 || bad >= REGION, "%s: memory differs at %zu", who, bad);
	CHECK(cs() == MY_CS, "%s: runs with CS %#x, want %#x", who, cs(), MY_CS);
	exe_of(getpid(), exe, sizeof exe);
	CHECK(ends_with(exe, MY_SUFFIX), "%s: /proc/self/exe is %s, want *%s", who, exe, MY_SUFFIX);
}

static void child_main(int sync_fd)
{
	remember(7);
	ckpt_log("child %d: %zu-bit, CS %#x", (int)getpid(), sizeof(void *) * 8, cs());
	CHECK_SYS(write(sync_fd, "c", 1) == 1, "child: sync");
	close(sync_fd);
	ckpt_wait_term();
	verify("child", 7, 0);
	_exit(0);
}

int main(int argc, char **argv)
{
	ckpt_block_term();
	if (argc == 3 && strcmp(argv[1], "child") == 0)
		child_main(atoi(argv[2]));

	char self[4096], other[4096];
	exe_of(getpid(), self, sizeof self);
	CHECK(ends_with(self, MY_SUFFIX), "exe %s does not end with %s", self, MY_SUFFIX);
	snprintf(other, sizeof other, "%.*s%s", (int)(strlen(self) - strlen(MY_SUFFIX)), self, OTHER_SUFFIX);
	remember(1);
	int sync[2];
	CHECK_SYS(pipe(sync) == 0, "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		char fd[16];
		close(sync[0]);
		snprintf(fd, sizeof fd, "%d", sync[1]);
		execl(other, other, "child", fd, (char *)NULL);
		ckpt_fail("exec %s: %s", other, strerror(errno));
	}
	close(sync[1]);
	char b;
	CHECK_SYS(read(sync[0], &b, 1) == 1, "sync read (did the child exec %s?)", other);
	close(sync[0]);
	ckpt_log("parent %d: %zu-bit, child %d runs %s", (int)getpid(), sizeof(void *) * 8, (int)c, other);
	ckpt_ready();
	ckpt_wait_term();
	verify("parent", 1, 1);
	char exe[4096];
	exe_of(c, exe, sizeof exe);
	CHECK(strcmp(exe, other) == 0, "child's exe is %s, want %s", exe, other);
	int st;
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
