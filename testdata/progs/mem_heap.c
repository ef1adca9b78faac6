/* ckpt-test: */
/*
 * mem_heap: the malloc heap and the program break.
 *  - many small blocks (brk heap) and large blocks (> 128 KiB, mmapped by
 *    glibc) with patterns, some freed again;
 *  - the break (glibc's cached sbrk(0) and the kernel's brk(0)) and the
 *    [heap] VMA are unchanged;
 *  - mallinfo2() is unchanged (the allocator's own state was restored);
 *  - malloc/free/realloc keep working and the heap can grow with sbrk().
 */
#include "ckpt_test.h"

#include <malloc.h>
#include <sys/syscall.h>

#define NSMALL 600
#define NLARGE 12

static char *small[NSMALL];
static size_t small_sz[NSMALL];
static char *large[NLARGE];
static size_t large_sz[NLARGE];

static uintptr_t kernel_brk(void)
{
	return (uintptr_t)syscall(SYS_brk, 0);
}

static void check_block(const char *what, int i, const char *p, size_t n, uint32_t seed)
{
	size_t bad = ckpt_verify(p, n, seed, 0);

	if (bad != (size_t)-1)
		ckpt_fail("%s block %d (%p, %zu bytes): mismatch at offset %zu",
			  what, i, (const void *)p, n, bad);
}

int main(void)
{
	char heap_range[160], tmp[160];
	void *brk_glibc;
	uintptr_t brk_kernel;
	struct mallinfo2 mi0, mi1;

	for (int i = 0; i < NSMALL; i++) {
		small_sz[i] = 1 + (size_t)((i * 37) % 4000);
		small[i] = malloc(small_sz[i]);
		CHECK(small[i] != NULL, "malloc(%zu)", small_sz[i]);
		ckpt_fill(small[i], small_sz[i], 1000 + (uint32_t)i, 0);
	}
	for (int i = 0; i < NLARGE; i++) {
		large_sz[i] = (200u << 10) + (size_t)i * 77777u;
		large[i] = malloc(large_sz[i]);
		CHECK(large[i] != NULL, "malloc(%zu)", large_sz[i]);
		ckpt_fill(large[i], large_sz[i], 5000 + (uint32_t)i, 0);
	}
	/* Free every third small block and two large ones. */
	for (int i = 0; i < NSMALL; i += 3) {
		free(small[i]);
		small[i] = NULL;
	}
	free(large[3]);
	large[3] = NULL;
	free(large[8]);
	large[8] = NULL;

	brk_glibc = sbrk(0);
	brk_kernel = kernel_brk();
	CHECK((uintptr_t)brk_glibc == brk_kernel, "sbrk(0)=%p but brk(0)=%#lx",
	      brk_glibc, (unsigned long)brk_kernel);
	if (ckpt_maps_line((char *)brk_kernel - 1, tmp, sizeof(tmp)) != 0 || !strstr(tmp, "[heap]"))
		ckpt_fail("break %#lx is not at the end of [heap]: %s",
			  (unsigned long)brk_kernel, tmp);
	if (ckpt_maps_range((char *)brk_kernel - 1, heap_range, sizeof(heap_range)) != 0)
		ckpt_fail("no [heap]");
	/* Large blocks must be separate mmaps, not inside [heap]. */
	for (int i = 0; i < NLARGE; i++) {
		if (!large[i])
			continue;
		if (ckpt_maps_line(large[i], tmp, sizeof(tmp)) == 0 && strstr(tmp, "[heap]"))
			ckpt_log("large block %d is inside [heap] (mmap threshold?)", i);
	}
	mi0 = mallinfo2();

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* Nothing above may have allocated; compare before touching malloc. */
	mi1 = mallinfo2();
	CHECK(memcmp(&mi0, &mi1, sizeof(mi0)) == 0,
	      "mallinfo2 changed: arena %zu->%zu hblks %zu->%zu hblkhd %zu->%zu uordblks %zu->%zu fordblks %zu->%zu",
	      mi0.arena, mi1.arena, mi0.hblks, mi1.hblks, mi0.hblkhd, mi1.hblkhd,
	      mi0.uordblks, mi1.uordblks, mi0.fordblks, mi1.fordblks);
	CHECK(sbrk(0) == brk_glibc, "sbrk(0) was %p, now %p", brk_glibc, sbrk(0));
	CHECK(kernel_brk() == brk_kernel, "kernel brk was %#lx, now %#lx",
	      (unsigned long)brk_kernel, (unsigned long)kernel_brk());
	if (ckpt_maps_range((char *)brk_kernel - 1, tmp, sizeof(tmp)) != 0)
		ckpt_fail("[heap] vanished");
	CHECK(strcmp(tmp, heap_range) == 0, "[heap] was '%s', now '%s'", heap_range, tmp);

	for (int i = 0; i < NSMALL; i++)
		if (small[i])
			check_block("small", i, small[i], small_sz[i], 1000 + (uint32_t)i);
	for (int i = 0; i < NLARGE; i++)
		if (large[i])
			check_block("large", i, large[i], large_sz[i], 5000 + (uint32_t)i);

	/* The allocator still works: free everything, allocate again. */
	for (int i = 0; i < NSMALL; i++) {
		free(small[i]);
		small[i] = NULL;
	}
	for (int i = 0; i < NLARGE; i++) {
		free(large[i]);
		large[i] = NULL;
	}
	for (int i = 0; i < NSMALL; i++) {
		small_sz[i] = 1 + (size_t)((i * 53) % 3000);
		small[i] = malloc(small_sz[i]);
		CHECK(small[i] != NULL, "malloc after restore");
		ckpt_fill(small[i], small_sz[i], 9000 + (uint32_t)i, 0);
	}
	for (int i = 0; i < NSMALL; i += 2) {
		small[i] = realloc(small[i], small_sz[i] * 3);
		CHECK(small[i] != NULL, "realloc after restore");
		check_block("realloc", i, small[i], small_sz[i], 9000 + (uint32_t)i);
	}
	{
		char *big = malloc(8u << 20);
		CHECK(big != NULL, "malloc(8 MiB) after restore");
		memset(big, 0x5a, 8u << 20);
		free(big);
	}
	for (int i = 0; i < NSMALL; i++)
		free(small[i]);

	/* The break can still move. */
	{
		void *old = sbrk(0);
		char *p = sbrk(256 * 1024);
		uintptr_t kb;

		CHECK(p != (void *)-1, "sbrk(+256K) failed: %s", strerror(errno));
		CHECK(p == old, "sbrk returned %p, expected %p", (void *)p, old);
		memset(p, 0x77, 256 * 1024);
		kb = kernel_brk();
		CHECK(kb == (uintptr_t)p + 256 * 1024, "kernel brk %#lx after growing to %p",
		      (unsigned long)kb, (void *)(p + 256 * 1024));
		CHECK(sbrk(-256 * 1024) != (void *)-1, "sbrk(-256K): %s", strerror(errno));
		CHECK(kernel_brk() == (uintptr_t)old, "brk did not shrink back");
	}

	ckpt_pass();
}
