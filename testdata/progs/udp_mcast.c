/* ckpt-test: */
/*
 * udp_mcast: multicast group memberships and options of UDP sockets come
 * back. An IPv4 socket joins 239.7.7.1 on lo (IP_ADD_MEMBERSHIP) and
 * 239.7.7.2 for source 127.0.0.1 only (IP_ADD_SOURCE_MEMBERSHIP: an
 * INCLUDE filter), and sets IP_MULTICAST_TTL, _LOOP, _ALL and _IF; an
 * IPv6 socket joins ff15::7:1 on lo (IPV6_JOIN_GROUP), with an EXCLUDE
 * filter of one source (MCAST_MSFILTER), and sets IPV6_MULTICAST_HOPS,
 * _LOOP, _ALL and _IF; a dual-stack IPv6 socket joins the IPv4 group
 * 239.7.7.5 (IP_ADD_MEMBERSHIP at SOL_IP); a sender sets
 * IP_MULTICAST_IF by interface index alone (struct ip_mreqn, as Go's
 * net.ListenMulticastUDP does), which getsockopt does not show, and
 * TTL 0 (looped back, never on the wire). After the restore: MCAST_MSFILTER shows each
 * membership with its filter, the options are as set, and a datagram
 * sent to each IPv4 group on lo arrives (the one from a source the
 * INCLUDE filter lists too), and one the sender sends without naming
 * an interface goes out on lo and comes back to the member there (with
 * its interface lost it would take the default route). lo has no IPv6 multicast route (sending to
 * ff15::7:1 there fails with ENETUNREACH), so the IPv6 group is checked
 * with MCAST_MSFILTER only.
 */
#include "ckpt_test.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif
#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29
#endif

static int geti(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof v;
	CHECK_SYS(getsockopt(fd, level, opt, &v, &l) == 0, "getsockopt(%d, %d)", level, opt);
	return v;
}

static void seti(int fd, int level, int opt, int v)
{
	CHECK_SYS(setsockopt(fd, level, opt, &v, sizeof v) == 0, "setsockopt(%d, %d, %d)", level, opt, v);
}

/* The filter of group g on interface ifx: -1 when the socket is not a
 * member (EADDRNOTAVAIL), else the mode; *nsrc and src[0] the sources. */
static int filter(int fd, int level, unsigned ifx, const struct sockaddr_storage *g, unsigned *nsrc, struct sockaddr_storage *src0)
{
	union {
		struct group_filter gf;
		char b[GROUP_FILTER_SIZE(4)];
	} u;
	memset(&u, 0, sizeof u);
	u.gf.gf_interface = ifx;
	u.gf.gf_group = *g;
	u.gf.gf_numsrc = 4;
	socklen_t l = sizeof u;
	if (getsockopt(fd, level, MCAST_MSFILTER, &u, &l) != 0) {
		CHECK_SYS(errno == EADDRNOTAVAIL, "getsockopt(MCAST_MSFILTER)");
		return -1;
	}
	*nsrc = u.gf.gf_numsrc;
	if (u.gf.gf_numsrc > 0)
		*src0 = u.gf.gf_slist[0];
	return (int)u.gf.gf_fmode;
}

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;
	s->sin_family = AF_INET;
	CHECK(inet_pton(AF_INET, a, &s->sin_addr) == 1, "address %s", a);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
	s->sin6_family = AF_INET6;
	CHECK(inet_pton(AF_INET6, a, &s->sin6_addr) == 1, "address %s", a);
	return ss;
}

static int s4, s6, sd, sm;
static unsigned lo;

