/* ckpt-test: */
/*
 * creds_user: a process that dropped root before the checkpoint.
 * As root it lowers rlimits (soft and hard), then sets groups {1000},
 * setresgid(1000, 1000, 1000) and setresuid(1000, 1001, 1002), which
 * clears all its capabilities (it now runs as another uid than the
 * checkpointer), and sets umask 077.
 * After restore: the same uids/gids/groups/umask, all 16 rlimits, no
 * capabilities (effective, permitted, inheritable, ambient), the same
 * bounding set and dumpable flag, and root cannot be regained.
 */
#include "ckpt_test.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define NRLIM 16

struct state {
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	int ngroups;
	gid_t groups[64];
	mode_t umask;
	int dumpable, nnp, securebits;
	struct __user_cap_data_struct caps[2];
	struct rlimit64 rl[NRLIM];
	char status[8][128];
};

static const char *const status_keys[8] = {
	"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
};

static void gather(struct state *s)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	memset(s, 0, sizeof(*s));
	CHECK_SYS(getresuid(&s->ruid, &s->euid, &s->suid) == 0, "getresuid");
	CHECK_SYS(getresgid(&s->rgid, &s->egid, &s->sgid) == 0, "getresgid");
	s->ngroups = getgroups(64, s->groups);
	CHECK_SYS(s->ngroups >= 0, "getgroups");
	s->umask = umask(0);
	umask(s->umask);
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	s->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	CHECK_SYS(syscall(SYS_capget, &h, s->caps) == 0, "capget");
	for (int r = 0; r < NRLIM; r++)
		CHECK_SYS(prlimit64(0, (enum __rlimit_resource)r, NULL, &s->rl[r]) == 0,
			  "prlimit64(%d)", r);
	for (int i = 0; i < 8; i++)
		if (ckpt_status_field(status_keys[i], s->status[i], sizeof(s->status[i])) != 0)
			s->status[i][0] = '\0';
}

static void lower_rlimit(int res, rlim64_t soft, rlim64_t hard)
{
	struct rlimit64 rl;

	CHECK_SYS(prlimit64(0, (enum __rlimit_resource)res, NULL, &rl) == 0, "get rlimit %d", res);
	if (hard < rl.rlim_max)
		rl.rlim_max = hard;
	if (soft < rl.rlim_cur)
		rl.rlim_cur = soft;
	if (rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	CHECK_SYS(prlimit64(0, (enum __rlimit_resource)res, &rl, NULL) == 0, "set rlimit %d", res);
}

static struct state before, after;

int main(void)
{
	static const gid_t groups[] = { 1000 };

	CHECK(getuid() == 0, "must start as root");

	lower_rlimit(RLIMIT_NOFILE, 256, 1024);
	lower_rlimit(RLIMIT_CORE, 0, 1024 * 1024);
	lower_rlimit(RLIMIT_FSIZE, 1ULL << 30, 2ULL << 30);
	lower_rlimit(RLIMIT_MEMLOCK, 64 * 1024, 128 * 1024);
	lower_rlimit(RLIMIT_DATA, 1ULL << 30, 2ULL << 30);
	lower_rlimit(RLIMIT_NPROC, 4000, 4500);
	lower_rlimit(RLIMIT_SIGPENDING, 1000, 2000);
	lower_rlimit(RLIMIT_MSGQUEUE, 50000, 60000);

	CHECK_SYS(setgroups(1, groups) == 0, "setgroups");
	CHECK_SYS(setresgid(1000, 1000, 1000) == 0, "setresgid");
	CHECK_SYS(setresuid(1000, 1001, 1002) == 0, "setresuid");
	umask(077);

	gather(&before);
	CHECK(before.ruid == 1000 && before.euid == 1001 && before.suid == 1002, "uids");
	CHECK(before.rgid == 1000 && before.egid == 1000 && before.sgid == 1000, "gids");
	CHECK(before.ngroups == 1 && before.groups[0] == 1000, "groups");
	CHECK(before.caps[0].effective == 0 && before.caps[0].permitted == 0 &&
	      before.caps[1].effective == 0 && before.caps[1].permitted == 0,
	      "capabilities were not dropped");
	for (int i = 0; i < 8; i++)
		ckpt_log("%s: %s", status_keys[i], before.status[i]);
	ckpt_log("dumpable %d", before.dumpable);

	ckpt_block_term();
	ckpt_ready();
	ckpt_wait_term();

	gather(&after);
	CHECK(after.ruid == before.ruid && after.euid == before.euid && after.suid == before.suid,
	      "resuid %d/%d/%d -> %d/%d/%d", (int)before.ruid, (int)before.euid,
	      (int)before.suid, (int)after.ruid, (int)after.euid, (int)after.suid);
	CHECK(after.rgid == before.rgid && after.egid == before.egid && after.sgid == before.sgid,
	      "resgid %d/%d/%d -> %d/%d/%d", (int)before.rgid, (int)before.egid,
	      (int)before.sgid, (int)after.rgid, (int)after.egid, (int)after.sgid);
	CHECK(after.ngroups == before.ngroups &&
	      memcmp(after.groups, before.groups, sizeof(gid_t) * (size_t)before.ngroups) == 0,
	      "groups changed");
	CHECK(after.umask == before.umask, "umask %03o -> %03o", (unsigned)before.umask,
	      (unsigned)after.umask);
	CHECK(after.dumpable == before.dumpable, "dumpable %d -> %d", before.dumpable,
	      after.dumpable);
	CHECK(after.nnp == before.nnp, "no_new_privs %d -> %d", before.nnp, after.nnp);
	CHECK(after.securebits == before.securebits, "securebits %#x -> %#x", before.securebits,
	      after.securebits);
	for (int i = 0; i < 2; i++)
		CHECK(after.caps[i].effective == before.caps[i].effective &&
		      after.caps[i].permitted == before.caps[i].permitted &&
		      after.caps[i].inheritable == before.caps[i].inheritable,
		      "capabilities word %d: eff %#x prm %#x inh %#x -> eff %#x prm %#x inh %#x", i,
		      before.caps[i].effective, before.caps[i].permitted, before.caps[i].inheritable,
		      after.caps[i].effective, after.caps[i].permitted, after.caps[i].inheritable);
	for (int r = 0; r < NRLIM; r++)
		CHECK(after.rl[r].rlim_cur == before.rl[r].rlim_cur &&
		      after.rl[r].rlim_max == before.rl[r].rlim_max,
		      "rlimit %d: %llu/%llu -> %llu/%llu", r,
		      (unsigned long long)before.rl[r].rlim_cur,
		      (unsigned long long)before.rl[r].rlim_max,
		      (unsigned long long)after.rl[r].rlim_cur,
		      (unsigned long long)after.rl[r].rlim_max);
	for (int i = 0; i < 8; i++)
		CHECK(strcmp(after.status[i], before.status[i]) == 0,
		      "/proc/self/status %s: '%s' -> '%s'", status_keys[i], before.status[i],
		      after.status[i]);

	/* Really unprivileged. */
	CHECK(setuid(0) != 0 && errno == EPERM, "setuid(0) did not fail with EPERM");
	CHECK(setgroups(1, groups) != 0 && errno == EPERM, "setgroups did not fail with EPERM");
	{
		struct rlimit64 rl = after.rl[RLIMIT_NOFILE];

		rl.rlim_max += 1;
		CHECK(prlimit64(0, RLIMIT_NOFILE, &rl, NULL) != 0 && errno == EPERM,
		      "raising the NOFILE hard limit did not fail with EPERM");
	}
	ckpt_pass();
}
