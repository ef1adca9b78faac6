/* ckpt-test: */
/*
 * A MAP_SHARED mapping of a file opened O_RDWR, mapped read-only: the
 * task may make it writable later (the mapping may write). After the
 * restore mprotect(PROT_WRITE) must succeed and a write through the
 * mapping must reach the file. A mapping of a file opened O_RDONLY must
 * still refuse to become writable.
 */
#include "ckpt_test.h"

#include <sys/mman.h>

#define PAGE 4096

static char *map_file(const char *name, int oflags)
{
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK_SYS(fd >= 0, "create %s", name);
	CHECK_SYS(ftruncate(fd, PAGE) == 0, "ftruncate %s", name);
	close(fd);
	fd = open(name, oflags);
	CHECK_SYS(fd >= 0, "open %s", name);
	char *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK_SYS(m != MAP_FAILED, "mmap %s", name);
	close(fd);
	return m;
}

int main(void)
{
	ckpt_block_term();
	char *rw = map_file("rw", O_RDWR);
	char *ro = map_file("ro", O_RDONLY);

	ckpt_ready();
	ckpt_wait_term();

	CHECK_SYS(mprotect(rw, PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect the O_RDWR file's mapping writable");
	memcpy(rw, "written", 7);
	CHECK_SYS(msync(rw, PAGE, MS_SYNC) == 0, "msync");
	char buf[8] = {0};
	int fd = open("rw", O_RDONLY);
	CHECK_SYS(fd >= 0 && read(fd, buf, 7) == 7, "read rw back");
	CHECK(memcmp(buf, "written", 7) == 0, "the write did not reach the file: %.7s", buf);
	CHECK(mprotect(ro, PAGE, PROT_READ | PROT_WRITE) != 0 && errno == EACCES,
	      "the O_RDONLY file's mapping became writable (errno %d)", errno);
	ckpt_pass();
}