/* Checks every membership and option; where says when. */
static void check(const char *where)
{
	struct sockaddr_storage g1 = v4("239.7.7.1"), g2 = v4("239.7.7.2"), g6 = v6("ff15::7:1");
	struct sockaddr_storage src;
	unsigned n = 0;
	int m = filter(s4, SOL_IP, lo, &g1, &n, &src);
	CHECK(m == MCAST_EXCLUDE && n == 0, "%s: 239.7.7.1 on lo: mode %d (-1: not a member), %u sources", where, m, n);
	m = filter(s4, SOL_IP, lo, &g2, &n, &src);
	CHECK(m == MCAST_INCLUDE && n == 1, "%s: 239.7.7.2 on lo: mode %d (-1: not a member), %u sources", where, m, n);
	CHECK(((struct sockaddr_in *)&src)->sin_addr.s_addr == htonl(INADDR_LOOPBACK), "%s: 239.7.7.2: source is not 127.0.0.1", where);
	struct sockaddr_storage g3 = v4("239.7.7.3");
	CHECK(filter(s4, SOL_IP, lo, &g3, &n, &src) == -1, "%s: a member of 239.7.7.3, never joined", where);
	m = filter(s6, SOL_IPV6, lo, &g6, &n, &src);
	CHECK(m == MCAST_EXCLUDE && n == 1, "%s: ff15::7:1 on lo: mode %d (-1: not a member), %u sources", where, m, n);
	struct sockaddr_storage x = v6("2001:db8::5");
	CHECK(memcmp(&((struct sockaddr_in6 *)&src)->sin6_addr, &((struct sockaddr_in6 *)&x)->sin6_addr, 16) == 0, "%s: ff15::7:1: excluded source is not 2001:db8::5", where);

	struct sockaddr_storage g5 = v4("239.7.7.5");
	m = filter(sd, SOL_IP, lo, &g5, &n, &src);
	CHECK(m == MCAST_EXCLUDE && n == 0, "%s: dual-stack socket, 239.7.7.5 on lo: mode %d (-1: not a member), %u sources", where, m, n);

	CHECK(geti(s4, SOL_IP, IP_MULTICAST_TTL) == 9, "%s: IP_MULTICAST_TTL %d", where, geti(s4, SOL_IP, IP_MULTICAST_TTL));
	CHECK(geti(s4, SOL_IP, IP_MULTICAST_LOOP) == 0, "%s: IP_MULTICAST_LOOP %d", where, geti(s4, SOL_IP, IP_MULTICAST_LOOP));
	CHECK(geti(s4, SOL_IP, IP_MULTICAST_ALL) == 0, "%s: IP_MULTICAST_ALL %d", where, geti(s4, SOL_IP, IP_MULTICAST_ALL));
	struct in_addr ifa = {0};
	socklen_t l = sizeof ifa;
	CHECK_SYS(getsockopt(s4, SOL_IP, IP_MULTICAST_IF, &ifa, &l) == 0, "IP_MULTICAST_IF");
	CHECK(ifa.s_addr == htonl(INADDR_LOOPBACK), "%s: IP_MULTICAST_IF %#x", where, ntohl(ifa.s_addr));
	CHECK(geti(s6, SOL_IPV6, IPV6_MULTICAST_HOPS) == 6, "%s: IPV6_MULTICAST_HOPS %d", where, geti(s6, SOL_IPV6, IPV6_MULTICAST_HOPS));
	CHECK(geti(s6, SOL_IPV6, IPV6_MULTICAST_LOOP) == 0, "%s: IPV6_MULTICAST_LOOP %d", where, geti(s6, SOL_IPV6, IPV6_MULTICAST_LOOP));
	CHECK(geti(s6, SOL_IPV6, IPV6_MULTICAST_ALL) == 0, "%s: IPV6_MULTICAST_ALL %d", where, geti(s6, SOL_IPV6, IPV6_MULTICAST_ALL));
	CHECK(geti(s6, SOL_IPV6, IPV6_MULTICAST_IF) == (int)lo, "%s: IPV6_MULTICAST_IF %d", where, geti(s6, SOL_IPV6, IPV6_MULTICAST_IF));
}

static unsigned short port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof ss;
	CHECK_SYS(getsockname(fd, (struct sockaddr *)&ss, &l) == 0, "getsockname");
	return ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port;
}

/* Sends msg to IPv4 group g (port of fd to) from a new socket on lo and
 * waits up to 3 s for it on to. */
