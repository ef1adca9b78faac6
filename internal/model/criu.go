//go:build linux && amd64

package model

import (
	"encoding/binary"
	"fmt"
	"strconv"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// CRIU interoperability. ckpt's images follow CRIU's conventions where
// CRIU defines one, so that CRIU restores ckpt's dumps and ckpt restores
// CRIU's (test/e2e/criu_test.go runs both with a real CRIU):
//
//   - pstree.img: the root's ppid is 0 (treeIDs in package dump).
//   - inventory.img root_ids are ids of the dumping tool, which no task of
//     the tree has (RootIDs); CRIU takes a root task with the same
//     files_id for a corrupt image.
//   - core: tc.timers is always present (the interval timers, with the
//     POSIX timers in its posix list), which CRIU requires; loginuid,
//     sched_nice/policy/prio and mm's thp_disabled are written as CRIU
//     writes them (package task).
//   - mm_saved_auxv holds /proc/PID/auxv's bytes in 64-bit words, two
//     32-bit values per word for an ia32 task, and at most CRIUAuxvWords
//     words, CRIU's limit (PutSavedAuxv).
//   - [vdso] and [vvar] have VMA_ANON_PRIVATE besides their area bit.
//   - ids-PID.img holds a task's ids; a core's own ids field is read too,
//     for dumps that have no ids-PID.img.
//   - [vsyscall] in a CRIU mm image is not a VMA of the task: Load drops
//     it (ckpt never writes it).
//   - A thread's core has no ids and no task core (CRIU refuses one that
//     has); the leader's blocked signals are tc.blk_sigset, which CRIU
//     restores (ckpt writes them in thread_core too, and reads tc's).
//   - A syscall a thread was interrupted in is rewound in the image (ax
//     holds the syscall number again, ip the syscall instruction), as
//     CRIU writes it: CRIU restores registers as they are
//     (x86.RestartInImage).
//   - CRIU writes every namespace's id, the dumping tool's in root_ids:
//     a task's id equal to root_ids' is a namespace shared with the
//     dumping tool, which Load clears (shareDumpersNamespaces): ckpt's
//     images name only a tree's own namespaces. Load refuses by name a
//     task in its own namespace of a kind ckpt does not restore
//     (network, user, cgroup, time), and what else only CRIU restores
//     (criuRefusal).
//   - inventory.img says ns_per_id: the namespace images (utsns-ID.img,
//     ipcns-*-ID.img, mountpoints-ID.img) are named by namespace id, as
//     CRIU names them (CRIU 3.17 looks for utsns-PID.img without it).
//   - A reg_file_entry has a size only for a regular file not open
//     O_WRONLY|O_APPEND, as CRIU writes it: CRIU checks a recorded size
//     at restore, and a directory's (the cwd's) changes (fd.RegEntry).
//   - An inet_sk_entry always has dst_addr, zeros of the family's length
//     when unconnected (CRIU refuses one without); ip_opts' ttl, which
//     CRIU does not write, is set at restore only when the image has it.
//   - A timerfd that fired and was not read since (fdinfo shows no time
//     left) is written with one interval left, as ckpt restores it: CRIU
//     arms a timerfd with the image's values as they are.
//   - A pty's termios_entry c_cc holds the characters four to a 32-bit
//     word, little-endian, in 19 words (CRIU copies libc's c_cc bytes
//     into the words); both ends have termios, termios_locked and
//     winsize, which CRIU requires of a master. A pty end's tty-info id
//     is CRIU's (2N for pair N's slave, 2N+1 for its master; CRIU
//     silently refuses larger ones), and each tty file has its path in a
//     regular-file entry of its own (regf_id), which CRIU requires.
//   - An established TCP connection's cork and nodelay are also in
//     tcp_stream_entry, where CRIU 3.17 reads them (later CRIU reads
//     inet_sk_entry's tcp_opts); Load takes them from there when a dump
//     has no tcp_opts.
//   - A SysV shm mapping is VMA_AREA_SYSVIPC|VMA_ANON_SHARED with
//     MAP_ANONYMOUS, as CRIU marks it (CRIU does not attach it again
//     otherwise).
//   - ipcns-var leaves out a *_next_id of -1 (the initial value), as CRIU
//     does: CRIU writes a present one as unsigned, which the kernel
//     refuses.
//   - TCP keepalive settings (keepcnt, keepidle, keepintvl) are in both
//     sk_opts (tcp_keep*, where CRIU 3.17 reads them) and tcp_opts
//     (where CRIU 4.x reads and writes them, and only when nonzero);
//     Load copies tcp_opts' into sk_opts where a dump has only those
//     (tcpKeepaliveFromOpts), and a value no image has is left as the
//     kernel's default.
//   - A CRIU dump is told from ckpt's by its inventory's root_ids, which
//     name a mount or network namespace (FromCRIU); ckpt's never do.
//   - A CRIU dump's tc.personality is /proc/PID/personality's hex
//     digits read as decimal (CRIU parses it with atoi); Load turns it
//     back (criuPersonality). ckpt writes the value itself, which CRIU
//     does not restore at all.
//   - Load reads the forms of CRIU's images that ckpt does not write:
//     ghost files with the contents raw to the end of the image (no
//     size) or in chunks (readGhost), a SysV shm segment in_pagemaps
//     (pagemap-shmem-IPCID.img), and an empty memfd without a
//     pagemap-shmem image.
//   - Anonymous hugetlb memory (MAP_HUGETLB) is an anonymous area whose
//     vma_entry.flags carry MAP_HUGETLB (CRIU sets it from VmFlags "ht")
//     and the page size's MAP_HUGE_* bits (CRIU's MAP_HUGETLB_2MB, ...);
//     a shared one's content is saved as other shared anonymous
//     memory's, VMA_ANON_SHARED: the form CRIU writes where the kernel
//     has no hugetlb memfds, and restores everywhere.
//     Where the kernel has them, CRIU writes a shared one as the
//     mapping of a hugetlb memfd ("/anon_hugepage", memfd.img's
//     hugetlb_flag), which ckpt restores as one.
//   - A file unlinked while it keeps other links (glibc's sem_open),
//     dumped with --link-remap, is written as CRIU writes it then: a
//     link of the dump's own, DIR/link_remap.ID, is the target of a
//     LINKED remap, and the restore removes it (package fd, linked.go).
//   - A tree whose root is a PID namespace's init: CRIU names that
//     namespace by its own id, which Load turns into ckpt's OwnPidNsID
//     (criuPidNS).
//   - An AIO ring's area has status VMA_AREA_AIORING alone (no
//     VMA_AREA_REGULAR), flags MAP_SHARED as maps shows it, its pages
//     (header and events) saved whole, and an aio_ring_entry in mm.aios
//     (id = the ring's address, ring_len, nr_req as CRIU estimates it).
//
// Where ckpt's images differ from CRIU's, and why:
//
//   - The saved auxv words past CRIU's limit (a 6.x kernel's native auxv
//     has more entries) go into mm_entry field AuxvRestField, unknown to
//     CRIU, which protobuf parsers skip: ckpt keeps the whole auxv,
//     CRIU restores the first CRIUAuxvWords words, as it does with its
//     own dumps.
//   - The thread registers of an ia32 task carry fs_base/gs_base as the
//     kernel shows them to a 64-bit tracer; CRIU writes 0 and keeps the
//     TLS in the GDT entries only. ckpt's restore takes the base from
//     the GDT entry a selector names (x86.TLSSelectorBase), so both work.
//   - Images CRIU writes that ckpt does not: stats-dump.img, cgroup.img
//     (tc.cg_set), the images of the namespaces ckpt does not restore
//     (netns, userns, ...: ckpt refuses a task in one of its own),
//     seccomp and tmpfs. CRIU restores without them.
//   - A SysV shm segment's contents follow its entry in ipcns-shm-ID.img
//     (CRIU 3.17 reads that form; it writes them in_pagemaps).
//   - Bytes queued for a pty end that no file opens (typed on a locked
//     pair's master) are in that end's tty_info_entry, field
//     TtyInfoDataField, which CRIU's schema lacks: CRIU refuses a
//     tty-data.img entry of an end with no file, and dumps no such bytes
//     itself.
//   - Inherited terminals (a shell job's) have tty-info ids from
//     0x40000000 on, apart from the pty ends' (CRIU gives external ttys
//     other ids, and restores them only with --inherit-fd anyway).
//   - POSIX message queues, which CRIU does not dump: ckpt writes each
//     open file of one as an EXT entry of files.img (CRIU's type for
//     files a plugin restores: CRIU refuses the dump for want of the
//     plugin, crit shows an external file) and the queues in
//     posix-mq.img, ckpt's own image in the format of CRIU's SysV
//     message-queue image (IPCNS_MSG, which crit shows), with what a
//     SysV queue has not (name, mq_attr, notification, open files) in
//     fields of ckpt's own; mapping in posixmq.go. CRIU does not read
//     it (it reads SysV queues from ipcns-msg-ID.img only).
//   - Images ckpt writes that CRIU does not read: timens-1.img for a
//     tree without a time namespace (ckpt's clocks at the dump, for a
//     restore where they are behind), and cpuinfo.img unless
//     --cpu-cap=none (CRIU's default dump writes none). CRIU's
//     timens-0.img and stats images are not read by ckpt.
//   - An established socket an MPTCP listener accepted from a plain TCP
//     client is a TCP socket (the kernel drops its MPTCP context at the
//     handshake) that accept names "MPTCP" after its listener
//     (system.sockprotoname); its inet_sk_entry says proto 6 (TCP), as
//     CRIU, which finds it among the TCP sockets of sock_diag, would
//     write it. Restored, it is the same TCP socket under the name
//     "TCP": the name is the one difference a program can see
//     (getsockopt SOL_MPTCP fails the same way on both;
//     internal/kinds/fd/tcprepair.go, mptcpEstablished).
//   - A memfd of huge pages (MFD_HUGETLB) has CRIU's
//     memfd_inode_entry.hugetlb_flag (MFD_HUGETLB and the MFD_HUGE_*
//     size bits); its shared mappings are memfd areas as any memfd's.
//     CRIU on a kernel with hugetlb memfds writes a shared anonymous
//     MAP_HUGETLB area as such a memfd area with MAP_HUGETLB in its
//     vma flags, which ckpt's restore still refuses by name (not tried
//     with a CRIU dump yet).
//   - A file unlinked while it keeps other links, dumped without
//     --link-remap (the default), has its other name in reg_file_entry
//     field 170300 (regLinkedAtField, linkedname.go), and no remap: the
//     dump changes nothing on disk and restores any number of times.
//     CRIU skips the field, finds no file at the unlinked path and
//     refuses the restore; a LINKED remap to the other name (as older
//     ckpt wrote, and still reads) had CRIU delete that name after its
//     restore, taking it for a link_remap link of its own.
//   - Socket state CRIU's images have no field for is kept in fields of
//     ckpt's own (sockext.go), which CRIU skips: a netlink socket's
//     SOCK_DGRAM type (CRIU makes every netlink socket SOCK_RAW) and a
//     UDP socket's multicast groups, source filters and multicast
//     options (CRIU restores the socket without them).
//   - A CRIU 3.17 dump of shared anonymous memory on Linux 6.1 names it
//     a memfd (memfd.img), which ckpt restores as one; a file area of a
//     kind ckpt does not map is refused naming its type (Dump.RegFile).
const (
	// CRIUAuxvWords is CRIU's AT_VECTOR_SIZE on x86: the most 64-bit
	// words of mm_saved_auxv it restores (criu/arch/x86/include/asm/
	// types.h); it refuses an mm image with more.
	CRIUAuxvWords = 44
	// AuxvRestField is the mm_entry field number where ckpt keeps the
	// saved auxv words past CRIUAuxvWords: packed varints, a field CRIU's
	// schema (images/mm.proto, fields 1-17) does not have.
	AuxvRestField protowire.Number = 170001
)

// RootIDs is inventory.img's root_ids: the ids of the dumping tool,
// which CRIU compares with the root task's to tell what it shares with
// the restorer. nTasks is how many tasks the tree has (their ids are
// 1..nTasks); ownPidNS says the tree's root is the init of a PID
// namespace of its own, which the restorer's (id 1) is not.
func RootIDs(nTasks int, ownPidNS bool) *criucore.TaskKobjIdsEntry {
	id := proto.Uint32(uint32(nTasks + 1))
	ids := &criucore.TaskKobjIdsEntry{VmId: id, FilesId: id, FsId: id, SighandId: id}
	if ownPidNS {
		ids.PidNsId = proto.Uint32(OwnPidNsID - 1)
	}
	return ids
}

// PutSavedAuxv stores raw, the bytes of /proc/PID/auxv (64-bit or, for
// an ia32 task, 32-bit words), into m as CRIU does: little-endian 64-bit
// words, at most CRIUAuxvWords of them in mm_saved_auxv, the rest in
// field AuxvRestField.
func PutSavedAuxv(m *mm.MmEntry, raw []byte) {
	var words []uint64
	for off := 0; off < len(raw); off += 8 {
		var w [8]byte
		copy(w[:], raw[off:])
		words = append(words, binary.LittleEndian.Uint64(w[:]))
	}
	n := min(len(words), CRIUAuxvWords)
	m.MmSavedAuxv = words[:n:n]
	var unknown []byte
	for b := m.ProtoReflect().GetUnknown(); len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			break
		}
		if num != AuxvRestField {
			unknown = append(unknown, b[:n+m]...)
		}
		b = b[n+m:]
	}
	if rest := words[n:]; len(rest) > 0 {
		var packed []byte
		for _, w := range rest {
			packed = protowire.AppendVarint(packed, w)
		}
		unknown = protowire.AppendTag(unknown, AuxvRestField, protowire.BytesType)
		unknown = protowire.AppendBytes(unknown, packed)
	}
	m.ProtoReflect().SetUnknown(unknown)
}

