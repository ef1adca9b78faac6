/* ckpt-test: pidns=yes */
/*
 * unix_pidns: unix sockets shared between processes of a tree restored
 * into a PID namespace of its own. The init makes a seqpacket pair and an
 * abstract stream listener; its child keeps one end of the pair and a
 * connection to the listener, which the init accepted; records are
 * queued each way. The restore makes the sockets in one process and the
 * others take theirs by pidfd_getfd, naming it by its PID inside the new
 * namespace. After the restore both read what waited and talk again.
 */
#include "ckpt_test.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static int expect(int fd, const char *want)
{
	char buf[64];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

int main(void)
{
	struct sockaddr_un sa;
	socklen_t sl;
	int q[2], l, c, a, st, sync[2];
	char b;
	pid_t pid;

	ckpt_block_term();
	CHECK(getpid() == 1, "not the init of a PID namespace: pid %d", getpid());
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			 (size_t)snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "ckpt-unix-pidns-%d", (int)getppid()));
	CHECK_SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q) == 0, "socketpair");
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_SYS(l >= 0 && bind(l, (struct sockaddr *)&sa, sl) == 0 && listen(l, 4) == 0, "listener");
	CHECK_SYS(pipe(sync) == 0, "pipe");
	pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) {
		close(q[0]);
		close(l);
		close(sync[0]);
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&sa, sl) != 0)
			_exit(2);
		if (send(q[1], "from child", 10, 0) != 10 || send(c, "stream", 6, 0) != 6)
			_exit(3);
		ckpt_write_all(sync[1], "s", 1);
		ckpt_wait_term();
		if (!expect(q[1], "from init") || !expect(c, "accepted"))
			_exit(4);
		if (send(q[1], "child again", 11, 0) != 11)
			_exit(5);
		_exit(0);
	}
	close(q[1]);
	close(sync[1]);
	CHECK_SYS(read(sync[0], &b, 1) == 1, "sync");
	a = accept(l, NULL, NULL);
	CHECK_SYS(a >= 0, "accept");
	CHECK_SYS(send(q[0], "from init", 9, 0) == 9, "send");
	ckpt_write_all(a, "accepted", 8);
	ckpt_sleep_ms(20);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(expect(q[0], "from child"), "init: the child's record");
	CHECK(expect(a, "stream"), "init: the child's stream bytes");
	CHECK_SYS(kill(pid, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(pid, &st, 0) == pid, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	CHECK(expect(q[0], "child again"), "init: the child's record after the restore");
	ckpt_pass();
}