static void deliver(int to, struct sockaddr_storage g, const char *msg)
{
	int fam = g.ss_family;
	int s = socket(fam, SOCK_DGRAM, 0);
	CHECK_SYS(s >= 0, "sender socket");
	socklen_t gl;
	if (fam == AF_INET) {
		struct in_addr a = {htonl(INADDR_LOOPBACK)};
		CHECK_SYS(setsockopt(s, SOL_IP, IP_MULTICAST_IF, &a, sizeof a) == 0, "sender IP_MULTICAST_IF");
		((struct sockaddr_in *)&g)->sin_port = port(to);
		gl = sizeof(struct sockaddr_in);
	} else {
		seti(s, SOL_IPV6, IPV6_MULTICAST_IF, (int)lo);
		((struct sockaddr_in6 *)&g)->sin6_port = port(to);
		gl = sizeof(struct sockaddr_in6);
	}
	CHECK_SYS(sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&g, gl) == (ssize_t)strlen(msg), "send to the group (%s)", msg);
	close(s);
	struct pollfd p = {.fd = to, .events = POLLIN};
	CHECK(poll(&p, 1, 3000) == 1, "%s: nothing arrived in 3 s", msg);
	char buf[64];
	ssize_t n = recv(to, buf, sizeof buf - 1, 0);
	CHECK_SYS(n >= 0, "recv");
	buf[n] = 0;
	CHECK(strcmp(buf, msg) == 0, "got '%s', sent '%s'", buf, msg);
}

/* Sends msg from sm to 239.7.7.1 (s4's port) naming no interface: only
 * sm's IP_MULTICAST_IF (lo, by index) takes it to lo, where s4 is a
 * member; then waits up to 3 s for it on s4. */
static void send_by_index(const char *msg)
{
	struct sockaddr_storage g = v4("239.7.7.1");
	((struct sockaddr_in *)&g)->sin_port = port(s4);
	ssize_t n = sendto(sm, msg, strlen(msg), 0, (struct sockaddr *)&g, sizeof(struct sockaddr_in));
	CHECK_SYS(n == (ssize_t)strlen(msg), "%s: send from the socket with IP_MULTICAST_IF by index", msg);
	struct pollfd p = {.fd = s4, .events = POLLIN};
	CHECK(poll(&p, 1, 3000) == 1, "%s: nothing arrived in 3 s (IP_MULTICAST_IF by index lost?)", msg);
	char buf[64];
	n = recv(s4, buf, sizeof buf - 1, 0);
	CHECK_SYS(n >= 0, "recv");
	buf[n] = 0;
	CHECK(strcmp(buf, msg) == 0, "got '%s', sent '%s'", buf, msg);
}