// SavedAuxv returns the saved auxv of m as the bytes PR_SET_MM_MAP
// takes: mm_saved_auxv's words and those of field AuxvRestField, if
// any, little-endian.
func SavedAuxv(m *mm.MmEntry) ([]byte, error) {
	words := append([]uint64(nil), m.GetMmSavedAuxv()...)
	for b := m.ProtoReflect().GetUnknown(); len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("mm image: unknown fields: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num != AuxvRestField {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, fmt.Errorf("mm image: field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		if typ != protowire.BytesType {
			return nil, fmt.Errorf("mm image: field %d (rest of the auxv): wire type %d", num, typ)
		}
		packed, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("mm image: field %d (rest of the auxv): %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		for len(packed) > 0 {
			w, k := protowire.ConsumeVarint(packed)
			if k < 0 {
				return nil, fmt.Errorf("mm image: field %d (rest of the auxv): %w", num, protowire.ParseError(k))
			}
			words = append(words, w)
			packed = packed[k:]
		}
	}
	out := make([]byte, 0, 8*len(words))
	for _, w := range words {
		out = binary.LittleEndian.AppendUint64(out, w)
	}
	return out, nil
}

// dropVsyscall takes [vsyscall] out of a CRIU mm image: it is the
// kernel's emulated page, present in every mm of a 64-bit exec, not
// something a restore maps.
func dropVsyscall(m *mm.MmEntry) {
	vmas := m.GetVmas()[:0]
	for _, v := range m.GetVmas() {
		if v.GetStatus()&image.VMAAreaVsyscall == 0 {
			vmas = append(vmas, v)
		}
	}
	m.Vmas = vmas
}

