/* ckpt-test: */
/*
 * unix_listen: listening unix sockets come back with their connections.
 * A stream listener bound to a relative path (mode 0600), a seqpacket
 * listener bound to an abstract name, a stream listener whose path was
 * unlinked; on each a client connected and accepted inside the tree with
 * data queued both ways; on the first also a client bound to a name of
 * its own, and one more connection not accepted before the dump. After the restore: every queued message reads back,
 * names are as they were, the pending connection is accepted and carries
 * what its client sends now, new clients connect by path and by abstract
 * name, and the unlinked path is still absent.
 */
#include "ckpt_test.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <stddef.h>

static socklen_t addr_of(struct sockaddr_un *sa, const char *name, size_t len)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

static int listener(int type, const char *name, size_t len, int backlog)
{
	struct sockaddr_un sa;
	socklen_t sl = addr_of(&sa, name, len);
	int fd = socket(AF_UNIX, type, 0);

	CHECK_SYS(fd >= 0, "socket");
	CHECK_SYS(bind(fd, (struct sockaddr *)&sa, sl) == 0, "bind %s", name[0] ? name : name + 1);
	CHECK_SYS(listen(fd, backlog) == 0, "listen");
	return fd;
}

static int client(int type, const char *name, size_t len)
{
	struct sockaddr_un sa;
	socklen_t sl = addr_of(&sa, name, len);
	int fd = socket(AF_UNIX, type, 0);

	CHECK_SYS(fd >= 0, "socket");
	CHECK_SYS(connect(fd, (struct sockaddr *)&sa, sl) == 0, "connect %s", name[0] ? name : name + 1);
	return fd;
}

static void expect_msg(int fd, const char *want, const char *what)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	CHECK_SYS(n >= 0, "%s: recv", what);
	CHECK((size_t)n == strlen(want) && memcmp(buf, want, (size_t)n) == 0, "%s: got %zd bytes", what, n);
}

static void expect_name(int fd, int peer, const char *name, size_t len, const char *what)
{
	struct sockaddr_un sa;
	socklen_t sl = sizeof(sa);

	CHECK_SYS((peer ? getpeername(fd, (struct sockaddr *)&sa, &sl) : getsockname(fd, (struct sockaddr *)&sa, &sl)) == 0, "%s: name", what);
	CHECK(sl == offsetof(struct sockaddr_un, sun_path) + len && memcmp(sa.sun_path, name, len) == 0,
	      "%s: name of %u bytes, '%s'", what, (unsigned)sl, sa.sun_path[0] ? sa.sun_path : sa.sun_path + 1);
}

