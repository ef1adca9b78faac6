/* ckpt-test: */
/*
 * creds_root: credentials and per-task attributes of a root process
 * (uid 0 is kept, so are most capabilities).
 *  - gids: setresgid(100, 101, 102), setfsgid(103), groups {1, 2, 3, 500};
 *  - capabilities: CAP_NET_RAW dropped from the effective set, CAP_SYS_BOOT
 *    dropped from the bounding set, CAP_KILL|CAP_NET_BIND_SERVICE
 *    inheritable, CAP_NET_BIND_SERVICE ambient, securebits KEEP_CAPS;
 *  - umask 027, cwd in a subdirectory of the test dir;
 *  - prctl: PDEATHSIG=SIGUSR2, NO_NEW_PRIVS=1, DUMPABLE=0;
 *  - personality |= ADDR_NO_RANDOMIZE, set_tid_address(&var);
 *  - rlimits: NOFILE soft 512, CORE 4096/8192, STACK soft lowered, NPROC
 *    and MSGQUEUE soft and hard lowered; all 16 compared.
 * Raw capget/capset syscalls (no libcap).
 */
#include "ckpt_test.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <netinet/in.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define NRLIM 16

struct caps {
	struct __user_cap_data_struct d[2];
};

static void cap_get(struct caps *c)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	memset(c, 0, sizeof(*c));
	if (syscall(SYS_capget, &h, c->d) != 0)
		ckpt_fail("capget: %s", strerror(errno));
}

static void cap_set(struct caps *c)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	if (syscall(SYS_capset, &h, c->d) != 0)
		ckpt_fail("capset: %s", strerror(errno));
}

static void cap_clear(uint32_t *w, int cap)
{
	w[cap / 32] &= ~(1u << (cap % 32));
}

static void cap_raise(uint32_t *w, int cap)
{
	w[cap / 32] |= 1u << (cap % 32);
}

/* Everything that is compared, gathered in one place. */
struct state {
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int fsgid;
	int ngroups;
	gid_t groups[64];
	mode_t umask;
	char cwd[4096];
	int pdeathsig, dumpable, nnp, securebits, keepcaps;
	unsigned long persona;
	uint64_t tid_address;
	uint32_t eff[2], prm[2], inh[2];
	int bset[64], amb[64];
	struct rlimit64 rl[NRLIM];
	char status[12][128];
};

static const char *const status_keys[12] = {
	"Umask", "Uid", "Gid", "Groups", "CapInh", "CapPrm",
	"CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "NSpid",
};

static int last_cap;

static void gather(struct state *s)
{
	struct caps c;

	memset(s, 0, sizeof(*s));
	CHECK_SYS(getresuid(&s->ruid, &s->euid, &s->suid) == 0, "getresuid");
	CHECK_SYS(getresgid(&s->rgid, &s->egid, &s->sgid) == 0, "getresgid");
	s->fsgid = setfsgid((gid_t)-1); /* invalid id: returns the current fsgid */
	s->ngroups = getgroups(64, s->groups);
	CHECK_SYS(s->ngroups >= 0, "getgroups");
	s->umask = umask(0);
	umask(s->umask);
	CHECK_SYS(getcwd(s->cwd, sizeof(s->cwd)) != NULL, "getcwd");
	CHECK_SYS(prctl(PR_GET_PDEATHSIG, &s->pdeathsig, 0, 0, 0) == 0, "PR_GET_PDEATHSIG");
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	s->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	s->keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
	s->persona = (unsigned long)personality(0xffffffff);
	CHECK_SYS(prctl(PR_GET_TID_ADDRESS, &s->tid_address, 0, 0, 0) == 0, "PR_GET_TID_ADDRESS");
	cap_get(&c);
	for (int i = 0; i < 2; i++) {
		s->eff[i] = c.d[i].effective;
		s->prm[i] = c.d[i].permitted;
		s->inh[i] = c.d[i].inheritable;
	}
	for (int cap = 0; cap <= last_cap && cap < 64; cap++) {
		s->bset[cap] = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		s->amb[cap] = prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0);
	}
	for (int r = 0; r < NRLIM; r++)
		CHECK_SYS(prlimit64(0, (enum __rlimit_resource)r, NULL, &s->rl[r]) == 0,
			  "prlimit64(%d)", r);
	for (int i = 0; i < 12; i++)
		if (ckpt_status_field(status_keys[i], s->status[i], sizeof(s->status[i])) != 0)
			s->status[i][0] = '\0';
}

