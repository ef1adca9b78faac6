/* ckpt-test: */
/*
 * inotify: an instance (IN_NONBLOCK|IN_CLOEXEC) watching a file for
 * IN_MODIFY, a directory for IN_CREATE|IN_DELETE and another file for
 * IN_ATTRIB|IN_ONESHOT, with a gap in the wds (a watch added and removed
 * between them, as a program that stopped watching something leaves),
 * and a second instance with no watches and no flags, but an owner
 * (F_SETOWN). After the restore
 * the flags must be as they were; a file created in the directory, a
 * write to the file and a chmod of the other file must be reported with
 * the dumped wds, and nothing else (no IN_IGNORED of the restore's own
 * watches).
 */
#include "ckpt_test.h"

#include <sys/inotify.h>
#include <sys/stat.h>

struct ev {
	int wd;
	uint32_t mask;
	char name[64];
};

/* Read the events queued now (the instance is non-blocking). */
static int read_events(int fd, struct ev *out, int max)
{
	char buf[4096] __attribute__((aligned(8)));
	int n = 0;
	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EAGAIN)
			return n;
		CHECK_SYS(got > 0, "read inotify");
		for (char *p = buf; p < buf + got;) {
			struct inotify_event *e = (struct inotify_event *)p;
			CHECK(n < max, "too many events");
			out[n].wd = e->wd;
			out[n].mask = e->mask;
			snprintf(out[n].name, sizeof(out[n].name), "%s", e->len ? e->name : "");
			n++;
			p += sizeof(*e) + e->len;
		}
	}
}

int main(void)
{
	ckpt_block_term();
	CHECK_SYS(mkdir("d", 0755) == 0, "mkdir d");
	int f = open("f", O_RDWR | O_CREAT, 0644);
	int g = open("g", O_RDWR | O_CREAT, 0644);
	CHECK_SYS(f >= 0 && g >= 0, "create f, g");
	close(g);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	int in2 = inotify_init();
	CHECK_SYS(in >= 0 && in2 >= 0, "inotify_init");
	int wf = inotify_add_watch(in, "f", IN_MODIFY);
	int tmp = inotify_add_watch(in, ".", IN_ATTRIB);
	int wd = inotify_add_watch(in, "d", IN_CREATE | IN_DELETE | IN_ONLYDIR);
	CHECK_SYS(wf > 0 && tmp > 0 && wd > 0, "inotify_add_watch");
	CHECK_SYS(inotify_rm_watch(in, tmp) == 0, "inotify_rm_watch");
	int tmp2 = inotify_add_watch(in, ".", IN_ATTRIB);
	CHECK_SYS(tmp2 > 0 && inotify_rm_watch(in, tmp2) == 0, "second gap");
	int wg = inotify_add_watch(in, "g", IN_ATTRIB | IN_ONESHOT);
	CHECK_SYS(wg > 0, "inotify_add_watch g");
	struct ev evs[16];
	int n = read_events(in, evs, 16); /* the IN_IGNORED of the gaps */
	CHECK(n == 2 && evs[0].mask == IN_IGNORED && evs[1].mask == IN_IGNORED, "%d events before the dump", n);
	ckpt_log("wds: f %d, d %d, g %d", wf, wd, wg);
	int fl = fcntl(in, F_GETFL), fd = fcntl(in, F_GETFD);
	CHECK_SYS(fcntl(in2, F_SETOWN, getpid()) == 0, "F_SETOWN");
	int fl2 = fcntl(in2, F_GETFL), fd2 = fcntl(in2, F_GETFD);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(fcntl(in, F_GETFL) == fl && (fl & O_NONBLOCK), "flags %#x -> %#x", fl, fcntl(in, F_GETFL));
	CHECK(fcntl(in, F_GETFD) == fd && fd == FD_CLOEXEC, "fd flags %#x -> %#x", fd, fcntl(in, F_GETFD));
	CHECK(fcntl(in2, F_GETFL) == fl2 && fcntl(in2, F_GETFD) == fd2, "second instance's flags changed");
	CHECK(fcntl(in2, F_GETOWN) == getpid(), "second instance's owner is %d", fcntl(in2, F_GETOWN));
	n = read_events(in, evs, 16);
	CHECK(n == 0, "%d events queued after the restore (first wd %d mask %#x)", n, evs[0].wd, evs[0].mask);

	int c = open("d/new", O_WRONLY | O_CREAT, 0644);
	CHECK_SYS(c >= 0, "create d/new");
	close(c);
	CHECK_SYS(write(f, "x", 1) == 1, "write f");
	CHECK_SYS(chmod("g", 0600) == 0, "chmod g");
	n = read_events(in, evs, 16);
	for (int i = 0; i < n; i++)
		ckpt_log("event wd %d mask %#x name %s", evs[i].wd, evs[i].mask, evs[i].name);
	/* IN_ONESHOT: the chmod fires once, then the watch goes (IN_IGNORED). */
	CHECK(n == 4, "%d events, want 4", n);
	CHECK(evs[0].wd == wd && evs[0].mask == IN_CREATE && strcmp(evs[0].name, "new") == 0, "create: wd %d mask %#x name %s", evs[0].wd, evs[0].mask, evs[0].name);
	CHECK(evs[1].wd == wf && evs[1].mask == IN_MODIFY, "modify: wd %d mask %#x", evs[1].wd, evs[1].mask);
	CHECK(evs[2].wd == wg && evs[2].mask == IN_ATTRIB, "attrib: wd %d mask %#x", evs[2].wd, evs[2].mask);
	CHECK(evs[3].wd == wg && evs[3].mask == IN_IGNORED, "oneshot end: wd %d mask %#x", evs[3].wd, evs[3].mask);
	/* A new watch gets the wd after the last one. */
	int wn = inotify_add_watch(in, ".", IN_ATTRIB);
	CHECK(wn == wg + 1, "new watch got wd %d, want %d", wn, wg + 1);
	ckpt_pass();
}
