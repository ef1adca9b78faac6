/* ckpt-test: expect=dump-fail dump-error=TCP */
/*
 * unsupported_fd: the checkpoint must refuse an fd type it cannot handle
 * (a TCP listener on loopback and a connection through it with a byte in
 * flight), naming it ("TCP socket (IPv4) in state LISTEN"), and leave the
 * process untouched.
 * Besides the sockets the process has a memory pattern (heap and mmap), a
 * blocked signal mask and a few sigactions. After SIGTERM it verifies: the
 * eventfd counter is still 7, the memory is intact, mask and sigactions are
 * unchanged, nothing is pending, the fd table and /proc/self/maps are
 * exactly as before (no leftovers from an aborted dump), it is not traced
 * (TracerPid 0) nor stopped, and it never saw SIGCONT (a visible
 * stop/continue).
 */
#include "ckpt_test.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static volatile sig_atomic_t got_usr2, got_cont;

static void on_usr2(int sig)
{
	(void)sig;
	got_usr2++;
}

static void on_cont(int sig)
{
	(void)sig;
	got_cont++;
}

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long long mask;
};

static void kget(int s, struct ksigaction *k)
{
	memset(k, 0, sizeof(*k));
	if (syscall(SYS_rt_sigaction, s, NULL, k, 8) != 0)
		ckpt_fail("rt_sigaction(%d): %s", s, strerror(errno));
}

static char maps0[1 << 20], maps1[1 << 20];
static char fdlinks0[8192], fdlinks1[8192];

/* "fd:link;" for every open fd (except the directory fd used to list). */
static void fd_links(char *out, size_t cap)
{
	char buf[4096];
	int d = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t len = 0;

	CHECK_SYS(d >= 0, "open /proc/self/fd");
	out[0] = '\0';
	for (;;) {
		long nr = syscall(SYS_getdents64, d, buf, sizeof(buf));

		CHECK_SYS(nr >= 0, "getdents64");
		if (nr == 0)
			break;
		for (long off = 0; off < nr; ) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *de = (void *)(buf + off);

			if (de->name[0] != '.' && atoi(de->name) != d) {
				char path[64], link[512];
				ssize_t n;

				snprintf(path, sizeof(path), "/proc/self/fd/%s", de->name);
				n = readlink(path, link, sizeof(link) - 1);
				link[n > 0 ? n : 0] = '\0';
				len += (size_t)snprintf(out + len, cap - len, "%s:%s;", de->name, link);
				CHECK(len < cap, "fd list too long");
			}
			off += de->reclen;
		}
	}
	close(d);
}

