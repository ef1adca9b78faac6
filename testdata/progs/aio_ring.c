/* ckpt-test: */
/*
 * An AIO context (io_setup) with completed events the program has not
 * reaped yet. Before READY: pairs of reads submitted and reaped until
 * the ring's head and tail are near its end, then four reads of a file
 * submitted (they complete inside io_submit: buffered reads of a
 * regular file) and one of their events reaped, leaving three in the
 * ring, around its end (tail < head). After the restore
 * the context id still works: io_getevents returns exactly the three
 * unreaped events with their data, results and read bytes, and a new
 * io_submit on the same context reads again. Raw system calls, no
 * libaio.
 */
#include "ckpt_test.h"

#include <linux/aio_abi.h>

#define BLK 4096
#define NREQ 4

/* The user-visible header of the ring (fs/aio.c struct aio_ring). */
struct ring {
	unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
	struct io_event events[];
};

static aio_context_t ctx;
static struct iocb cbs[NREQ + 2];
static uint8_t bufs[NREQ + 2][BLK];

static void prep(int i, int fd, int blk)
{
	memset(&cbs[i], 0, sizeof(cbs[i]));
	cbs[i].aio_data = 100 + (uint64_t)i;
	cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
	cbs[i].aio_fildes = (uint32_t)fd;
	cbs[i].aio_buf = (uint64_t)(uintptr_t)bufs[i];
	cbs[i].aio_nbytes = BLK;
	cbs[i].aio_offset = (int64_t)blk * BLK;
}

static long submit(int first, int n)
{
	struct iocb *ptrs[NREQ + 2];

	for (int i = 0; i < n; i++)
		ptrs[i] = &cbs[first + i];
	return syscall(SYS_io_submit, ctx, (long)n, ptrs);
}

/* Events are taken only when the ring already holds them (no timeout:
 * the compat io_getevents takes a 32-bit timespec). */
static long reap(struct io_event *ev, long n)
{
	struct ring *r = (struct ring *)ctx;
	unsigned have = (r->tail + r->nr - r->head) % r->nr;

	if ((long)have < n)
		ckpt_fail("the ring holds %u events, %ld wanted (head %u, tail %u)", have, n, r->head, r->tail);
	return syscall(SYS_io_getevents, ctx, n, n, ev, NULL);
}

static void check_event(const struct io_event *e, int i, int blk)
{
	CHECK(e->data == 100 + (uint64_t)i, "event data %llu, want %d", (unsigned long long)e->data, 100 + i);
	CHECK(e->obj == (uint64_t)(uintptr_t)&cbs[i], "event %d names iocb %#llx, want %p", i, (unsigned long long)e->obj, (void *)&cbs[i]);
	CHECK(e->res == BLK && e->res2 == 0, "event %d: res %lld res2 %lld", i, (long long)e->res, (long long)e->res2);
	size_t off = ckpt_verify(bufs[i], BLK, 7, (size_t)blk * BLK);
	CHECK(off == (size_t)-1, "buffer of request %d (block %d) differs at byte %zu", i, blk, off);
}

int main(void)
{
	static uint8_t file[8 * BLK];
	struct io_event ev[NREQ + 2];
	struct ring *r;
	char line[512];
	unsigned nr, head, tail;
	int fd;

	ckpt_block_term();
	ckpt_fill(file, sizeof(file), 7, 0);
	fd = open("data", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK_SYS(fd >= 0, "create data");
	CHECK_SYS(write(fd, file, sizeof(file)) == (ssize_t)sizeof(file), "write data");
	CHECK_SYS(syscall(SYS_io_setup, 8, &ctx) == 0, "io_setup");
	r = (struct ring *)ctx;
	CHECK(r->magic == 0xa10a10a1, "ring magic %#x", r->magic);

	/*
	 * Pairs of requests submitted and reaped until head = tail is 3
	 * short of the ring's end, so that the events left below wrap
	 * around it.
	 */
	nr = r->nr;
	CHECK(nr > 8, "a ring of %u events", nr);
	prep(0, fd, 6);
	prep(1, fd, 7);
	for (unsigned c = 0; c < (nr - 3) / 2; c++) {
		CHECK_SYS(submit(0, 2) == 2, "io_submit 2");
		CHECK_SYS(reap(ev, 2) == 2, "io_getevents 2");
	}
	/* Four more (slots 2..5), one reaped, three left. */
	for (int i = 0; i < NREQ; i++)
		prep(2 + i, fd, i);
	CHECK_SYS(submit(2, NREQ) == NREQ, "io_submit %d", NREQ);
	CHECK_SYS(reap(ev, 1) == 1, "io_getevents 1");
	check_event(&ev[0], 2, 0);
	head = r->head;
	tail = r->tail;
	CHECK(tail < head && (tail + nr - head) % nr == 3, "ring head %u tail %u of %u: the events left do not wrap", head, tail, nr);

	ckpt_ready();
	ckpt_wait_term();

	CHECK(ckpt_maps_line((void *)ctx, line, sizeof(line)) == 0 && strstr(line, "[aio]"), "no AIO ring at %#lx after the restore", (unsigned long)ctx);
	CHECK(r->magic == 0xa10a10a1 && r->nr == nr && r->head == head && r->tail == tail,
	      "ring after the restore: magic %#x, %u events, head %u tail %u; dumped %u events, head %u tail %u", r->magic, r->nr, r->head, r->tail, nr, head, tail);
	CHECK_SYS(reap(ev, 3) == 3, "io_getevents of the 3 unreaped events");
	for (int i = 0; i < 3; i++)
		check_event(&ev[i], 3 + i, 1 + i);
	CHECK(r->head == r->tail, "events left after reaping: head %u tail %u", r->head, r->tail);

	/* The context takes new requests. */
	memset(bufs[0], 0, BLK);
	prep(0, fd, 5);
	CHECK_SYS(submit(0, 1) == 1, "io_submit after the restore");
	CHECK_SYS(reap(ev, 1) == 1, "io_getevents after the restore");
	check_event(&ev[0], 0, 5);
	CHECK_SYS(syscall(SYS_io_destroy, ctx) == 0, "io_destroy");
	ckpt_pass();
}
