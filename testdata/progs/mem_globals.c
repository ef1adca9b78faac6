/* ckpt-test: link=static */
/*
 * mem_globals: the program image's own memory.
 *  - initialized .data (modified at run time), .bss (filled at run time);
 *  - const data in .rodata and pointer tables in .data.rel.ro (RELRO), whose
 *    mappings must stay read-only;
 *  - a const function pointer table and a writable one (entries swapped);
 *  - a __thread variable (initialized TLS) and a __thread bss array.
 * Also built statically (link=static).
 */
#include "ckpt_test.h"

#include <sys/mman.h>

#define NDATA 1024

static int f_add(int x) { return x + 17; }
static int f_mul(int x) { return x * 3; }
static int f_xor(int x) { return x ^ 0x5a5a; }
static int f_neg(int x) { return -x; }

/* .data */
static uint32_t data_arr[NDATA] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
int data_global = 0x12345678;
/* .bss */
static uint8_t bss_buf[256 * 1024];
long bss_long;
/* .rodata */
static const uint32_t ro_table[512] = {
	0xdeadbeef, 0xcafebabe, 0x01234567, 0x89abcdef, 0xfeedface, 0x0badf00d,
};
static const char ro_string[] = "the quick brown fox jumps over the lazy dog";
/* .data.rel.ro (relocated, then RELRO-protected) in PIE builds */
static const char *const ro_names[] = { "alpha", "beta", "gamma", ro_string };
static int (*const ro_fns[])(int) = { f_add, f_mul, f_xor, f_neg };
/* writable function pointer table */
static int (*rw_fns[])(int) = { f_add, f_mul, f_xor, f_neg };
/* TLS */
static __thread int tls_int = 4242;
static __thread char tls_bss[4096];

/* Things remembered before READY (a separate, non-overlapping copy). */
static struct {
	uint32_t data_arr[NDATA];
	int data_global;
	long bss_long;
	const void *ro_names[4];
	const void *ro_fns[4];
	const void *rw_fns[4];
	int tls_int;
	void *tls_addr;
	char maps_data[160], maps_bss[160], maps_rodata[160], maps_relro[160];
	char maps_text[160];
} saved;

static uint32_t ro_sum(void)
{
	uint32_t s = 0;

	for (size_t i = 0; i < sizeof(ro_table) / sizeof(ro_table[0]); i++)
		s = s * 31 + ro_table[i];
	return s;
}

static void range_of(const void *p, char *out, size_t cap, const char *what)
{
	if (ckpt_maps_range(p, out, cap) != 0)
		ckpt_fail("%s (%p) not in /proc/self/maps", what, p);
}

