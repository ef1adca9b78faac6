/* ckpt-test: expect=dump-fail dump-error=SIGEV_THREAD */
/*
 * A task that holds a POSIX message queue with an mq_notify
 * registration of glibc's SIGEV_THREAD kind (a thread started by a
 * message, told through a netlink socket): it cannot be dumped, so the
 * dump must refuse it by name and leave the queue and the registration
 * as they were: afterwards a message fires the notification.
 */
#include "ckpt_test.h"

#include <mqueue.h>
#include <pthread.h>

static char name[64];
static volatile int fired;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void notified(union sigval v)
{
	pthread_mutex_lock(&mu);
	fired = v.sival_int;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

int main(void)
{
	struct mq_attr a = {.mq_maxmsg = 4, .mq_msgsize = 64};

	ckpt_block_term();
	snprintf(name, sizeof(name), "/ckpt-mq-%d", getpid());
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
	CHECK_SYS(q != (mqd_t)-1, "mq_open %s", name);
	struct sigevent ev = {.sigev_notify = SIGEV_THREAD, .sigev_notify_function = notified};
	ev.sigev_value.sival_int = 42;
	CHECK_SYS(mq_notify(q, &ev) == 0, "mq_notify");

	ckpt_ready();
	ckpt_wait_term();

	mq_unlink(name);
	CHECK_SYS(mq_send(q, "kept", 5, 3) == 0, "mq_send");
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&mu);
	while (!fired)
		if (pthread_cond_timedwait(&cv, &mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&mu);
	CHECK(fired == 42, "the SIGEV_THREAD notification did not fire (%d)", fired);
	ckpt_pass();
}
