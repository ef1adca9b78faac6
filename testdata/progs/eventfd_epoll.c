/* ckpt-test: */
/*
 * eventfds (a counter of 5, non-blocking; a semaphore holding 3; one with
 * a counter above 32 bits) and epoll instances watching them with their
 * own data words, one edge-triggered, plus an epoll that watches another
 * epoll. After the restore the counters, flags and registrations must be
 * as they were: epoll_wait reports the same fds with the same data.
 */
#include "ckpt_test.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

int main(void)
{
	ckpt_block_term();
	int e1 = eventfd(5, EFD_NONBLOCK);
	int e2 = eventfd(3, EFD_SEMAPHORE | EFD_CLOEXEC);
	int e3 = eventfd(0, 0);
	CHECK_SYS(e1 >= 0 && e2 >= 0 && e3 >= 0, "eventfd");
	uint64_t big = 0x123456789ULL;
	CHECK_SYS(write(e3, &big, 8) == 8, "write e3");
	int ep = epoll_create1(0);
	int ep2 = epoll_create1(EPOLL_CLOEXEC);
	CHECK_SYS(ep >= 0 && ep2 >= 0, "epoll_create1");
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1111222233334444ULL};
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, e1, &ev) == 0, "add e1");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 0x5678;
	CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, e2, &ev) == 0, "add e2");
	ev.events = EPOLLIN;
	ev.data.u64 = 0xabc;
	CHECK_SYS(epoll_ctl(ep2, EPOLL_CTL_ADD, ep, &ev) == 0, "add ep to ep2");
	int fl1 = fcntl(e1, F_GETFL), fl2 = fcntl(e2, F_GETFL), fd2 = fcntl(e2, F_GETFD);
	int epfd = fcntl(ep2, F_GETFD);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fcntl(e1, F_GETFL) == fl1, "e1 flags %#x -> %#x", fl1, fcntl(e1, F_GETFL));
	CHECK(fcntl(e2, F_GETFL) == fl2, "e2 flags %#x -> %#x", fl2, fcntl(e2, F_GETFL));
	CHECK(fcntl(e2, F_GETFD) == fd2, "e2 fd flags %#x -> %#x", fd2, fcntl(e2, F_GETFD));
	CHECK(fcntl(ep2, F_GETFD) == epfd, "ep2 fd flags %#x -> %#x", epfd, fcntl(ep2, F_GETFD));

	struct epoll_event out[4];
	int n = epoll_wait(ep2, out, 4, 0);
	CHECK(n == 1 && out[0].data.u64 == 0xabc, "ep2: %d events, data %#llx", n,
	      n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
	n = epoll_wait(ep, out, 4, 0);
	CHECK(n == 2, "ep: %d events, want 2", n);
	int seen1 = 0, seen2 = 0;
	for (int i = 0; i < n; i++) {
		seen1 |= out[i].data.u64 == 0x1111222233334444ULL;
		seen2 |= out[i].data.u64 == 0x5678;
	}
	CHECK(seen1 && seen2, "ep data words lost (e1 %d, e2 %d)", seen1, seen2);
	/* Edge-triggered: no new edge, so e2 is not reported again. */
	n = epoll_wait(ep, out, 4, 0);
	CHECK(n == 1 && out[0].data.u64 == 0x1111222233334444ULL, "ep second wait: %d events", n);

	uint64_t v = 0;
	CHECK_SYS(read(e1, &v, 8) == 8, "read e1");
	CHECK(v == 5, "e1 counter %llu, want 5", (unsigned long long)v);
	CHECK(read(e1, &v, 8) < 0 && errno == EAGAIN, "e1 not empty");
	for (int i = 0; i < 3; i++) {
		CHECK_SYS(read(e2, &v, 8) == 8, "read e2 #%d", i);
		CHECK(v == 1, "semaphore read %llu, want 1", (unsigned long long)v);
	}
	CHECK_SYS(read(e3, &v, 8) == 8, "read e3");
	CHECK(v == big, "e3 counter %#llx, want %#llx", (unsigned long long)v, (unsigned long long)big);
	ckpt_pass();
}
