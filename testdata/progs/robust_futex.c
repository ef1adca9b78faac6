/* ckpt-test: */
/*
 * robust_futex: every thread's robust futex list (set_robust_list, which
 * glibc registers at each thread's start) must come back, the ia32 one
 * included: the kernel keeps it apart (compat_robust_list) and walks it
 * with 32-bit pointers. Thread T holds a robust mutex across the dump;
 * after the restore each thread checks that get_robust_list(0) gives
 * back the head it had, then T exits without unlocking. The kernel walks
 * T's list at its exit and marks the mutex's owner dead, so the main
 * thread's lock must return EOWNERDEAD; a lost list leaves the mutex held
 * by a dead thread, and the lock times out.
 */
#include "ckpt_test.h"

#include <pthread.h>
#include <sys/syscall.h>

static pthread_mutex_t robust;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int t_ready, t_go;

struct rl {
	void *head;
	size_t len;
};

static struct rl robust_list(void)
{
	struct rl r = {0, 0};
	CHECK_SYS(syscall(SYS_get_robust_list, 0, &r.head, &r.len) == 0, "get_robust_list");
	return r;
}

static void *holder(void *arg)
{
	(void)arg;
	struct rl before = robust_list();
	CHECK(before.head != NULL, "T: no robust list registered");
	CHECK(pthread_mutex_lock(&robust) == 0, "T: lock");
	pthread_mutex_lock(&gate);
	t_ready = 1;
	pthread_cond_broadcast(&cond);
	while (!t_go)
		pthread_cond_wait(&cond, &gate);
	pthread_mutex_unlock(&gate);
	struct rl after = robust_list();
	CHECK(after.head == before.head && after.len == before.len,
	      "T: robust list %p/%zu after the restore, was %p/%zu", after.head, after.len,
	      before.head, before.len);
	/*
	 * End while holding the robust mutex, with the raw exit: glibc does
	 * nothing, the kernel walks the list (and clears the tid for join).
	 */
	syscall(SYS_exit, 0);
	return NULL;
}

int main(void)
{
	ckpt_block_term();
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	CHECK(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0, "setrobust");
	CHECK(pthread_mutex_init(&robust, &a) == 0, "mutex init");
	struct rl before = robust_list();
	CHECK(before.head != NULL, "main: no robust list registered");
	pthread_t t;
	CHECK(pthread_create(&t, NULL, holder, NULL) == 0, "pthread_create");
	pthread_mutex_lock(&gate);
	while (!t_ready)
		pthread_cond_wait(&cond, &gate);
	pthread_mutex_unlock(&gate);
	ckpt_log("main list %p/%zu", before.head, before.len);
	ckpt_ready();
	ckpt_wait_term();

	struct rl after = robust_list();
	CHECK(after.head == before.head && after.len == before.len,
	      "main: robust list %p/%zu after the restore, was %p/%zu", after.head, after.len,
	      before.head, before.len);
	pthread_mutex_lock(&gate);
	t_go = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&gate);
	CHECK(pthread_join(t, NULL) == 0, "join");
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	int err = pthread_mutex_timedlock(&robust, &dl);
	CHECK(err == EOWNERDEAD, "lock of the mutex T died holding: %s, want EOWNERDEAD (T's robust list was lost)",
	      strerror(err));
	CHECK(pthread_mutex_consistent(&robust) == 0, "consistent");
	CHECK(pthread_mutex_unlock(&robust) == 0, "unlock");
	ckpt_pass();
}