// FromCRIU tells a dump written by CRIU from one of ckpt's: CRIU's
// root_ids hold the ids of every namespace of the dumping tool, ckpt's
// name no mount or network namespace (RootIDs).
func (d *Dump) FromCRIU() bool {
	r := d.Inventory.GetRootIds()
	return r.GetMntNsId() != 0 || r.GetNetNsId() != 0
}

// criuPersonality turns the personality of a CRIU dump's task core back
// into the value it was: CRIU reads /proc/PID/personality, which the
// kernel prints as 8 hex digits, with atoi, so that ADDR_NO_RANDOMIZE
// (0x40000, "00040000") is written as 40000 (criu/cr-dump.c,
// get_task_personality, up to v4.2 at least). The decimal digits of the
// written value are the hex digits that were read; digits from the
// first a-f on were lost by atoi and stay lost. CRIU itself does not
// restore a personality.
func criuPersonality(tc *criucore.TaskCoreEntry) {
	if tc == nil || tc.Personality == nil {
		return
	}
	v, err := strconv.ParseUint(strconv.FormatUint(uint64(tc.GetPersonality()), 10), 16, 32)
	if err != nil {
		return // a value of 8 decimal digits at most always parses
	}
	tc.Personality = proto.Uint32(uint32(v))
}

// tcpKeepaliveFromOpts fills the TCP keepalive settings of a stream
// socket's sk_opts from its tcp_opts where sk_opts lacks them: CRIU 4.x
// writes them in tcp_opts only (sk_opts' tcp_keep* are deprecated in
// images/sk-opts.proto), CRIU 3.17 in sk_opts only, ckpt in both. A
// value CRIU left out (0: not recorded, which the kernel refuses) stays
// out, and the restore leaves the socket's default.
func tcpKeepaliveFromOpts(isk *skinet.InetSkEntry) {
	to, o := isk.GetTcpOpts(), isk.GetOpts()
	if to == nil || o == nil {
		return
	}
	if o.TcpKeepcnt == nil && to.GetKeepcnt() != 0 {
		o.TcpKeepcnt = proto.Uint32(to.GetKeepcnt())
	}
	if o.TcpKeepidle == nil && to.GetKeepidle() != 0 {
		o.TcpKeepidle = proto.Uint32(to.GetKeepidle())
	}
	if o.TcpKeepintvl == nil && to.GetKeepintvl() != 0 {
		o.TcpKeepintvl = proto.Uint32(to.GetKeepintvl())
	}
}

