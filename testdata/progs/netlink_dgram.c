/* ckpt-test: */
/*
 * netlink_dgram: a netlink socket made SOCK_DGRAM (as many programs make
 * theirs, iproute2's libnetlink among them: netlink treats SOCK_DGRAM
 * and SOCK_RAW alike, but SO_TYPE tells them apart) comes back
 * SOCK_DGRAM, not SOCK_RAW. CRIU's netlink_sk_entry has no type field;
 * ckpt keeps it in a field of its own. After the restore: SO_TYPE is
 * SOCK_DGRAM, the port id and group are kept, and the socket still
 * answers RTM_GETLINK. A SOCK_RAW one next to it stays SOCK_RAW.
 */
#include "ckpt_test.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static int geti(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof v;
	CHECK_SYS(getsockopt(fd, level, opt, &v, &l) == 0, "getsockopt(%d, %d)", level, opt);
	return v;
}

static unsigned portid(int fd)
{
	struct sockaddr_nl nl;
	socklen_t l = sizeof nl;
	CHECK_SYS(getsockname(fd, (struct sockaddr *)&nl, &l) == 0, "getsockname");
	return nl.nl_pid;
}

/* Sends RTM_GETLINK (dump) and reads until NLMSG_DONE; counts the
 * RTM_NEWLINK answers. */
static int getlink(int fd)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_len = sizeof req;
	req.h.nlmsg_type = RTM_GETLINK;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 43;
	req.i.ifi_family = AF_UNSPEC;
	struct sockaddr_nl k = {.nl_family = AF_NETLINK};
	CHECK_SYS(sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&k, sizeof k) == sizeof req, "send RTM_GETLINK");
	static char buf[1 << 16];
	int links = 0;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		CHECK_SYS(n > 0, "recv");
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return links;
			CHECK(h->nlmsg_type != NLMSG_ERROR, "RTM_GETLINK: error");
			if (h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == 43)
				links++;
		}
	}
}

int main(void)
{
	ckpt_block_term();
	int dg = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_ROUTE);
	CHECK_SYS(dg >= 0, "socket SOCK_DGRAM NETLINK_ROUTE");
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
	CHECK_SYS(bind(dg, (struct sockaddr *)&sa, sizeof sa) == 0, "bind");
	int raw = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	CHECK_SYS(raw >= 0, "socket SOCK_RAW NETLINK_ROUTE");
	CHECK(geti(dg, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "SO_TYPE %d before the dump", geti(dg, SOL_SOCKET, SO_TYPE));
	unsigned pid = portid(dg);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(geti(dg, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "SO_TYPE %d, was SOCK_DGRAM (%d)", geti(dg, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
	CHECK(geti(raw, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "SO_TYPE %d, was SOCK_RAW (%d)", geti(raw, SOL_SOCKET, SO_TYPE), SOCK_RAW);
	CHECK(geti(dg, SOL_SOCKET, SO_PROTOCOL) == NETLINK_ROUTE, "protocol %d", geti(dg, SOL_SOCKET, SO_PROTOCOL));
	CHECK(fcntl(dg, F_GETFD) == FD_CLOEXEC, "FD_CLOEXEC lost");
	CHECK(portid(dg) == pid, "port id %#x, was %#x", portid(dg), pid);
	unsigned g[4] = {0};
	socklen_t l = sizeof g;
	CHECK_SYS(getsockopt(dg, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &l) == 0, "NETLINK_LIST_MEMBERSHIPS");
	CHECK(g[0] == RTMGRP_LINK, "groups %#x", g[0]);
	CHECK(getlink(dg) >= 1, "RTM_GETLINK on the SOCK_DGRAM socket lists no link");
	ckpt_pass();
}
