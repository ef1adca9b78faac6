/* ckpt-test: */
/*
 * fds on files of /proc, reopened in the restored task's terms:
 *  - /proc/self/status, read 10 bytes in: after the restore at offset 10,
 *    and it shows the process's own PID;
 *  - /proc/self/ns/uts of a UTS namespace of its own (unshare) and
 *    /proc/self/ns/net: after the restore each is the namespace the
 *    process is in (same inode as /proc/self/ns/uts, .../net);
 *  - /proc/sys/kernel/hostname, read 4 bytes in: the rest of the
 *    hostname set in that namespace;
 *  - /proc/CHILD/stat of a child in the tree, and /proc/CHILD as a
 *    directory fd: they show the child (its PID, its name).
 */
#include "ckpt_test.h"

#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define HOST "ckpt-procfds"

static void same_ns(int fd, const char *name)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	CHECK_SYS(fstat(fd, &a) == 0 && stat(path, &b) == 0, "stat %s", path);
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "%s fd: inode %llu, the process's is %llu", name,
	      (unsigned long long)a.st_ino, (unsigned long long)b.st_ino);
}

/* read_at reads what fd has from its offset on. */
static ssize_t read_rest(int fd, char *buf, size_t cap)
{
	ssize_t n = read(fd, buf, cap - 1);
	CHECK_SYS(n >= 0, "read");
	buf[n] = 0;
	return n;
}

int main(void)
{
	ckpt_block_term();
	CHECK_SYS(unshare(CLONE_NEWUTS) == 0, "unshare(CLONE_NEWUTS)");
	CHECK_SYS(sethostname(HOST, strlen(HOST)) == 0, "sethostname");

	pid_t child = fork();
	CHECK_SYS(child >= 0, "fork");
	if (child == 0) {
		prctl(PR_SET_NAME, "procfds-child");
		ckpt_wait_term();
		_exit(0);
	}
	/* The child has its name once /proc shows it. */
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)child);
	for (int i = 0; i < 1000; i++) {
		if (ckpt_read_file(path, buf, sizeof(buf)) > 0 && strncmp(buf, "procfds-child", 13) == 0)
			break;
		ckpt_sleep_ms(1);
	}

	int status = open("/proc/self/status", O_RDONLY);
	CHECK_SYS(status >= 0, "open status");
	CHECK_SYS(read(status, buf, 10) == 10, "read status");
	int uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	int net = open("/proc/self/ns/net", O_RDONLY);
	CHECK_SYS(uts >= 0 && net >= 0, "open ns files");
	int host = open("/proc/sys/kernel/hostname", O_RDONLY);
	CHECK_SYS(host >= 0, "open hostname");
	CHECK_SYS(read(host, buf, 4) == 4, "read hostname");
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)child);
	int cstat = open(path, O_RDONLY);
	CHECK_SYS(cstat >= 0, "open %s", path);
	snprintf(path, sizeof(path), "/proc/%d", (int)child);
	int cdir = open(path, O_RDONLY | O_DIRECTORY);
	CHECK_SYS(cdir >= 0, "open %s", path);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(lseek(status, 0, SEEK_CUR) == 10, "status offset %lld, want 10", (long long)lseek(status, 0, SEEK_CUR));
	CHECK_SYS(lseek(status, 0, SEEK_SET) == 0, "lseek status");
	read_rest(status, buf, sizeof(buf));
	char want[64];
	snprintf(want, sizeof(want), "\nPid:\t%d\n", (int)getpid());
	CHECK(strstr(buf, want) != NULL, "status does not show Pid %d", (int)getpid());

	same_ns(uts, "uts");
	same_ns(net, "net");
	CHECK(fcntl(uts, F_GETFD) == FD_CLOEXEC && fcntl(net, F_GETFD) == 0, "ns fd flags");

	CHECK(lseek(host, 0, SEEK_CUR) == 4, "hostname offset %lld, want 4", (long long)lseek(host, 0, SEEK_CUR));
	read_rest(host, buf, sizeof(buf));
	CHECK(strcmp(buf, HOST "\n" + 4) == 0, "hostname rest %s, want %s", buf, HOST "\n" + 4);

	read_rest(cstat, buf, sizeof(buf));
	snprintf(want, sizeof(want), "%d (procfds-child) S ", (int)child);
	CHECK(strncmp(buf, want, strlen(want)) == 0, "child stat: %.40s, want %s", buf, want);
	int comm = openat(cdir, "comm", O_RDONLY);
	CHECK_SYS(comm >= 0, "openat child comm");
	read_rest(comm, buf, sizeof(buf));
	CHECK(strcmp(buf, "procfds-child\n") == 0, "child comm: %s", buf);

	CHECK_SYS(kill(child, SIGTERM) == 0, "kill child");
	int st;
	CHECK_SYS(waitpid(child, &st, 0) == child, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