static void compare(const struct state *a, const struct state *b)
{
	CHECK(a->ruid == b->ruid && a->euid == b->euid && a->suid == b->suid,
	      "resuid %d/%d/%d -> %d/%d/%d", (int)a->ruid, (int)a->euid, (int)a->suid,
	      (int)b->ruid, (int)b->euid, (int)b->suid);
	CHECK(a->rgid == b->rgid && a->egid == b->egid && a->sgid == b->sgid,
	      "resgid %d/%d/%d -> %d/%d/%d", (int)a->rgid, (int)a->egid, (int)a->sgid,
	      (int)b->rgid, (int)b->egid, (int)b->sgid);
	CHECK(a->fsgid == b->fsgid, "fsgid %d -> %d", a->fsgid, b->fsgid);
	CHECK(a->ngroups == b->ngroups &&
	      memcmp(a->groups, b->groups, sizeof(gid_t) * (size_t)a->ngroups) == 0,
	      "supplementary groups changed (%d -> %d groups)", a->ngroups, b->ngroups);
	CHECK(a->umask == b->umask, "umask %03o -> %03o", (unsigned)a->umask, (unsigned)b->umask);
	CHECK(strcmp(a->cwd, b->cwd) == 0, "cwd '%s' -> '%s'", a->cwd, b->cwd);
	CHECK(a->pdeathsig == b->pdeathsig, "pdeathsig %d -> %d", a->pdeathsig, b->pdeathsig);
	CHECK(a->dumpable == b->dumpable, "dumpable %d -> %d", a->dumpable, b->dumpable);
	CHECK(a->nnp == b->nnp, "no_new_privs %d -> %d", a->nnp, b->nnp);
	CHECK(a->securebits == b->securebits, "securebits %#x -> %#x", a->securebits,
	      b->securebits);
	CHECK(a->keepcaps == b->keepcaps, "keepcaps %d -> %d", a->keepcaps, b->keepcaps);
	CHECK(a->persona == b->persona, "personality %#lx -> %#lx", a->persona, b->persona);
	CHECK(a->tid_address == b->tid_address, "clear_child_tid %#llx -> %#llx",
	      (unsigned long long)a->tid_address, (unsigned long long)b->tid_address);
	for (int i = 0; i < 2; i++) {
		CHECK(a->eff[i] == b->eff[i], "CapEff[%d] %#x -> %#x", i, a->eff[i], b->eff[i]);
		CHECK(a->prm[i] == b->prm[i], "CapPrm[%d] %#x -> %#x", i, a->prm[i], b->prm[i]);
		CHECK(a->inh[i] == b->inh[i], "CapInh[%d] %#x -> %#x", i, a->inh[i], b->inh[i]);
	}
	for (int cap = 0; cap <= last_cap && cap < 64; cap++) {
		CHECK(a->bset[cap] == b->bset[cap], "bounding set cap %d: %d -> %d", cap,
		      a->bset[cap], b->bset[cap]);
		CHECK(a->amb[cap] == b->amb[cap], "ambient cap %d: %d -> %d", cap, a->amb[cap],
		      b->amb[cap]);
	}
	for (int r = 0; r < NRLIM; r++)
		CHECK(a->rl[r].rlim_cur == b->rl[r].rlim_cur && a->rl[r].rlim_max == b->rl[r].rlim_max,
		      "rlimit %d: %llu/%llu -> %llu/%llu", r,
		      (unsigned long long)a->rl[r].rlim_cur, (unsigned long long)a->rl[r].rlim_max,
		      (unsigned long long)b->rl[r].rlim_cur, (unsigned long long)b->rl[r].rlim_max);
	for (int i = 0; i < 12; i++)
		CHECK(strcmp(a->status[i], b->status[i]) == 0, "/proc/self/status %s: '%s' -> '%s'",
		      status_keys[i], a->status[i], b->status[i]);
}

