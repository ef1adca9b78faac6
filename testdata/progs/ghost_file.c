/* ckpt-test: */
/*
 * ghost_file: files unlinked while open or mapped ("ghost" files).
 *  - ghost.dat (3 pages + 100 bytes, mode 0640) is open twice (O_RDWR at
 *    offset 1234, O_WRONLY|O_APPEND), mapped MAP_SHARED rw (pages 0-1,
 *    written through) and MAP_PRIVATE (pages 1-2, one page copied on
 *    write), then unlinked and replaced by a new ghost.dat, which fd 'live'
 *    keeps open;
 *  - gone.dat is only mapped (MAP_SHARED read-only), its fd closed, then
 *    unlinked.
 * After restore: the unlinked files are still unlinked (st_nlink 0), one
 * inode shared by both fds, with their mode, size, contents, offsets and
 * flags; the shared mapping and the fd still see each other's writes; the
 * private page keeps its own bytes; the new ghost.dat is untouched.
 */
#include "ckpt_test.h"

#include <sys/mman.h>
#include <sys/stat.h>

static char buf[4 * 65536];

static void check_pattern(const char *what, const void *p, size_t len, uint32_t seed, size_t base)
{
	size_t off = ckpt_verify(p, len, seed, base);

	if (off != (size_t)-1)
		ckpt_fail("%s: mismatch at offset %zu", what, off);
}

static void check_link(int fd, const char *suffix)
{
	char path[64], link[512];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	CHECK_SYS(n > 0, "readlink %s", path);
	link[n] = 0;
	CHECK(strlen(link) >= strlen(suffix) && strcmp(link + strlen(link) - strlen(suffix), suffix) == 0,
	      "fd %d links to '%s', want '...%s'", fd, link, suffix);
}

/* A maps line without its inode, which a file made again does not keep. */
static void drop_inode(char *line)
{
	char *p = line;

	for (int field = 0; field < 4 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p) {
		char *e = p + strspn(p, "0123456789");
		memmove(p, e, strlen(e) + 1);
	}
}

static void same_mapping(const char *what, void *addr, const char *was)
{
	char a[512], b[512];

	if (ckpt_maps_line(addr, b, sizeof(b)))
		ckpt_fail("%s vanished", what);
	snprintf(a, sizeof(a), "%s", was);
	drop_inode(a);
	drop_inode(b);
	CHECK(strcmp(a, b) == 0, "%s was '%s', is '%s'", what, a, b);
}

