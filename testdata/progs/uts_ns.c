/* ckpt-test: */
/*
 * A task in a UTS namespace of its own, with a host name and a domain
 * name of its own, and a child that inherited the namespace. The dump
 * records the names; the restore puts both tasks into a new UTS
 * namespace with them. After the restore each checks its names, both
 * must share one namespace that is not the restorer's, and the host's
 * name (read in a throwaway child that enters the restorer's namespace)
 * must be what it was before: the restore did not set it.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NAME "ckpt-uts-test"
#define DOMAIN "ckpt.example"

static void check_names(const char *who)
{
	char name[128] = {0}, dom[128] = {0};
	CHECK_SYS(gethostname(name, sizeof(name) - 1) == 0, "%s: gethostname", who);
	CHECK_SYS(getdomainname(dom, sizeof(dom) - 1) == 0, "%s: getdomainname", who);
	CHECK(strcmp(name, NAME) == 0, "%s: hostname %s, want %s", who, name, NAME);
	CHECK(strcmp(dom, DOMAIN) == 0, "%s: domainname %s, want %s", who, dom, DOMAIN);
}

static ino_t ns_ino(const char *path)
{
	struct stat st;
	CHECK_SYS(stat(path, &st) == 0, "stat %s", path);
	return st.st_ino;
}

int main(void)
{
	char host[128] = {0};
	char path[64];

	ckpt_block_term();
	CHECK_SYS(gethostname(host, sizeof(host) - 1) == 0, "gethostname");
	ino_t host_ns = ns_ino("/proc/self/ns/uts");
	CHECK_SYS(unshare(CLONE_NEWUTS) == 0, "unshare(CLONE_NEWUTS)");
	CHECK_SYS(sethostname(NAME, strlen(NAME)) == 0, "sethostname");
	CHECK_SYS(setdomainname(DOMAIN, strlen(DOMAIN)) == 0, "setdomainname");

	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		ckpt_wait_term();
		check_names("child");
		_exit(0);
	}

	ckpt_ready();
	ckpt_wait_term();

	check_names("parent");
	ino_t mine = ns_ino("/proc/self/ns/uts");
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", c);
	CHECK(ns_ino(path) == mine, "the child is in another UTS namespace than its parent");
	CHECK(mine != host_ns, "back in the host's UTS namespace");
	/* The restorer (our parent now) is in the host's namespace. */
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", getppid());
	CHECK(ns_ino(path) == host_ns, "the restorer is not in the UTS namespace the test started in");
	CHECK(ns_ino(path) != mine, "in the restorer's UTS namespace");

	pid_t h = fork();
	CHECK_SYS(h >= 0, "fork");
	if (h == 0) {
		char now[128] = {0};
		int fd = open(path, O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWUTS) != 0)
			_exit(2);
		if (gethostname(now, sizeof(now) - 1) != 0)
			_exit(3);
		_exit(strcmp(now, host) == 0 ? 0 : 4);
	}
	int st;
	CHECK_SYS(waitpid(h, &st, 0) == h, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the host's name is not %s any more (status %#x)", host, st);

	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid child");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	ckpt_pass();
}
