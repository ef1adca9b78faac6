package e2e

import (
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt/ckpt/test/testsupport"
)

var (
	criuFlag      = flag.String("criu", "", "the CRIU binary TestCRIUInterop exchanges dumps with (default $CKPT_CRIU, else criu in $PATH: Debian's 3.17 from scripts/setup.sh)")
	criuProgsFlag = flag.String("criu-progs", "", "the test programs TestCRIUInterop exchanges, comma-separated (default criuPrograms)")
	criuSelfFlag  = flag.Bool("criu-self", false, "TestCRIUInterop also has CRIU restore its own dumps (columns *-criu-self, logged, neither checked nor recorded): tells CRIU's own limits from ckpt's")
)

// criuPrograms are the test programs TestCRIUInterop exchanges, each
// built -m64 and -m32 with its manifest's options (criuOptions): first
// what both tools restore (memory, threads with their TLS and masks,
// trees with zombies and stopped tasks, signals, timers, robust futexes,
// rseq, FPU state, pipes, shared anonymous memory, which CRIU 3.17 dumps
// as a memfd on Linux 6.1, unix datagram sockets, FIFOs, memfds,
// timerfds and signalfds, UTS and IPC namespaces, file mappings, netlink
// sockets, POSIX shared memory and semaphores in /dev/shm (a file
// unlinked while it keeps another name, which both tools dump with
// --link-remap as a link of their own, link_remap.ID, that the restore
// removes), a tree whose root is a PID namespace's init (pidns_init,
// pidns=yes: started so, as in TestEndToEnd; both tools dump it with no
// option and restore it into a new PID namespace, the restore's
// --pidfile giving the root's PID outside), hugetlb memory (private and
// shared MAP_HUGETLB areas, which CRIU dumps shared as a hugetlb memfd's
// mapping, and hugetlb memfds: the programs fill the 2 MiB page pool
// themselves)), then programs whose cells show where CRIU 3.17 differs
// (recorded as failures in docs/RESULTS.md with CRIU's reason; -criu-self
// shows CRIU failing the same way with its own dumps): files (CRIU opens
// an ia32 task's files with O_LARGEFILE), restart_nanosleep (CRIU dumps
// an interrupted nanosleep as EINTR), threads_compat_tls (the ia32
// sigreturn CRIU restores through turns a null fs into 3), sched_attrs
// (CRIU 3.17 loses SCHED_RESET_ON_FORK tasks' priority and refuses
// them), eventfd_epoll (CRIU does not keep EFD_SEMAPHORE), unix_pair
// (from CRIU: CRIU cannot dump SCM credentials queued in a socket),
// unix_listen (to CRIU: CRIU gives an accepted socket no name), tcp_listen
// (CRIU 3.17 has no tcp_opts: a listener's TCP_NODELAY is lost both
// ways), udp (CRIU 3.17 neither dumps nor restores queued UDP
// datagrams), ghost_file (to CRIU: CRIU restores an unlinked file whose
// name was taken again as NAME.cr_link), inotify (to CRIU: CRIU drops
// queued events), sysv_ipc (to CRIU: CRIU does not keep a segment marked
// for removal, SHM_DEST), pty (both ways: CRIU neither dumps nor
// restores the bytes typed on a locked pair's master), creds_root (CRIU 3.17 has no no_new_privs, added
// in 3.19) and tcp_established (from CRIU: CRIU 3.17 locks the network
// with iptables, which the guest lacks). Left out: daemon (daemon=yes): CRIU refuses to dump a root that is not a session
// leader without --shell-job ("The root process ... is not a session
// leader"), with which it restores the root into the restorer's session
// instead of the dumped one ("Migrating process tree (SID ...)"), which
// the daemon checks; and CRIU v4.2 on Linux 6.18 restoring it (its own
// dump or ckpt's, with --shell-job and -d) never returned once the tasks
// were restored (criu waiting in a futex; not tried with 3.17).
//
// With upstream CRIU v4.2 (scripts/build-criu.sh, -criu; its cells are
// docs/RESULTS.md's table "CRIU 4.2" under "Exchange with other CRIU
// versions", with CRIU's reasons): sched_attrs,
// tcp_listen (tcp_opts) and tcp_established (dumped with --network-lock
// skip, which CRIU 3.19 on takes) pass both ways, creds_root from CRIU;
// the rest fail as with 3.17, and CRIU fails the same way with its own
// dumps (-criu-self): files, threads_compat_tls, eventfd_epoll,
// restart_nanosleep, unix_pair, unix_listen, udp, ghost_file, inotify,
// sysv_ipc, pty, and creds_root to CRIU (CRIU does not restore a
// personality).
var criuPrograms = []string{"mem_anon", "threads", "process_tree", "zombie", "stopped", "signals", "posix_timers", "itimers",
	"robust_futex", "rseq", "fpu_regs", "pipes", "shared_anon", "unix_dgram", "fifo", "memfd", "timerfd_signalfd",
	"uts_ns", "ipc_ns", "mem_file_private", "mem_file_shared", "cow_shared", "netlink", "posix_shm", "pidns_init",
	"hugetlb_map", "memfd_hugetlb",
	"files", "restart_nanosleep", "threads_compat_tls", "sched_attrs", "eventfd_epoll",
	"unix_pair", "unix_listen", "tcp_listen", "udp", "ghost_file", "inotify", "sysv_ipc", "pty", "creds_root", "tcp_established"}