// nsIDs are the namespace ids of task_kobj_ids_entry, by kind: get and
// clear.
var nsIDs = []struct {
	what  string
	get   func(*criucore.TaskKobjIdsEntry) uint32
	clear func(*criucore.TaskKobjIdsEntry)
	// restored: ckpt restores a namespace of this kind of the tree's
	// own (package ns); the others must be the restorer's.
	restored bool
}{
	{"PID", (*criucore.TaskKobjIdsEntry).GetPidNsId, func(e *criucore.TaskKobjIdsEntry) { e.PidNsId = nil }, true},
	{"UTS", (*criucore.TaskKobjIdsEntry).GetUtsNsId, func(e *criucore.TaskKobjIdsEntry) { e.UtsNsId = nil }, true},
	{"IPC", (*criucore.TaskKobjIdsEntry).GetIpcNsId, func(e *criucore.TaskKobjIdsEntry) { e.IpcNsId = nil }, true},
	{"mount", (*criucore.TaskKobjIdsEntry).GetMntNsId, func(e *criucore.TaskKobjIdsEntry) { e.MntNsId = nil }, true},
	{"network", (*criucore.TaskKobjIdsEntry).GetNetNsId, func(e *criucore.TaskKobjIdsEntry) { e.NetNsId = nil }, false},
	{"user", (*criucore.TaskKobjIdsEntry).GetUserNsId, func(e *criucore.TaskKobjIdsEntry) { e.UserNsId = nil }, false},
	{"cgroup", (*criucore.TaskKobjIdsEntry).GetCgroupNsId, func(e *criucore.TaskKobjIdsEntry) { e.CgroupNsId = nil }, false},
	{"time", (*criucore.TaskKobjIdsEntry).GetTimeNsId, func(e *criucore.TaskKobjIdsEntry) { e.TimeNsId = nil }, false},
}