int main(void)
{
	char tmp[160];
	uint32_t rosum_before;

	/* Modify .data, fill .bss. */
	for (int i = 0; i < NDATA; i++)
		data_arr[i] = data_arr[i] * 1000003u + (uint32_t)i;
	data_global ^= 0x0f0f0f0f;
	ckpt_fill(bss_buf, sizeof(bss_buf), 77, 0);
	bss_long = -123456789L;
	/* Swap entries of the writable table. */
	rw_fns[0] = f_neg;
	rw_fns[3] = f_add;
	tls_int += 1;
	ckpt_fill(tls_bss, sizeof(tls_bss), 78, 0);

	memcpy(saved.data_arr, data_arr, sizeof(data_arr));
	saved.data_global = data_global;
	saved.bss_long = bss_long;
	for (int i = 0; i < 4; i++) {
		saved.ro_names[i] = ro_names[i];
		saved.ro_fns[i] = (const void *)(uintptr_t)ro_fns[i];
		saved.rw_fns[i] = (const void *)(uintptr_t)rw_fns[i];
	}
	saved.tls_int = tls_int;
	saved.tls_addr = &tls_int;
	rosum_before = ro_sum();

	range_of(data_arr, saved.maps_data, sizeof(saved.maps_data), "data");
	range_of(bss_buf + sizeof(bss_buf) - 1, saved.maps_bss, sizeof(saved.maps_bss), "bss");
	range_of(ro_table, saved.maps_rodata, sizeof(saved.maps_rodata), "rodata");
	range_of(ro_fns, saved.maps_relro, sizeof(saved.maps_relro), "relro");
	range_of((const void *)(uintptr_t)f_add, saved.maps_text, sizeof(saved.maps_text), "text");
	CHECK(strstr(saved.maps_rodata, " r-") != NULL, "rodata not read-only: %s", saved.maps_rodata);
	CHECK(strstr(saved.maps_relro, " r--") != NULL, "relro not read-only: %s", saved.maps_relro);
	CHECK(strstr(saved.maps_text, " r-x") != NULL, "text not r-x: %s", saved.maps_text);
	CHECK(strstr(saved.maps_data, " rw-") != NULL, "data not rw: %s", saved.maps_data);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* Mappings: same ranges and permissions. */
	range_of(data_arr, tmp, sizeof(tmp), "data");
	CHECK(strcmp(tmp, saved.maps_data) == 0, "data maps '%s' -> '%s'", saved.maps_data, tmp);
	range_of(bss_buf + sizeof(bss_buf) - 1, tmp, sizeof(tmp), "bss");
	CHECK(strcmp(tmp, saved.maps_bss) == 0, "bss maps '%s' -> '%s'", saved.maps_bss, tmp);
	range_of(ro_table, tmp, sizeof(tmp), "rodata");
	CHECK(strcmp(tmp, saved.maps_rodata) == 0, "rodata maps '%s' -> '%s'", saved.maps_rodata, tmp);
	range_of(ro_fns, tmp, sizeof(tmp), "relro");
	CHECK(strcmp(tmp, saved.maps_relro) == 0, "relro maps '%s' -> '%s'", saved.maps_relro, tmp);
	range_of((const void *)(uintptr_t)f_add, tmp, sizeof(tmp), "text");
	CHECK(strcmp(tmp, saved.maps_text) == 0, "text maps '%s' -> '%s'", saved.maps_text, tmp);

	/* .data / .bss contents. */
	CHECK(memcmp(data_arr, saved.data_arr, sizeof(data_arr)) == 0, ".data array changed");
	for (int i = 0; i < NDATA; i++) {
		uint32_t init = i < 10 ? (uint32_t)(i + 1) : 0;
		CHECK(data_arr[i] == init * 1000003u + (uint32_t)i, "data_arr[%d] = %u", i, data_arr[i]);
	}
	CHECK(data_global == (0x12345678 ^ 0x0f0f0f0f), "data_global = %#x", data_global);
	CHECK(data_global == saved.data_global, "data_global changed");
	{
		size_t bad = ckpt_verify(bss_buf, sizeof(bss_buf), 77, 0);
		CHECK(bad == (size_t)-1, ".bss buffer mismatch at %zu", bad);
	}
	CHECK(bss_long == -123456789L && bss_long == saved.bss_long, "bss_long = %ld", bss_long);

	/* Read-only data. */
	CHECK(ro_table[0] == 0xdeadbeef && ro_table[5] == 0x0badf00d && ro_table[6] == 0,
	      "ro_table changed");
	CHECK(ro_sum() == rosum_before, "ro_table checksum changed");
	CHECK(strcmp(ro_string, "the quick brown fox jumps over the lazy dog") == 0,
	      "ro_string changed");
	for (int i = 0; i < 4; i++) {
		CHECK(saved.ro_names[i] == ro_names[i], "ro_names[%d] pointer changed", i);
		CHECK(saved.ro_fns[i] == (const void *)(uintptr_t)ro_fns[i], "ro_fns[%d] changed", i);
		CHECK(saved.rw_fns[i] == (const void *)(uintptr_t)rw_fns[i], "rw_fns[%d] changed", i);
	}
	CHECK(strcmp(ro_names[0], "alpha") == 0 && strcmp(ro_names[2], "gamma") == 0 &&
	      ro_names[3] == ro_string, "ro_names contents");

	/* Function pointers still call the right code. */
	CHECK(ro_fns[0](5) == 22 && ro_fns[1](5) == 15 && ro_fns[2](5) == (5 ^ 0x5a5a) &&
	      ro_fns[3](5) == -5, "const function table calls wrong code");
	CHECK(rw_fns[0](5) == -5 && rw_fns[1](5) == 15 && rw_fns[2](5) == (5 ^ 0x5a5a) &&
	      rw_fns[3](5) == 22, "writable function table calls wrong code");

	/* TLS. */
	CHECK((void *)&tls_int == saved.tls_addr, "TLS variable moved: %p -> %p",
	      saved.tls_addr, (void *)&tls_int);
	CHECK(tls_int == 4243 && tls_int == saved.tls_int, "tls_int = %d", tls_int);
	{
		size_t bad = ckpt_verify(tls_bss, sizeof(tls_bss), 78, 0);
		CHECK(bad == (size_t)-1, "TLS bss mismatch at %zu", bad);
	}

	/* Writable data is still writable. */
	data_arr[NDATA - 1] = 1;
	bss_buf[0] = 1;
	rw_fns[1] = f_neg;
	CHECK(rw_fns[1](3) == -3, "writable table update");
	tls_int = 1;

	ckpt_pass();
}