static void lower_rlimit(int res, rlim64_t soft, rlim64_t hard)
{
	struct rlimit64 rl;

	CHECK_SYS(prlimit64(0, (enum __rlimit_resource)res, NULL, &rl) == 0, "prlimit64 get %d", res);
	if (hard != (rlim64_t)-2 && hard < rl.rlim_max)
		rl.rlim_max = hard;
	if (soft < rl.rlim_cur)
		rl.rlim_cur = soft;
	if (rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	CHECK_SYS(prlimit64(0, (enum __rlimit_resource)res, &rl, NULL) == 0, "prlimit64 set %d", res);
}

static volatile int tid_word = 12345;
static struct state before, after;

int main(void)
{
	static const gid_t groups[] = { 1, 2, 3, 500 };
	sigset_t usr2;
	char buf[32];
	struct caps c;

	CHECK(getuid() == 0 && geteuid() == 0, "must run as root");
	last_cap = 40;
	if (ckpt_read_file("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0)
		last_cap = atoi(buf);

	CHECK_SYS(mkdir("cwd-here", 0755) == 0, "mkdir cwd-here");
	CHECK_SYS(chdir("cwd-here") == 0, "chdir");
	umask(027);

	/* Credentials (these reset pdeathsig and dumpable: they come first). */
	CHECK_SYS(setgroups(4, groups) == 0, "setgroups");
	CHECK_SYS(setresgid(100, 101, 102) == 0, "setresgid");
	setfsgid(103);
	CHECK(setfsgid((gid_t)-1) == 103, "setfsgid(103) did not stick");

	CHECK_SYS(prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) == 0, "PR_CAPBSET_DROP");
	cap_get(&c);
	cap_clear(&c.d[0].effective, CAP_NET_RAW);
	cap_raise(&c.d[0].inheritable, CAP_KILL);
	cap_raise(&c.d[0].inheritable, CAP_NET_BIND_SERVICE);
	cap_set(&c);
	CHECK_SYS(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == 0,
		  "PR_CAP_AMBIENT_RAISE");
	CHECK_SYS(prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0) == 0, "PR_SET_SECUREBITS");

	/* rlimits (only lowered: CAP_SYS_RESOURCE may be missing). */
	lower_rlimit(RLIMIT_NOFILE, 512, (rlim64_t)-2);
	lower_rlimit(RLIMIT_CORE, 4096, 8192);
	lower_rlimit(RLIMIT_STACK, 4u << 20, (rlim64_t)-2);
	lower_rlimit(RLIMIT_NPROC, 5000, 6000);
	lower_rlimit(RLIMIT_MSGQUEUE, 100000, 200000);

	/* Task attributes. */
	CHECK_SYS(personality((unsigned long)personality(0xffffffff) | ADDR_NO_RANDOMIZE) != -1,
		  "personality");
	syscall(SYS_set_tid_address, &tid_word);
	CHECK_SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS");
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr2, NULL); /* a dying parent must not kill us */
	CHECK_SYS(prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) == 0, "PR_SET_PDEATHSIG");
	CHECK_SYS(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, "PR_SET_DUMPABLE");

	gather(&before);
	/* Sanity of the setup itself. */
	CHECK(before.ruid == 0 && before.euid == 0 && before.suid == 0, "uids");
	CHECK(before.rgid == 100 && before.egid == 101 && before.sgid == 102 && before.fsgid == 103,
	      "gids");
	CHECK(before.ngroups == 4, "ngroups %d", before.ngroups);
	CHECK(before.umask == 027, "umask");
	CHECK(before.pdeathsig == SIGUSR2 && before.dumpable == 0 && before.nnp == 1, "prctls");
	CHECK(before.securebits == SECBIT_KEEP_CAPS, "securebits %#x", before.securebits);
	CHECK(before.persona & ADDR_NO_RANDOMIZE, "personality");
	CHECK(before.tid_address == (uint64_t)(uintptr_t)&tid_word, "tid address %#llx",
	      (unsigned long long)before.tid_address);
	CHECK(!(before.eff[0] & (1u << CAP_NET_RAW)) && (before.prm[0] & (1u << CAP_NET_RAW)),
	      "CAP_NET_RAW setup");
	CHECK(before.bset[CAP_SYS_BOOT] == 0 && before.amb[CAP_NET_BIND_SERVICE] == 1, "bset/amb");
	CHECK(before.rl[RLIMIT_NOFILE].rlim_cur <= 512, "NOFILE");
	for (int i = 0; i < 12; i++)
		ckpt_log("%s: %s", status_keys[i], before.status[i]);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	gather(&after);
	compare(&before, &after);
	CHECK(tid_word == 12345, "tid word changed to %d", tid_word);
	/* The dropped capabilities are really gone, the kept ones work. */
	{
		int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);

		CHECK(s < 0 && errno == EPERM, "raw socket without CAP_NET_RAW: %d (%s)", s,
		      s < 0 ? strerror(errno) : "succeeded");
		CHECK_SYS(chown(".", 0, 0) == 0, "chown with CAP_CHOWN");
	}
	ckpt_pass();
}
