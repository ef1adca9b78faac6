/* ckpt-test: args=--ext-unix-sk */
/*
 * unix_ext_dgram: a unix datagram socket connected to a socket outside
 * the dumped tree, as a daemon's syslog socket is connected to /dev/log,
 * comes back with --ext-unix-sk connected to that name again. The
 * outside peer (a grandchild left to the subreaper by a double fork) is
 * bound to "log.sock" and answers each datagram at "client.sock", the
 * program's own socket, where one answer waits unread at the dump. After
 * the restore the waiting answer reads back, and a new datagram reaches
 * the same outside process, which answers it.
 */
#include "ckpt_test.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

static socklen_t addr_of(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
}

static void outside(int ready, pid_t program)
{
	struct sockaddr_un log, cli;
	socklen_t ll = addr_of(&log, "log.sock"), cl = addr_of(&cli, "client.sock");
	char buf[64], ans[80];
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);
	sigset_t all;

	/* Never outlive a failed test for long; SIGTERM ends it too. */
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	alarm(600);
	setsid(); /* its group and session must not keep the root's PID in use */
	if (s < 0 || bind(s, (struct sockaddr *)&log, ll) != 0)
		_exit(1);
	/* Its PID, then the ready byte, in one write: the intermediate
	 * process writes nothing, so the two cannot interleave. */
	char msg[sizeof(pid_t) + 1];
	pid_t me = getpid();
	memcpy(msg, &me, sizeof(me));
	msg[sizeof(me)] = 'r';
	ckpt_write_all(ready, msg, sizeof(msg));
	close(ready);
	/* Wake up every second: gone for 60 s (not just between its dump and
	 * its restore), the program will not say bye. */
	struct timeval tv = { 1, 0 };
	int away = 0;

	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);

		if (n < 0 && errno == EAGAIN) {
			away = kill(program, 0) < 0 && errno == ESRCH ? away + 1 : 0;
			if (away >= 60)
				_exit(0);
			continue;
		}
		if (n < 0)
			_exit(1);
		buf[n] = '\0';
		if (strcmp(buf, "bye") == 0)
			_exit(0);
		snprintf(ans, sizeof(ans), "got %s from %d", buf, (int)getpid());
		sendto(s, ans, strlen(ans), 0, (struct sockaddr *)&cli, cl);
	}
}

int main(void)
{
	struct sockaddr_un log, cli;
	socklen_t ll, cl;
	char buf[80], want[80], c;
	int s, p[2], status;
	pid_t pid, self, outer = 0;

	ckpt_block_term();
	ll = addr_of(&log, "log.sock");
	cl = addr_of(&cli, "client.sock");
	CHECK_SYS(pipe(p) == 0, "pipe");
	self = getpid();
	pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	if (pid == 0) {
		pid_t g = fork();

		if (g != 0)
			_exit(g < 0);
		close(p[0]);
		outside(p[1], self);
	}
	close(p[1]);
	CHECK_SYS(read(p[0], &outer, sizeof(outer)) == sizeof(outer), "outside pid");
	CHECK_SYS(read(p[0], &c, 1) == 1, "outside ready");
	close(p[0]);
	CHECK_SYS(waitpid(pid, &status, 0) == pid, "waitpid");

	s = socket(AF_UNIX, SOCK_DGRAM, 0);
	CHECK_SYS(s >= 0, "socket");
	CHECK_SYS(bind(s, (struct sockaddr *)&cli, cl) == 0, "bind");
	CHECK_SYS(connect(s, (struct sockaddr *)&log, ll) == 0, "connect");
	CHECK_SYS(send(s, "one", 3, 0) == 3, "send");
	snprintf(want, sizeof(want), "got one from %d", (int)outer);
	CHECK_SYS(recv(s, buf, sizeof(buf), MSG_PEEK) == (ssize_t)strlen(want), "the answer is queued");

	ckpt_ready();
	ckpt_wait_term();

	memset(buf, 0, sizeof(buf));
	CHECK_SYS(recv(s, buf, sizeof(buf), MSG_DONTWAIT) == (ssize_t)strlen(want), "queued answer");
	CHECK(strcmp(buf, want) == 0, "queued answer '%s'", buf);
	CHECK_SYS(send(s, "two", 3, 0) == 3, "send after the restore");
	snprintf(want, sizeof(want), "got two from %d", (int)outer);
	memset(buf, 0, sizeof(buf));
	CHECK_SYS(recv(s, buf, sizeof(buf), 0) == (ssize_t)strlen(want), "answer after the restore");
	CHECK(strcmp(buf, want) == 0, "answer '%s'", buf);
	CHECK_SYS(send(s, "bye", 3, 0) == 3, "bye");
	ckpt_pass();
}
