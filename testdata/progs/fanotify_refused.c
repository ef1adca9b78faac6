/* ckpt-test: expect=dump-fail dump-error=fanotify */
/*
 * fanotify_refused: a fanotify instance with a mark on the test
 * directory. ckpt cannot dump fanotify marks yet: the dump must refuse
 * it by name and leave the process untouched, its mark still working.
 */
#include "ckpt_test.h"

#include <sys/fanotify.h>

int main(void)
{
	ckpt_block_term();
	int fa = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (fa < 0 && (errno == EPERM || errno == ENOSYS)) {
		ckpt_log("no fanotify here (%s): nothing to refuse", strerror(errno));
		ckpt_ready();
		ckpt_wait_term();
		ckpt_pass();
	}
	CHECK_SYS(fa >= 0, "fanotify_init");
	CHECK_SYS(fanotify_mark(fa, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD, ".") == 0, "fanotify_mark");

	ckpt_ready();
	ckpt_wait_term();

	int f = open("f", O_WRONLY | O_CREAT, 0644);
	CHECK_SYS(f >= 0, "create f");
	close(f);
	struct fanotify_event_metadata m[4];
	ssize_t n = read(fa, m, sizeof(m));
	CHECK_SYS(n >= (ssize_t)sizeof(m[0]), "read fanotify");
	CHECK(m[0].mask & FAN_CLOSE_WRITE, "event mask %#llx", (unsigned long long)m[0].mask);
	if (m[0].fd >= 0)
		close(m[0].fd);
	ckpt_pass();
}