int main(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t flen = 3 * pg + 100, glen = 2 * pg;
	int rw, app, live, g;
	char *sh, *pv, *gm;
	struct stat a, b;
	char maps_sh[512], maps_pv[512], maps_gm[512], tmp[512];

	/* ghost.dat, open twice and mapped twice, then unlinked. */
	rw = open("ghost.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(rw >= 0, "create ghost.dat");
	ckpt_fill(buf, flen, 1, 0);
	CHECK_SYS(pwrite(rw, buf, flen, 0) == (ssize_t)flen, "write ghost.dat");
	CHECK_SYS(fchmod(rw, 0640) == 0, "chmod");
	app = open("ghost.dat", O_WRONLY | O_APPEND);
	CHECK_SYS(app >= 0, "open ghost.dat for append");
	sh = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
	CHECK_SYS(sh != MAP_FAILED, "mmap shared");
	pv = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, rw, pg);
	CHECK_SYS(pv != MAP_FAILED, "mmap private");
	ckpt_fill(sh + 100, 200, 3, 100);	/* into the file */
	ckpt_fill(pv + pg + 10, 50, 4, 10);	/* a private copy of file page 2 */
	CHECK_SYS(lseek(rw, 1234, SEEK_SET) == 1234, "lseek");
	CHECK_SYS(unlink("ghost.dat") == 0, "unlink ghost.dat");

	/* A new file takes the name. */
	live = open("ghost.dat", O_RDWR | O_CREAT | O_EXCL, 0644);
	CHECK_SYS(live >= 0, "create the new ghost.dat");
	ckpt_fill(buf, pg, 5, 0);
	CHECK_SYS(pwrite(live, buf, pg, 0) == (ssize_t)pg, "write the new ghost.dat");

	/* gone.dat: only mapped. */
	g = open("gone.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_SYS(g >= 0, "create gone.dat");
	ckpt_fill(buf, glen, 6, 0);
	CHECK_SYS(pwrite(g, buf, glen, 0) == (ssize_t)glen, "write gone.dat");
	gm = mmap(NULL, glen, PROT_READ, MAP_SHARED, g, 0);
	CHECK_SYS(gm != MAP_FAILED, "mmap gone.dat");
	close(g);
	CHECK_SYS(unlink("gone.dat") == 0, "unlink gone.dat");

	if (ckpt_maps_line(sh, maps_sh, sizeof(maps_sh)) || ckpt_maps_line(pv, maps_pv, sizeof(maps_pv)) ||
	    ckpt_maps_line(gm, maps_gm, sizeof(maps_gm)))
		ckpt_fail("mappings not in maps");
	CHECK(strstr(maps_sh, "ghost.dat (deleted)") && strstr(maps_gm, "gone.dat (deleted)"), "maps: %s / %s", maps_sh, maps_gm);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	/* Still unlinked, one inode behind both fds, same attributes. */
	CHECK_SYS(fstat(rw, &a) == 0 && fstat(app, &b) == 0, "fstat");
	CHECK(a.st_nlink == 0, "ghost.dat has %lu links after restore", (unsigned long)a.st_nlink);
	CHECK(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "the two fds of ghost.dat are different files");
	CHECK((a.st_mode & 07777) == 0640, "mode %o, want 640", (unsigned)(a.st_mode & 07777));
	CHECK(a.st_size == (off_t)flen, "size %lld, want %zu", (long long)a.st_size, flen);
	CHECK(lseek(rw, 0, SEEK_CUR) == 1234, "offset %lld, want 1234", (long long)lseek(rw, 0, SEEK_CUR));
	CHECK(fcntl(app, F_GETFL) & O_APPEND, "O_APPEND lost");
	CHECK((fcntl(app, F_GETFL) & O_ACCMODE) == O_WRONLY, "append fd is not write-only");
	check_link(rw, "/ghost.dat (deleted)");
	check_link(app, "/ghost.dat (deleted)");

	/* Contents: the file, with what the shared mapping wrote. */
	CHECK_SYS(pread(rw, buf, flen, 0) == (ssize_t)flen, "pread ghost.dat");
	check_pattern("ghost.dat head", buf, 100, 1, 0);
	check_pattern("ghost.dat written through the mapping", buf + 100, 200, 3, 100);
	check_pattern("ghost.dat tail", buf + 300, flen - 300, 1, 300);

	/* The mappings. */
	same_mapping("shared mapping", sh, maps_sh);
	same_mapping("private mapping", pv, maps_pv);
	check_pattern("private page 1", pv, pg, 1, pg);
	check_pattern("private copy", pv + pg + 10, 50, 4, 10);
	/* Shared both ways with the fds' file. */
	sh[5000 % pg] = 'M';
	CHECK_SYS(pread(rw, tmp, 1, 5000 % pg) == 1, "pread");
	CHECK(tmp[0] == 'M', "a write to the shared mapping is not in the file");
	CHECK_SYS(pwrite(rw, "F", 1, pg + 7) == 1, "pwrite");
	CHECK(sh[pg + 7] == 'F', "a write to the file is not in the shared mapping");
	CHECK_SYS(write(app, "Z", 1) == 1, "append");
	CHECK_SYS(fstat(rw, &a) == 0, "fstat");
	CHECK(a.st_size == (off_t)flen + 1, "append through the second fd: size %lld", (long long)a.st_size);

	/* The mapping of gone.dat. */
	same_mapping("gone.dat mapping", gm, maps_gm);
	check_pattern("gone.dat", gm, glen, 6, 0);

	/* The new ghost.dat is the one on disk, as it was. */
	CHECK_SYS(fstat(live, &b) == 0, "fstat the new ghost.dat");
	CHECK(b.st_nlink == 1, "the new ghost.dat has %lu links", (unsigned long)b.st_nlink);
	check_link(live, "/ghost.dat");
	CHECK_SYS(stat("ghost.dat", &a) == 0, "stat ghost.dat");
	CHECK(a.st_ino == b.st_ino, "ghost.dat on disk is not the new file");
	CHECK_SYS(pread(live, buf, pg + 1, 0) == (ssize_t)pg, "pread the new ghost.dat");
	check_pattern("the new ghost.dat", buf, pg, 5, 0);
	ckpt_pass();
}
