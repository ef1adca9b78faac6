/* ckpt-test: */
/*
 * netlink: netlink sockets come back. A NETLINK_ROUTE socket bound with
 * the kernel's port id and joined to RTNLGRP_LINK and RTNLGRP_IPV4_IFADDR
 * (as programs that watch links and addresses keep one), a NETLINK_ROUTE
 * socket never bound, and a NETLINK_GENERIC socket bound to a port id of
 * the program's choice. After the restore: the same protocols, port ids
 * and groups, and the route socket answers a request (RTM_GETLINK dump
 * lists lo).
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

static unsigned groups0(int fd)
{
	unsigned g[4] = {0};
	socklen_t l = sizeof g;
	CHECK_SYS(getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &l) == 0, "NETLINK_LIST_MEMBERSHIPS");
	return g[0];
}

/* Sends RTM_GETLINK (dump) and reads until NLMSG_DONE; tells whether an
 * RTM_NEWLINK came. */
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
	req.h.nlmsg_seq = 42;
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
			if (h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == 42)
				links++;
		}
	}
}

int main(void)
{
	ckpt_block_term();
	int rt = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	CHECK_SYS(rt >= 0, "socket NETLINK_ROUTE");
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR};
	CHECK_SYS(bind(rt, (struct sockaddr *)&sa, sizeof sa) == 0, "bind route");
	int un = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	CHECK_SYS(un >= 0, "socket unbound");
	int ge = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
	CHECK_SYS(ge >= 0, "socket NETLINK_GENERIC");
	struct sockaddr_nl sg = {.nl_family = AF_NETLINK, .nl_pid = 0x7f000000u + (unsigned)getpid()};
	CHECK_SYS(bind(ge, (struct sockaddr *)&sg, sizeof sg) == 0, "bind generic");
	unsigned prt = portid(rt), pge = portid(ge), grt = groups0(rt);
	CHECK(grt == (RTMGRP_LINK | RTMGRP_IPV4_IFADDR), "groups %#x", grt);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(geti(rt, SOL_SOCKET, SO_PROTOCOL) == NETLINK_ROUTE && geti(un, SOL_SOCKET, SO_PROTOCOL) == NETLINK_ROUTE &&
		      geti(ge, SOL_SOCKET, SO_PROTOCOL) == NETLINK_GENERIC, "protocols");
	CHECK(portid(rt) == prt, "route port id %#x, was %#x", portid(rt), prt);
	CHECK(portid(ge) == pge, "generic port id %#x, was %#x", portid(ge), pge);
	CHECK(portid(un) == 0, "unbound socket has port id %#x", portid(un));
	CHECK(groups0(rt) == grt, "groups %#x, were %#x", groups0(rt), grt);
	CHECK(groups0(ge) == 0, "generic groups %#x", groups0(ge));
	CHECK(getlink(un) >= 1, "RTM_GETLINK on the unbound socket lists no link");
	CHECK(getlink(rt) >= 1, "RTM_GETLINK lists no link");
	ckpt_pass();
}
