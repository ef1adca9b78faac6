/* ckpt-test: expect=dump-fail dump-error=mq_open */
/*
 * A task that holds a POSIX message queue open (mq_open, in the host's
 * IPC namespace; one named, one unlinked): queues cannot be dumped yet,
 * so the dump must refuse it, naming the queue, and must not take it
 * for a regular file "/NAME" or an unlinked one. Afterwards the queues
 * still hold their messages.
 */
#include "ckpt_test.h"

#include <mqueue.h>

static char name[64], gone[64];

int main(void)
{
	struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 64};
	char buf[64] = {0};
	unsigned prio = 0;

	ckpt_block_term();
	snprintf(name, sizeof(name), "/ckpt-mq-%d", getpid());
	snprintf(gone, sizeof(gone), "/ckpt-mq-gone-%d", getpid());
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
	CHECK_SYS(q != (mqd_t)-1, "mq_open %s", name);
	mqd_t g = mq_open(gone, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
	CHECK_SYS(g != (mqd_t)-1, "mq_open %s", gone);
	CHECK_SYS(mq_unlink(gone) == 0, "mq_unlink");
	CHECK_SYS(mq_send(q, "kept", 5, 3) == 0 && mq_send(g, "gone", 5, 1) == 0, "mq_send");

	ckpt_ready();
	ckpt_wait_term();

	mq_unlink(name);
	CHECK_SYS(mq_receive(q, buf, sizeof(buf), &prio) == 5, "mq_receive");
	CHECK(strcmp(buf, "kept") == 0 && prio == 3, "queue holds %s (priority %u)", buf, prio);
	CHECK_SYS(mq_receive(g, buf, sizeof(buf), &prio) == 5, "mq_receive of the unlinked queue");
	CHECK(strcmp(buf, "gone") == 0 && prio == 1, "unlinked queue holds %s (priority %u)", buf, prio);
	ckpt_pass();
}
