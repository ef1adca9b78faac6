/*
 * idleconns: a TCP server on 127.0.0.1 for BenchmarkIdleConnections. It
 * prints "LISTEN port=P", accepts N connections (argv[1]), prints
 * "READY n=N" and then echoes every byte each connection sends, in an
 * epoll loop, forever.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	setvbuf(stdout, NULL, _IONBF, 0);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	socklen_t sl = sizeof sin;
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) || listen(l, 4096) ||
	    getsockname(l, (struct sockaddr *)&sin, &sl)) {
		perror("listen");
		return 1;
	}
	printf("LISTEN port=%d\n", ntohs(sin.sin_port));
	int ep = epoll_create1(0);
	for (int i = 0; i < n; i++) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			perror("accept");
			return 1;
		}
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev)) {
			perror("epoll_ctl");
			return 1;
		}
	}
	printf("READY n=%d\n", n);
	for (;;) {
		struct epoll_event evs[64];
		int k = epoll_wait(ep, evs, 64, -1);
		for (int i = 0; i < k; i++) {
			char buf[256];
			ssize_t r = read(evs[i].data.fd, buf, sizeof buf);
			if (r > 0 && write(evs[i].data.fd, buf, (size_t)r) != r)
				return 1;
			if (r == 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
				close(evs[i].data.fd);
			}
		}
	}
}
