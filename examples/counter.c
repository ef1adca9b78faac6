/* The README's sample: counts, once every 200 ms, what it has counted so
 * far in memory, and prints each step with its PID and word size, so that
 * a restore shows it going on from where it was dumped. SIGTERM ends it. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

int main(void)
{
	/* Fds inherited from whoever started us are not ours to keep. */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	signal(SIGTERM, on_term);
	unsigned long count = 0;
	char line[128];
	while (!stop) {
		int n = snprintf(line, sizeof line, "pid %d (%zu-bit): count %lu\n",
				 getpid(), sizeof(void *) * 8, count++);
		if (write(1, line, n) < 0)
			return 1;
		struct timespec ts = {0, 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return 0;
}