int main(void)
{
	ckpt_block_term();
	lo = if_nametoindex("lo");
	CHECK_SYS(lo > 0, "if_nametoindex(lo)");

	s4 = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK_SYS(s4 >= 0, "socket AF_INET");
	struct sockaddr_in a4 = {.sin_family = AF_INET};
	CHECK_SYS(bind(s4, (struct sockaddr *)&a4, sizeof a4) == 0, "bind IPv4");
	struct ip_mreqn mr = {.imr_ifindex = (int)lo};
	inet_pton(AF_INET, "239.7.7.1", &mr.imr_multiaddr);
	CHECK_SYS(setsockopt(s4, SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0, "IP_ADD_MEMBERSHIP 239.7.7.1");
	struct ip_mreq_source ms;
	memset(&ms, 0, sizeof ms);
	inet_pton(AF_INET, "239.7.7.2", &ms.imr_multiaddr);
	ms.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
	ms.imr_sourceaddr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_SYS(setsockopt(s4, SOL_IP, IP_ADD_SOURCE_MEMBERSHIP, &ms, sizeof ms) == 0, "IP_ADD_SOURCE_MEMBERSHIP 239.7.7.2");
	seti(s4, SOL_IP, IP_MULTICAST_TTL, 9);
	seti(s4, SOL_IP, IP_MULTICAST_LOOP, 0);
	seti(s4, SOL_IP, IP_MULTICAST_ALL, 0);
	struct in_addr ifa = {htonl(INADDR_LOOPBACK)};
	CHECK_SYS(setsockopt(s4, SOL_IP, IP_MULTICAST_IF, &ifa, sizeof ifa) == 0, "IP_MULTICAST_IF");

	s6 = socket(AF_INET6, SOCK_DGRAM, 0);
	CHECK_SYS(s6 >= 0, "socket AF_INET6");
	seti(s6, SOL_IPV6, IPV6_V6ONLY, 1);
	struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
	CHECK_SYS(bind(s6, (struct sockaddr *)&a6, sizeof a6) == 0, "bind IPv6");
	struct ipv6_mreq m6 = {.ipv6mr_interface = lo};
	inet_pton(AF_INET6, "ff15::7:1", &m6.ipv6mr_multiaddr);
	CHECK_SYS(setsockopt(s6, SOL_IPV6, IPV6_JOIN_GROUP, &m6, sizeof m6) == 0, "IPV6_JOIN_GROUP ff15::7:1");
	union {
		struct group_filter gf;
		char b[GROUP_FILTER_SIZE(1)];
	} u;
	memset(&u, 0, sizeof u);
	u.gf.gf_interface = lo;
	u.gf.gf_group = v6("ff15::7:1");
	u.gf.gf_fmode = MCAST_EXCLUDE;
	u.gf.gf_numsrc = 1;
	u.gf.gf_slist[0] = v6("2001:db8::5");
	CHECK_SYS(setsockopt(s6, SOL_IPV6, MCAST_MSFILTER, &u, GROUP_FILTER_SIZE(1)) == 0, "MCAST_MSFILTER ff15::7:1");
	seti(s6, SOL_IPV6, IPV6_MULTICAST_HOPS, 6);
	seti(s6, SOL_IPV6, IPV6_MULTICAST_LOOP, 0);
	seti(s6, SOL_IPV6, IPV6_MULTICAST_ALL, 0);
	seti(s6, SOL_IPV6, IPV6_MULTICAST_IF, (int)lo);
	sd = socket(AF_INET6, SOCK_DGRAM, 0);
	CHECK_SYS(sd >= 0, "socket AF_INET6 (dual-stack)");
	seti(sd, SOL_IPV6, IPV6_V6ONLY, 0);
	CHECK_SYS(bind(sd, (struct sockaddr *)&a6, sizeof a6) == 0, "bind dual-stack");
	inet_pton(AF_INET, "239.7.7.5", &mr.imr_multiaddr);
	CHECK_SYS(setsockopt(sd, SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) == 0, "IP_ADD_MEMBERSHIP 239.7.7.5 (dual-stack)");
	sm = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK_SYS(sm >= 0, "socket (sender)");
	CHECK_SYS(bind(sm, (struct sockaddr *)&a4, sizeof a4) == 0, "bind sender");
	struct ip_mreqn mi = {.imr_ifindex = (int)lo};
	CHECK_SYS(setsockopt(sm, SOL_IP, IP_MULTICAST_IF, &mi, sizeof mi) == 0, "IP_MULTICAST_IF by index");
	seti(sm, SOL_IP, IP_MULTICAST_TTL, 0);
	check("before the dump");
	deliver(s4, v4("239.7.7.1"), "before 239.7.7.1");
	deliver(s4, v4("239.7.7.2"), "before 239.7.7.2");
	deliver(sd, v4("239.7.7.5"), "before 239.7.7.5");
	send_by_index("before, by index");

	ckpt_ready();
	ckpt_wait_term();

	check("after the restore");
	deliver(s4, v4("239.7.7.1"), "after 239.7.7.1");
	deliver(s4, v4("239.7.7.2"), "after 239.7.7.2");
	deliver(sd, v4("239.7.7.5"), "after 239.7.7.5");
	send_by_index("after, by index");
	ckpt_pass();
}
