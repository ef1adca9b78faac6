/* ckpt-test: */
/*
 * A task in an IPC namespace of its own that holds no IPC objects, with
 * settings of its own (kernel.shmmax, msgmax, sem, shm_next_id,
 * fs.mqueue.msg_max), and a child that inherited the namespace. The
 * restore puts both into a new IPC namespace with those settings. After
 * it each checks the settings, both share one namespace that is not the
 * restorer's, and the restorer's namespace still has the settings it had
 * (read in a throwaway child that enters it).
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const struct {
	const char *path, *value;
} settings[] = {
	{"/proc/sys/kernel/shmmax", "123456789"},
	{"/proc/sys/kernel/msgmax", "4321"},
	{"/proc/sys/kernel/sem", "100\t20000\t30\t40"},
	{"/proc/sys/kernel/shm_next_id", "777"},
	{"/proc/sys/fs/mqueue/msg_max", "42"},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void read_setting(const char *path, char *out, size_t cap)
{
	ssize_t n = ckpt_read_file(path, out, cap);
	CHECK_SYS(n > 0, "read %s", path);
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = 0;
}

static void check_settings(const char *who)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		char v[128] = {0};
		read_setting(settings[i].path, v, sizeof(v));
		CHECK(strcmp(v, settings[i].value) == 0, "%s: %s is %s, want %s", who, settings[i].path, v, settings[i].value);
	}
}

static ino_t ns_ino(const char *path)
{
	struct stat st;
	CHECK_SYS(stat(path, &st) == 0, "stat %s", path);
	return st.st_ino;
}

int main(void)
{
	char host[NSETTINGS][128];
	char path[64];

	ckpt_block_term();
	for (size_t i = 0; i < NSETTINGS; i++) {
		memset(host[i], 0, sizeof(host[i]));
		read_setting(settings[i].path, host[i], sizeof(host[i]));
	}
	ino_t host_ns = ns_ino("/proc/self/ns/ipc");
	CHECK_SYS(unshare(CLONE_NEWIPC) == 0, "unshare(CLONE_NEWIPC)");
	for (size_t i = 0; i < NSETTINGS; i++) {
		int fd = open(settings[i].path, O_WRONLY);
		CHECK_SYS(fd >= 0, "open %s", settings[i].path);
		CHECK_SYS(write(fd, settings[i].value, strlen(settings[i].value)) == (ssize_t)strlen(settings[i].value), "write %s", settings[i].path);
		close(fd);
	}
	check_settings("before the dump");

	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		ckpt_wait_term();
		check_settings("child");
		_exit(0);
	}

	ckpt_ready();
	ckpt_wait_term();

	check_settings("parent");
	ino_t mine = ns_ino("/proc/self/ns/ipc");
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", c);
	CHECK(ns_ino(path) == mine, "the child is in another IPC namespace than its parent");
	CHECK(mine != host_ns, "back in the host's IPC namespace");
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", getppid());
	CHECK(ns_ino(path) == host_ns, "the restorer is not in the IPC namespace the test started in");

	pid_t h = fork();
	CHECK_SYS(h >= 0, "fork");
	if (h == 0) {
		int fd = open(path, O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWIPC) != 0)
			_exit(2);
		for (size_t i = 0; i < NSETTINGS; i++) {
			char v[128] = {0};
			ssize_t n = ckpt_read_file(settings[i].path, v, sizeof(v));
			while (n > 0 && v[n - 1] == '\n')
				v[--n] = 0;
			if (n <= 0 || strcmp(v, host[i]) != 0)
				_exit(10 + (int)i);
		}
		_exit(0);
	}
	int st;
	CHECK_SYS(waitpid(h, &st, 0) == h, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the host's IPC settings changed (status %#x)", st);

	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid child");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	ckpt_pass();
}
