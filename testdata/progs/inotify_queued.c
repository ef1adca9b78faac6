/* ckpt-test: expect=dump-fail dump-error=queued */
/*
 * inotify_queued: an inotify instance with an event queued that the
 * program has not read. The kernel gives queued events only to a read,
 * which takes them, and they cannot be put back: the dump must refuse
 * the instance by name and leave the process untouched, the event still
 * queued for it.
 */
#include "ckpt_test.h"

#include <sys/inotify.h>
#include <sys/ioctl.h>

int main(void)
{
	ckpt_block_term();
	int f = open("f", O_RDWR | O_CREAT, 0644);
	CHECK_SYS(f >= 0, "create f");
	int in = inotify_init1(IN_NONBLOCK);
	CHECK_SYS(in >= 0, "inotify_init1");
	int w = inotify_add_watch(in, "f", IN_MODIFY);
	CHECK_SYS(w > 0, "inotify_add_watch");
	CHECK_SYS(write(f, "x", 1) == 1, "write f");
	int q = 0;
	CHECK_SYS(ioctl(in, FIONREAD, &q) == 0 && q > 0, "FIONREAD: %d queued", q);

	ckpt_ready();
	ckpt_wait_term();

	int q2 = 0;
	CHECK_SYS(ioctl(in, FIONREAD, &q2) == 0, "FIONREAD");
	CHECK(q2 == q, "%d bytes queued, was %d", q2, q);
	struct inotify_event e;
	CHECK_SYS(read(in, &e, sizeof(e)) == (ssize_t)sizeof(e), "read");
	CHECK(e.wd == w && e.mask == IN_MODIFY, "event wd %d mask %#x", e.wd, e.mask);
	ckpt_pass();
}
