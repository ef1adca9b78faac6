/* ckpt-test: */
/*
 * unix_renamed: a listener whose file was renamed after it was bound, as
 * a JVM's attach listener binds .java_pidN.tmp and renames it to
 * .java_pidN, listens at its current path after the restore (CRIU binds
 * it at the old name again, and clients get "Connection refused"). It
 * keeps its name (getsockname gives the name it was bound to), the old
 * path stays absent, and a connection accepted before the rename still
 * carries data.
 */
#include "ckpt_test.h"

#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static socklen_t addr_of(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	strcpy(sa->sun_path, name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
}

int main(void)
{
	struct sockaddr_un sa;
	socklen_t sl;
	struct stat st;
	char buf[16];
	int l, c, a, n, na;

	ckpt_block_term();
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_SYS(l >= 0, "socket");
	sl = addr_of(&sa, ".attach_pid.tmp");
	CHECK_SYS(bind(l, (struct sockaddr *)&sa, sl) == 0, "bind");
	CHECK_SYS(listen(l, 8) == 0, "listen");
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK_SYS(c >= 0 && connect(c, (struct sockaddr *)&sa, sl) == 0, "connect");
	a = accept(l, NULL, NULL);
	CHECK_SYS(a >= 0, "accept");
	CHECK_SYS(rename(".attach_pid.tmp", ".attach_pid") == 0, "rename");
	ckpt_write_all(c, "before", 6);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(stat(".attach_pid.tmp", &st) < 0 && errno == ENOENT, "the old path is back");
	CHECK_SYS(stat(".attach_pid", &st) == 0 && S_ISSOCK(st.st_mode), "the current path");
	sl = sizeof(sa);
	CHECK_SYS(getsockname(l, (struct sockaddr *)&sa, &sl) == 0, "getsockname");
	CHECK(strcmp(sa.sun_path, ".attach_pid.tmp") == 0, "listener's name '%s'", sa.sun_path);
	CHECK_SYS(recv(a, buf, sizeof(buf), MSG_DONTWAIT) == 6 && memcmp(buf, "before", 6) == 0, "queued data");

	n = socket(AF_UNIX, SOCK_STREAM, 0);
	sl = addr_of(&sa, ".attach_pid");
	CHECK_SYS(n >= 0 && connect(n, (struct sockaddr *)&sa, sl) == 0, "connect at the current path");
	na = accept(l, NULL, NULL);
	CHECK_SYS(na >= 0, "accept");
	ckpt_write_all(na, "hello", 5);
	CHECK_SYS(recv(n, buf, sizeof(buf), 0) == 5 && memcmp(buf, "hello", 5) == 0, "new client");
	ckpt_write_all(a, "after", 5);
	CHECK_SYS(recv(c, buf, sizeof(buf), 0) == 5 && memcmp(buf, "after", 5) == 0, "old connection");
	ckpt_pass();
}
