/* ckpt-test: expect=dump-fail dump-error=UDP */
/*
 * A tree whose child holds a socket, which ckpt cannot dump yet (a UDP
 * socket on loopback with a datagram queued, named "UDP" by the dump). The
 * child is found only once the tree is frozen, so the dump fails after
 * it stopped the tree: both processes must be let go exactly as they
 * were (not stopped, not traced, the child's socket still holding its byte).
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

static void not_traced(const char *who)
{
	char v[64];
	CHECK(ckpt_status_field("TracerPid", v, sizeof v) == 0 && strcmp(v, "0") == 0,
	      "%s: TracerPid %s", who, v);
	CHECK(ckpt_status_field("State", v, sizeof v) == 0 && (v[0] == 'R' || v[0] == 'S'),
	      "%s: state %s", who, v);
}

int main(void)
{
	ckpt_block_term();
	int sync[2];
	CHECK_SYS(pipe(sync) == 0, "pipe");
	pid_t c = fork();
	CHECK_SYS(c >= 0, "fork");
	if (c == 0) {
		close(sync[0]);
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		char c = 0;
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		CHECK_SYS(u >= 0, "socket");
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK_SYS(bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind");
		CHECK_SYS(getsockname(u, (struct sockaddr *)&sin, &sl) == 0, "getsockname");
		CHECK_SYS(sendto(u, "y", 1, 0, (struct sockaddr *)&sin, sizeof(sin)) == 1, "sendto");
		CHECK_SYS(write(sync[1], "c", 1) == 1, "sync");
		close(sync[1]);
		ckpt_wait_term();
		not_traced("child");
		CHECK_SYS(read(u, &c, 1) == 1 && c == 'y', "child: socket byte lost");
		_exit(0);
	}
	close(sync[1]);
	char b;
	CHECK_SYS(read(sync[0], &b, 1) == 1, "sync");
	close(sync[0]);
	ckpt_ready();
	ckpt_wait_term();
	not_traced("root");
	int st;
	CHECK_SYS(kill(c, SIGTERM) == 0, "kill child");
	CHECK_SYS(waitpid(c, &st, 0) == c, "waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	ckpt_pass();
}
