/* ckpt-test: */
/*
 * A task in a mount namespace of its own (unshare(CLONE_NEWNS), all
 * mounts made private as unshare(1) does) with mounts that ckpt's
 * namespace lacks: an empty tmpfs with options (size, mode, nosuid,
 * nodev), a read-only bind mount of a directory, a proc and a sysfs, and
 * a child that inherited the namespace. The restore makes a new mount
 * namespace with the same mounts. After it the task checks them in its
 * mountinfo and uses them (the tmpfs is empty and writable, the bind is
 * read-only and shows the directory, proc shows this PID namespace); the
 * child shares its namespace; the restorer's namespace has none of them.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[3072];

/* mount_line finds the mountinfo line of the mount at dir/name in the
 * mountinfo of pid (0: self); returns 0 if found. */
static int mount_line(pid_t pid, const char *name, char *out, size_t cap)
{
	char path[64], want[3200], buf[65536];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/mountinfo");
	ssize_t n = ckpt_read_file(path, buf, sizeof(buf) - 1);
	CHECK_SYS(n > 0, "read %s", path);
	buf[n] = 0;
	snprintf(want, sizeof(want), " %s/%s ", dir, name);
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
		if (strstr(l, want)) {
			snprintf(out, cap, "%s", l);
			return 0;
		}
	}
	return -1;
}

static void check_mounts(const char *who)
{
	char l[4096], p[3200];
	CHECK(mount_line(0, "t", l, sizeof(l)) == 0, "%s: no tmpfs mount", who);
	CHECK(strstr(l, "nosuid,nodev") && strstr(l, " - tmpfs ckpt-tmp ") && strstr(l, "size=1024k") && strstr(l, "mode=700"), "%s: tmpfs is %s", who, l);
	CHECK(mount_line(0, "dst", l, sizeof(l)) == 0, "%s: no bind mount", who);
	CHECK((strstr(l, " ro,") || strstr(l, " ro - ")) && strstr(l, "/src "), "%s: bind mount is %s", who, l);
	CHECK(mount_line(0, "p", l, sizeof(l)) == 0 && strstr(l, " - proc "), "%s: no proc mount", who);
	CHECK(mount_line(0, "s", l, sizeof(l)) == 0 && strstr(l, " - sysfs "), "%s: no sysfs mount", who);

	snprintf(p, sizeof(p), "%s/dst/hello", dir);
	char buf[16] = {0};
	CHECK_SYS(ckpt_read_file(p, buf, sizeof(buf)) == 5 && strcmp(buf, "ckpt\n") == 0, "%s: read %s", who, p);
	CHECK(open(p, O_WRONLY) < 0 && errno == EROFS, "%s: %s is writable", who, p);
	snprintf(p, sizeof(p), "%s/p/self", dir);
	char self[32] = {0};
	CHECK_SYS(readlink(p, self, sizeof(self) - 1) > 0, "%s: readlink %s", who, p);
	CHECK(atoi(self) == getpid(), "%s: %s is %s, not %d", who, p, self, getpid());
}

int main(void)
{
	char p[3200], l[4096];

	ckpt_block_term();
	CHECK_SYS(getcwd(dir, sizeof(dir)) != NULL, "getcwd");
	const char *names[] = {"t", "src", "dst", "p", "s"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		CHECK_SYS(mkdir(p, 0755) == 0, "mkdir %s", p);
	}
	snprintf(p, sizeof(p), "%s/src/hello", dir);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	CHECK_SYS(fd >= 0 && write(fd, "ckpt\n", 5) == 5, "write %s", p);
	close(fd);

	CHECK_SYS(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)");
	CHECK_SYS(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private");
	snprintf(p, sizeof(p), "%s/t", dir);
	CHECK_SYS(mount("ckpt-tmp", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=700") == 0, "mount tmpfs");
	char src[3200];
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(p, sizeof(p), "%s/dst", dir);
	CHECK_SYS(mount(src, p, NULL, MS_BIND, NULL) == 0, "bind mount");
	CHECK_SYS(mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0, "remount read-only");
	snprintf(p, sizeof(p), "%s/p", dir);
	CHECK_SYS(mount("proc", p, "proc", 0, NULL) == 0, "mount proc");
	snprintf(p, sizeof(p), "%s/s", dir);
	CHECK_SYS(mount("sysfs", p, "sysfs", 0, NULL) == 0, "mount sysfs");
	check_mounts("before the dump");

	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		ckpt_wait_term();
		check_mounts("child");
		_exit(0);
	}

	ckpt_ready();
	ckpt_wait_term();

	check_mounts("parent");
	struct stat a, b;
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", c);
	CHECK_SYS(stat(p, &a) == 0 && stat("/proc/self/ns/mnt", &b) == 0, "stat mnt namespaces");
	CHECK(a.st_ino == b.st_ino, "the child is in another mount namespace");
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", getppid());
	CHECK_SYS(stat(p, &a) == 0, "stat %s", p);
	CHECK(a.st_ino != b.st_ino, "in the restorer's mount namespace");
	CHECK(mount_line(getppid(), "t", l, sizeof(l)) != 0, "the restorer's namespace has the tmpfs: %s", l);
	CHECK(mount_line(getppid(), "dst", l, sizeof(l)) != 0, "the restorer's namespace has the bind: %s", l);

	snprintf(p, sizeof(p), "%s/t/new", dir);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	CHECK_SYS(fd >= 0, "create a file in the tmpfs");
	close(fd);

	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	int st;
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid child");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed (status %#x)", st);
	ckpt_pass();
}
