/* ckpt-test: expect=dump-fail dump-error=IPC */
/*
 * A task in an IPC namespace of its own that holds a SysV shared memory
 * segment and a POSIX message queue. IPC objects cannot be dumped yet,
 * so the dump must refuse the task, naming them, and leave it as it
 * was: afterwards the segment still holds its bytes and the queue its
 * message.
 */
#include "ckpt_test.h"

#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/shm.h>

int main(void)
{
	ckpt_block_term();
	CHECK_SYS(unshare(CLONE_NEWIPC) == 0, "unshare(CLONE_NEWIPC)");
	int id = shmget(0x1234, 4096, IPC_CREAT | 0600);
	CHECK_SYS(id >= 0, "shmget");
	char *p = shmat(id, NULL, 0);
	CHECK_SYS(p != (void *)-1, "shmat");
	strcpy(p, "ckpt-shm");
	CHECK_SYS(shmdt(p) == 0, "shmdt");
	struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 64};
	mqd_t q = mq_open("/ckpt-ipc-test", O_CREAT | O_RDWR, 0600, &a);
	CHECK_SYS(q != (mqd_t)-1, "mq_open");
	CHECK_SYS(mq_send(q, "ckpt-mq", 8, 1) == 0, "mq_send");
	CHECK_SYS(mq_close(q) == 0, "mq_close");

	ckpt_ready();
	ckpt_wait_term();

	p = shmat(id, NULL, SHM_RDONLY);
	CHECK_SYS(p != (void *)-1, "shmat after the refused dump");
	CHECK(strcmp(p, "ckpt-shm") == 0, "segment holds %.16s", p);
	q = mq_open("/ckpt-ipc-test", O_RDONLY);
	CHECK_SYS(q != (mqd_t)-1, "mq_open after the refused dump");
	char buf[64] = {0};
	CHECK_SYS(mq_receive(q, buf, sizeof(buf), NULL) == 8, "mq_receive");
	CHECK(strcmp(buf, "ckpt-mq") == 0, "queue holds %s", buf);
	ckpt_pass();
}