int main(void)
{
	char abs_name[64];
	size_t abs_len;
	int l1, l2, l3, c1, a1, c2, a2, c3, a3, c4, a4, p1, pa, n1, na, n2, n2a;
	struct sockaddr_un cli, srv;
	socklen_t cl, sl;
	struct stat st;

	ckpt_block_term();
	abs_len = (size_t)snprintf(abs_name, sizeof(abs_name), "%cckpt-unix-listen-%d", 0, (int)getpid());

	l1 = listener(SOCK_STREAM, "srv.sock", sizeof("srv.sock"), 5);
	CHECK_SYS(chmod("srv.sock", 0600) == 0, "chmod");
	l2 = listener(SOCK_SEQPACKET, abs_name, abs_len, 3);
	l3 = listener(SOCK_STREAM, "gone.sock", sizeof("gone.sock"), 2);

	c1 = client(SOCK_STREAM, "srv.sock", sizeof("srv.sock"));
	a1 = accept(l1, NULL, NULL);
	CHECK_SYS(a1 >= 0, "accept l1");
	c2 = client(SOCK_SEQPACKET, abs_name, abs_len);
	a2 = accept(l2, NULL, NULL);
	CHECK_SYS(a2 >= 0, "accept l2");
	c3 = client(SOCK_STREAM, "gone.sock", sizeof("gone.sock"));
	a3 = accept(l3, NULL, NULL);
	CHECK_SYS(a3 >= 0, "accept l3");
	CHECK_SYS(unlink("gone.sock") == 0, "unlink");
	/* A client bound to a name of its own. */
	c4 = socket(AF_UNIX, SOCK_STREAM, 0);
	cl = addr_of(&cli, "cli.sock", sizeof("cli.sock"));
	sl = addr_of(&srv, "srv.sock", sizeof("srv.sock"));
	CHECK_SYS(c4 >= 0 && bind(c4, (struct sockaddr *)&cli, cl) == 0, "bind cli.sock");
	CHECK_SYS(connect(c4, (struct sockaddr *)&srv, sl) == 0, "connect c4");
	a4 = accept(l1, NULL, NULL);
	CHECK_SYS(a4 >= 0, "accept c4");
	p1 = client(SOCK_STREAM, "srv.sock", sizeof("srv.sock"));

	ckpt_write_all(c1, "ping", 4);
	ckpt_write_all(a1, "pong", 4);
	CHECK_SYS(send(c2, "rec-a", 5, 0) == 5 && send(c2, "rec-b", 5, 0) == 5, "send c2");
	CHECK_SYS(send(a2, "answer", 6, 0) == 6, "send a2");
	ckpt_write_all(c3, "to-gone", 7);

	ckpt_ready();
	ckpt_wait_term();

	expect_msg(a1, "ping", "a1");
	expect_msg(c1, "pong", "c1");
	expect_msg(a2, "rec-a", "a2 first record");
	expect_msg(a2, "rec-b", "a2 second record");
	expect_msg(c2, "answer", "c2");
	expect_msg(a3, "to-gone", "a3");
	expect_name(l1, 0, "srv.sock", sizeof("srv.sock"), "l1");
	expect_name(a1, 0, "srv.sock", sizeof("srv.sock"), "a1");
	expect_name(c1, 1, "srv.sock", sizeof("srv.sock"), "c1's peer");
	expect_name(l2, 0, abs_name, abs_len, "l2");
	expect_name(a2, 0, abs_name, abs_len, "a2");
	expect_name(l3, 0, "gone.sock", sizeof("gone.sock"), "l3");
	expect_name(c4, 0, "cli.sock", sizeof("cli.sock"), "c4");
	expect_name(a4, 1, "cli.sock", sizeof("cli.sock"), "a4's peer");
	expect_name(a4, 0, "srv.sock", sizeof("srv.sock"), "a4");
	ckpt_write_all(a4, "to c4", 5);
	expect_msg(c4, "to c4", "c4");
	CHECK(stat("gone.sock", &st) < 0 && errno == ENOENT, "gone.sock is back");
	CHECK_SYS(stat("srv.sock", &st) == 0, "stat srv.sock");
	CHECK(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0600, "srv.sock mode %o", st.st_mode);

	/* The pending connection: accepted now, with what its client sends now. */
	ckpt_write_all(p1, "late", 4);
	pa = accept(l1, NULL, NULL);
	CHECK_SYS(pa >= 0, "accept the pending connection");
	ckpt_sleep_ms(10);
	expect_msg(pa, "late", "pending connection");
	ckpt_write_all(pa, "ok", 2);
	expect_msg(p1, "ok", "pending client");

	/* New clients. */
	n1 = client(SOCK_STREAM, "srv.sock", sizeof("srv.sock"));
	na = accept(l1, NULL, NULL);
	CHECK_SYS(na >= 0, "accept a new client");
	ckpt_write_all(n1, "new", 3);
	expect_msg(na, "new", "new client");
	n2 = client(SOCK_SEQPACKET, abs_name, abs_len);
	n2a = accept(l2, NULL, NULL);
	CHECK_SYS(n2a >= 0, "accept a new abstract client");
	CHECK_SYS(send(n2a, "hi", 2, 0) == 2, "send");
	expect_msg(n2, "hi", "new abstract client");
	/* The old connections still carry data. */
	ckpt_write_all(c1, "again", 5);
	expect_msg(a1, "again", "a1 again");
	ckpt_write_all(a3, "back", 4);
	expect_msg(c3, "back", "c3");
	ckpt_pass();
}