// shareDumpersNamespaces clears in ids the namespace ids that root, the
// dump's root_ids, has too: CRIU writes every namespace's id, and those
// of the dumping tool are namespaces the tree shares with it, which a
// restore leaves as the restorer's; ckpt's images write only the ids of
// a tree's own namespaces (and root_ids name none of them).
func shareDumpersNamespaces(ids, root *criucore.TaskKobjIdsEntry) {
	if ids == nil || root == nil {
		return
	}
	for _, k := range nsIDs {
		if r := k.get(root); r != 0 && k.get(ids) == r {
			k.clear(ids)
		}
	}
}

// criuPidNS gives p, a task of a CRIU dump, ckpt's id of the tree's own
// PID namespace, OwnPidNsID, in place of CRIU's: a pid_ns_id left once
// the dumper's namespaces are cleared is the namespace whose init is
// the root (CRIU dumps a tree in a PID namespace only from its init, and
// no namespace nested below it; cr-dump.c), named by CRIU's one counter
// for every kind of namespace. The root comes first in pstree.img.
func (d *Dump) criuPidNS(p *Process) {
	id := p.IDs.GetPidNsId()
	if id == 0 {
		return
	}
	if d.criuPidNsID == 0 {
		d.criuPidNsID = id
	}
	if id == d.criuPidNsID {
		p.IDs.PidNsId = proto.Uint32(OwnPidNsID)
	}
}

// criuRefusal says why p, loaded from a dump, cannot be restored by ckpt
// though the images are sound: state only CRIU writes (namespaces of
// kinds ckpt does not restore, seccomp, which ckpt refuses at
// dump), or nil.
func (d *Dump) criuRefusal(p *Process) error {
	for _, k := range nsIDs {
		if id := k.get(p.IDs); id != 0 && !k.restored {
			return fmt.Errorf("task %d is in a %s namespace of its own (id %d): ckpt restores tasks into its own %s namespace only", p.Pid, k.what, id, k.what)
		}
	}
	if m := p.Core.GetThreadCore().GetSeccompMode(); m != criucore.SeccompMode_disabled {
		return fmt.Errorf("task %d runs under seccomp (mode %v): not restored by ckpt", p.Pid, m)
	}
	return nil
}