int main(void)
{
	const size_t mlen = 256 * 1024;
	char *heap, *map;
	int efd, efl0;
	struct sigaction sa;
	struct ksigaction k_usr2, k_cont, k_term, k;
	sigset_t blocked, blocked0, cur;
	char sigpnd0[32], shdpnd0[32], sigblk0[32], tmp[64];

	heap = malloc(100000);
	CHECK(heap != NULL, "malloc");
	ckpt_fill(heap, 100000, 41, 0);
	map = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK_SYS(map != MAP_FAILED, "mmap");
	ckpt_fill(map, mlen, 42, 0);

	int lfd, cfd;
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(lfd >= 0, "socket");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_SYS(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind 127.0.0.1");
	CHECK_SYS(listen(lfd, 4) == 0, "listen");
	CHECK_SYS(getsockname(lfd, (struct sockaddr *)&sin, &slen) == 0, "getsockname");
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK_SYS(cfd >= 0, "socket");
	CHECK_SYS(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "connect");
	efd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	CHECK_SYS(efd >= 0, "accept");
	CHECK_SYS(write(cfd, "x", 1) == 1, "write socket");
	ckpt_sleep_ms(50); /* the byte reaches the accepted end */
	efl0 = fcntl(efd, F_GETFL);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	CHECK_SYS(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction USR2");
	sa.sa_handler = on_cont;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	CHECK_SYS(sigaction(SIGCONT, &sa, NULL) == 0, "sigaction CONT");
	kget(SIGUSR2, &k_usr2);
	kget(SIGCONT, &k_cont);
	kget(SIGTERM, &k_term);

	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigaddset(&blocked, SIGHUP);
	sigaddset(&blocked, SIGRTMIN + 1);
	CHECK_SYS(sigprocmask(SIG_BLOCK, &blocked, NULL) == 0, "sigprocmask");
	ckpt_block_term();
	CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &blocked0) == 0, "sigprocmask get");
	CHECK(ckpt_status_field("SigBlk", sigblk0, sizeof(sigblk0)) == 0, "SigBlk");
	CHECK(ckpt_status_field("SigPnd", sigpnd0, sizeof(sigpnd0)) == 0, "SigPnd");
	CHECK(ckpt_status_field("ShdPnd", shdpnd0, sizeof(shdpnd0)) == 0, "ShdPnd");
	fd_links(fdlinks0, sizeof(fdlinks0));
	CHECK_SYS(ckpt_read_file("/proc/self/maps", maps0, sizeof(maps0)) > 0, "read maps");

	ckpt_ready();
	ckpt_wait_term();

	/* No leftovers in the address space or the fd table. */
	CHECK_SYS(ckpt_read_file("/proc/self/maps", maps1, sizeof(maps1)) > 0, "read maps");
	CHECK(strcmp(maps0, maps1) == 0, "/proc/self/maps changed after the failed dump");
	fd_links(fdlinks1, sizeof(fdlinks1));
	CHECK(strcmp(fdlinks0, fdlinks1) == 0, "fd table changed: '%s' -> '%s'", fdlinks0, fdlinks1);

	/* Not traced, not stopped. */
	CHECK(ckpt_status_field("TracerPid", tmp, sizeof(tmp)) == 0, "TracerPid");
	CHECK(strcmp(tmp, "0") == 0, "still traced: TracerPid %s", tmp);
	CHECK(ckpt_status_field("State", tmp, sizeof(tmp)) == 0, "State");
	CHECK(tmp[0] == 'R' || tmp[0] == 'S', "State is '%s'", tmp);
	CHECK(got_cont == 0, "SIGCONT was delivered %d time(s): the process was stopped/continued",
	      (int)got_cont);
	CHECK(got_usr2 == 0, "SIGUSR2 handler ran");

	/* Signals. */
	CHECK_SYS(sigprocmask(SIG_BLOCK, NULL, &cur) == 0, "sigprocmask get");
	{
		int d = ckpt_sigset_diff(&cur, &blocked0);
		CHECK(d == 0, "blocked mask differs at signal %d", d);
	}
	CHECK(ckpt_status_field("SigBlk", tmp, sizeof(tmp)) == 0 && strcmp(tmp, sigblk0) == 0,
	      "SigBlk %s -> %s", sigblk0, tmp);
	CHECK(ckpt_status_field("SigPnd", tmp, sizeof(tmp)) == 0 && strcmp(tmp, sigpnd0) == 0,
	      "SigPnd %s -> %s", sigpnd0, tmp);
	CHECK(ckpt_status_field("ShdPnd", tmp, sizeof(tmp)) == 0 && strcmp(tmp, shdpnd0) == 0,
	      "ShdPnd %s -> %s", shdpnd0, tmp);
	kget(SIGUSR2, &k);
	CHECK(memcmp(&k, &k_usr2, sizeof(k)) == 0, "SIGUSR2 sigaction changed");
	kget(SIGCONT, &k);
	CHECK(memcmp(&k, &k_cont, sizeof(k)) == 0, "SIGCONT sigaction changed");
	kget(SIGTERM, &k);
	CHECK(memcmp(&k, &k_term, sizeof(k)) == 0, "SIGTERM sigaction changed");

	/* Memory. */
	{
		size_t bad = ckpt_verify(heap, 100000, 41, 0);
		CHECK(bad == (size_t)-1, "heap pattern broken at %zu", bad);
		bad = ckpt_verify(map, mlen, 42, 0);
		CHECK(bad == (size_t)-1, "mmap pattern broken at %zu", bad);
	}

	/* The sockets. */
	{
		char c = 0;

		CHECK(fcntl(efd, F_GETFL) == efl0, "socket flags %#x -> %#x", efl0,
		      fcntl(efd, F_GETFL));
		CHECK_SYS(read(efd, &c, 1) == 1 && c == 'x', "socket: byte in flight lost");
		CHECK(read(efd, &c, 1) < 0 && errno == EAGAIN, "socket: more than one byte");
	}
	ckpt_pass();
}