// criuColumns are the matrix columns of the exchange: ckpt dumps and
// CRIU restores (to-criu), CRIU dumps and ckpt restores (from-criu).
var criuColumns = []struct{ col, suffix, dumper, restorer string }{
	{"native-to-criu", "64", "ckpt", "criu"},
	{"compat-to-criu", "32", "ckpt", "criu"},
	{"native-from-criu", "64", "criu", "ckpt"},
	{"compat-from-criu", "32", "criu", "ckpt"},
}

// criuSelfColumns are CRIU's own dump and restore (-criu-self).
var criuSelfColumns = []struct{ col, suffix, dumper, restorer string }{
	{"native-criu-self", "64", "criu", "criu"},
	{"compat-criu-self", "32", "criu", "criu"},
}

// TestCRIUInterop exchanges dumps with a real CRIU in the test guest, in
// both directions, for -m64 and -m32 builds: ckpt dumps and CRIU
// restores, CRIU dumps and ckpt restores, and the program must PASS its
// own checks after the restore. It runs in the guest because Debian's
// CRIU (3.17) fails on a kernel it does not know (Linux 6.18's
// [vvar_vclock]: "Unexpected rt vDSO area bounds") and works on the
// guest's Debian kernel. -criu (or $CKPT_CRIU) names another CRIU, with
// its libraries copied in. With -update the cells go into
// docs/RESULTS.md; without, they are checked against it: the matrix's
// CRIU columns are the CRIU they were written with, a CRIU of another
// version has a table of its own in the section "Exchange with other
// CRIU versions" (Matrix.OtherCRIU), which every other regeneration
// keeps as it is.
func TestCRIUInterop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if *prebuilt != "" {
		t.Skip("already running in the guest")
	}
	criu := *criuFlag
	if criu == "" {
		criu = os.Getenv("CKPT_CRIU")
	}
	if criu == "" {
		var err error
		if criu, err = exec.LookPath("criu"); err != nil {
			t.Skip("no criu: install Debian's (scripts/setup.sh does), or name one with -criu or $CKPT_CRIU")
		}
	}
	version, err := exec.Command(criu, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", criu, err)
	}
	ver := strings.TrimPrefix(strings.SplitN(strings.TrimSpace(string(version)), "\n", 2)[0], "Version: ")
	known, err := ReadMatrix(resultsPath)
	if err != nil && !*update {
		t.Fatalf("read %s: %v", resultsPath, err)
	}
	// The matrix's columns are one CRIU's (Debian's 3.17): another one
	// has a table of its own in the matrix (Matrix.OtherCRIU), written
	// with -update and checked without, leaving the columns alone.
	listedVer := matrixCRIUVersion(known)
	otherVer := listedVer != "" && listedVer != ver
	want, table := known, fmt.Sprintf("%s's CRIU columns", resultsPath)
	if otherVer {
		want, table = known.OtherCRIU(ver), fmt.Sprintf("CRIU %s's table in %s", ver, resultsPath)
		if want == nil && !*update {
			t.Fatalf("%s's CRIU columns are CRIU %s's and it has no table for CRIU %s: write one with -criu %s -update", resultsPath, listedVer, ver, criu)
		}
	}
	t.Logf("CRIU %s (%s), checked against %s; %s's CRIU columns: CRIU %s", ver, criu, table, resultsPath, listedVer)

	a, kernel := guestBase(t)
	if err := a.Program("/bin/criu", criu); err != nil {
		t.Fatal(err)
	}
	// The guest loads no kernel modules, so it has no nf_tables; the
	// libnftables that Debian's criu links exits the process when it
	// cannot open its netlink socket, from a probe criu runs before
	// every dump and restore. A stand-in library answers the probe
	// ("nftables cannot make sets"), which these dumps never need.
	if lib, ok := importedLib(criu, "libnftables.so.1"); ok {
		stub := filepath.Join(t.TempDir(), "libnftables.so.1")
		if err := buildNftStub(stub); err != nil {
			t.Fatal(err)
		}
		if err := a.File(lib, stub); err != nil {
			t.Fatal(err)
		}
	}
	progs := criuPrograms
	if *criuProgsFlag != "" {
		progs = strings.Split(*criuProgsFlag, ",")
	}
	manifests, err := Programs(progsDir)
	if err != nil {
		t.Fatal(err)
	}
	columns := criuColumns
	if *criuSelfFlag {
		columns = append(columns[:len(columns):len(columns)], criuSelfColumns...)
	}
	var cells []string
	for _, p := range progs {
		opts, start := criuOptions(t, manifests, p)
		for _, c := range columns {
			bin, _ := filepath.Abs(filepath.Join(progsDir, "build", p+"."+c.suffix))
			if err := a.Program(bin, bin); err != nil {
				t.Fatal(err)
			}
			cells = append(cells, p, c.col, bin, c.dumper, c.restorer, opts, start)
		}
	}
	// The guest has no iptables, which CRIU locks an established TCP
	// connection's traffic with by default: a CRIU that can (3.19 on)
	// is told to skip the lock, which nothing outside the guest needs
	// (the tree holds both ends, or none is sending).
	tcpLock := ""
	if criuAtLeast(ver, 3, 19) {
		tcpLock = "--network-lock skip"
	}
	a.Bytes("/criu-interop.sh", []byte(fmt.Sprintf("criu_tcp_lock=%q\n", tcpLock)+criuInteropScript), 0o755)
	out, err := bootGuest(t, a, kernel, append([]string{"/", "/bin/sh", "/criu-interop.sh"}, cells...), 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res := string(out.Output)
	where := fmt.Sprintf("Linux %s amd64 in a qemu guest with CRIU %s (TestCRIUInterop)", strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-"), ver)
	if otherVer {
		// Another CRIU's table also says which build and when: it is
		// rewritten only by hand, with that CRIU at hand.
		where = fmt.Sprintf("Linux %s amd64 in a qemu guest with CRIU %s (`criu --version`: %s), %s (TestCRIUInterop)",
			strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-"), ver, strings.Join(strings.Fields(string(version)), " "), time.Now().UTC().Format("2006-01-02"))
	}
	got := NewMatrix()
	for _, c := range criuColumns {
		got.SetWhere(c.col, where)
	}
	n := 0
	var logs []string // the lines the guest wrote before this cell's verdict
	for _, l := range strings.Split(res, "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 4 || f[0] != "CELL" {
			logs = append(logs, l)
			continue
		}
		cellLogs := strings.Join(logs, "\n")
		logs = nil
		n++
		prog, col, verdict := f[1], f[2], f[3]
		r := Result{Pass: verdict == "PASS"}
		if !r.Pass {
			r.Reason = strings.TrimPrefix(verdict, "FAIL ")
		}
		self := strings.HasSuffix(col, "-criu-self")
		if !self {
			got.Set(prog, col, r)
		}
		t.Run(prog+"/"+col, func(t *testing.T) {
			if !r.Pass && cellLogs != "" {
				t.Log(cellLogs)
			}
			if self {
				t.Logf("CRIU with itself: %s %s\n%s", map[bool]string{true: "PASS", false: "FAIL"}[r.Pass], r.Reason, cellLogs)
				return
			}
			if *update {
				if !r.Pass {
					t.Logf("FAIL (recorded): %s", r.Reason)
				}
				return
			}
			w, listed := want.Get(prog, col)
			switch {
			case r.Pass && listed && !w.Pass:
				t.Errorf("passes now, but %s lists it as failing (%s): regenerate it (-criu %s -update)", table, w.Reason, criu)
			case !r.Pass && listed && !w.Pass:
				t.Skipf("known failure listed in %s: %s", table, r.Reason)
			case !r.Pass:
				t.Errorf("FAIL: %s", r.Reason)
			}
		})
	}
	if n != len(cells)/criuCellArgs {
		t.Fatalf("the guest sent back %d of %d cells (exit code %d):\n%s", n, len(cells)/criuCellArgs, out.ExitCode, testsupport.LastLines(res, 40))
	}
	if *update {
		m := NewMatrix()
		if known != nil {
			m.Merge(known, nil)
		}
		if otherVer {
			m.MergeOtherCRIU(ver, got)
		} else {
			m.Merge(got, nil)
		}
		if err := m.Write(resultsPath); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote the CRIU exchange's cells into %s", table)
	}
}

// matrixCRIUVersion is the version of the CRIU that m's CRIU columns
// were made with ("3.17.1"), from where they ran; "" if none is named.
func matrixCRIUVersion(m *Matrix) string {
	if m == nil {
		return ""
	}
	_, rest, _ := strings.Cut(m.where[criuColumns[0].col], " with CRIU ")
	if f := strings.Fields(rest); len(f) > 0 {
		return f[0]
	}
	return ""
}

// criuAtLeast tells whether CRIU version ver ("3.17.1", "4.2") is at
// least major.minor.
func criuAtLeast(ver string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(ver, "%d.%d", &ma, &mi); n < 1 {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// criuCellArgs is how many arguments each cell takes in
// criuInteropScript.
const criuCellArgs = 7

// criuOptions are the options of program name's manifest that both
// tools take at dump and restore (--tcp-established, --file-locks,
// --shell-job, ...: ckpt's options have CRIU's names), comma-separated,
// "-" for none, and how the exchange starts it: "pidns" as the init of a
// PID namespace of its own (pidns=yes), else "plain". A program that
// needs a start the exchange does not make (a daemon, stdin a pipe) fails
// the test.
func criuOptions(t *testing.T, manifests []Program, name string) (opts, start string) {
	t.Helper()
	for _, p := range manifests {
		if p.Name != name {
			continue
		}
		if p.Daemon || p.StdinPipe || p.DumpFail != "" || p.Between != "" {
			t.Fatalf("%s: the CRIU exchange starts a program plainly or as a PID namespace's init and expects its dump to work: leave it out", name)
		}
		start = "plain"
		if p.PidNS {
			start = "pidns"
		}
		o := append([]string(nil), p.Args...)
		if p.ShellJob {
			o = append(o, "--shell-job")
		}
		if len(o) == 0 {
			return "-", start
		}
		return strings.Join(o, ","), start
	}
	t.Fatalf("no test program %s in %s", name, progsDir)
	return "", ""
}

// importedLib returns where the library named soname that program links
// is found on this machine.
func importedLib(program, soname string) (string, bool) {
	f, err := elf.Open(program)
	if err != nil {
		return "", false
	}
	defer f.Close()
	libs, _ := f.ImportedLibraries()
	for _, l := range libs {
		if l != soname {
			continue
		}
		for _, d := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/usr/local/lib"} {
			if _, err := os.Stat(filepath.Join(d, l)); err == nil {
				return filepath.Join(d, l), true
			}
		}
	}
	return "", false
}

// buildNftStub builds the stand-in libnftables.so.1 (its API: nftables'
// include/nftables/libnftables.h): a context that exists, and commands
// that succeed but for making a set, so that criu's probe finds nftables
// without concatenated sets and goes on.
func buildNftStub(out string) error {
	dir := filepath.Dir(out)
	src := filepath.Join(dir, "nftstub.c")
	script := filepath.Join(dir, "nftstub.map")
	if err := os.WriteFile(src, []byte(nftStubSource), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(script, []byte("LIBNFTABLES_1 { global: nft_*; local: *; };\n"), 0o644); err != nil {
		return err
	}
	return testsupport.BuildC(out, src, "-shared", "-fPIC", "-Wl,-soname,libnftables.so.1", "-Wl,--version-script="+script)
}

const nftStubSource = `#include <string.h>
struct nft_ctx { int unused; };
static struct nft_ctx ctx;
struct nft_ctx *nft_ctx_new(unsigned int flags) { (void)flags; return &ctx; }
void nft_ctx_free(struct nft_ctx *c) { (void)c; }
int nft_ctx_buffer_output(struct nft_ctx *c) { (void)c; return 0; }
int nft_ctx_buffer_error(struct nft_ctx *c) { (void)c; return 0; }
const char *nft_ctx_get_output_buffer(struct nft_ctx *c) { (void)c; return ""; }
const char *nft_ctx_get_error_buffer(struct nft_ctx *c) { (void)c; return ""; }
void nft_ctx_set_output(struct nft_ctx *c, unsigned int flags) { (void)c; (void)flags; }
int nft_run_cmd_from_buffer(struct nft_ctx *c, const char *buf) { (void)c; return strncmp(buf, "add set", 7) == 0 ? -1 : 0; }
`

// criuInteropScript runs, in the guest, each cell given as seven
// arguments (program, column, binary, dumper, restorer, the options of
// both tools comma-separated or "-", how it starts: plain or pidns): the
// program starts in its own session in a fresh directory (with pidns, as
// the init of a new PID namespace, its output away from unshare's), the
// dumper dumps it
// (and kills it), ckpt show reads a dump of CRIU's, the restorer
// restores it detached, and SIGTERM makes it check itself. Each cell ends as a line "CELL PROGRAM COLUMN PASS"
// or "CELL PROGRAM COLUMN FAIL reason" in /tmp/vm-out, after the logs of
// a failed one.
const criuInteropScript = `set -u
out=/tmp/vm-out
: >$out
busybox ip link set lo up
# CRIU fills pages before it applies a VMA's madvise bits: with THP
# "always", filling one page of a MADV_NOHUGEPAGE area (mem_anon's
# large) would fault in a huge page, resident pages the task never had.
echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
log() { echo "$*" >>$out; }
# The first error a log names, without its time stamp and source line
# (and without those of CRIU's probes of what the guest lacks: iptables,
# tun, veth).
firsterr() { busybox grep -E 'Error' $1 | busybox grep -v -E 'util.c|tun.c|libnetlink.c|net.c:' | busybox head -n 1 | busybox sed -e 's/.*Error ([^)]*): //' -e 's/.*Error: //'; }
fail() { log "--- $1 $2 logs:"; busybox tail -n 15 $3/prog.log $3/img/dump.log >>$out 2>&1; busybox tail -n 40 $3/img/restore.log >>$out 2>&1; log "CELL $1 $2 FAIL $4"; }
cell() {
	prog=$1 col=$2 bin=$3 dumper=$4 restorer=$5 start=$7 opts=
	[ "$6" != - ] && opts=$(echo "$6" | busybox tr , ' ')
	d=/tmp/ix/$prog.$col
	busybox mkdir -p $d/cwd $d/img
	cd $d/cwd
	: >$d/prog.log
	if [ $start = pidns ]; then
		CKPT_TEST_DIR=$d/cwd busybox unshare -p -f busybox setsid /bin/sh -c "exec $bin >$d/prog.log 2>&1 </dev/null" >/dev/null 2>&1 </dev/null &
	else
		CKPT_TEST_DIR=$d/cwd busybox setsid $bin >$d/prog.log 2>&1 </dev/null &
	fi
	p=$! u=$!
	i=0
	while ! busybox grep -q '^READY$' $d/prog.log && [ $i -lt 300 ]; do busybox sleep 0.1; i=$((i+1)); done
	# With pidns, the program is unshare's child.
	[ $start = pidns ] && p=$(busybox cat /proc/$u/task/$u/children | busybox tr -d ' ')
	if ! busybox grep -q '^READY$' $d/prog.log; then kill -KILL $p $u; wait $u; fail $prog $col $d "no READY"; return; fi
	if [ $dumper = ckpt ]; then ckpt dump -t $p -D $d/img -v4 -o dump.log $opts; else
		lock=
		case " $opts " in *" --tcp-established "*) lock=$criu_tcp_lock;; esac
		criu dump -t $p -D $d/img -v4 -o dump.log $opts $lock
	fi
	if [ $? != 0 ]; then kill -KILL $p; wait $u; fail $prog $col $d "dump by $dumper failed: $(firsterr $d/img/dump.log)"; return; fi
	wait $u
	# The tree's other processes, killed too, are reaped by init.
	i=0
	while [ -d /proc/$p ] && [ $i -lt 100 ]; do busybox sleep 0.1; i=$((i+1)); done
	busybox sleep 0.5
	if [ $dumper = criu ] && ! ckpt show $d/img >$d/img/restore.log 2>&1; then fail $prog $col $d "ckpt show failed on CRIU's dump: $(busybox tail -n 1 $d/img/restore.log)"; return; fi
	if [ $restorer = ckpt ]; then ckpt restore -D $d/img -d -v4 -o restore.log --pidfile $d/pidfile $opts; else criu restore -D $d/img -d -v4 -o restore.log --pidfile $d/pidfile $opts; fi
	if [ $? != 0 ]; then fail $prog $col $d "restore by $restorer failed: $(firsterr $d/img/restore.log)"; return; fi
	# In a new PID namespace the restored root has another PID outside.
	[ $start = pidns ] && p=$(busybox cat $d/pidfile)
	busybox sleep 1
	kill -TERM $p
	i=0
	while ! busybox grep -q -E '^(PASS|FAIL)' $d/prog.log && [ $i -lt 300 ]; do busybox sleep 0.1; i=$((i+1)); done
	if busybox grep -q '^PASS$' $d/prog.log; then
		case $col in *-criu-self) log "--- $prog $col:"; busybox tail -n 5 $d/prog.log >>$out;; esac
		log "CELL $prog $col PASS"; return
	fi
	r=$(busybox grep -m1 '^FAIL' $d/prog.log)
	fail $prog $col $d "after the restore by $restorer: ${r:-no PASS or FAIL}"
}
while [ $# -ge 7 ]; do cell "$1" "$2" "$3" "$4" "$5" "$6" "$7"; shift 7; done
`
