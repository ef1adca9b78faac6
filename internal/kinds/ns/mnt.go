//go:build linux && amd64

package ns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mnt"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
	"github.com/ckpt/ckpt/internal/ckerr"
	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/procfs"
)

// A mount namespace is its mounts (mountpoints-ID.img, one mnt_entry
// per line of /proc/PID/mountinfo). The restore makes the namespace as a
// copy of the restorer's (CLONE_NEWNS) and turns the copy into the dumped
// one: it unmounts what the dumped namespace lacked, sets propagation and
// per-mount flags, and makes what the copy lacks from what can be made
// exactly: bind mounts of paths that exist (in the copy or in mounts made
// before), and new proc, sysfs and empty tmpfs mounts. Any other
// difference is refused by name, at dump against ckpt's namespace then,
// and again at restore against the restorer's.
//
// The changes are made by the restored task itself (injected mount and
// umount2): a multi-threaded ckpt cannot enter a mount namespace. A proc
// mount shows the PID namespace of the task that mounts it, so one of a
// PID namespace of the tree is mounted by that namespace's init once it
// exists.

// perMountFlags are the per-mount options of mountinfo and their MS_
// flags (include/uapi/linux/mount.h; proc_self_mountinfo show_mnt_opts).
var perMountFlags = []struct {
	name string
	flag uint64
}{
	{"ro", unix.MS_RDONLY},
	{"nosuid", unix.MS_NOSUID},
	{"nodev", unix.MS_NODEV},
	{"noexec", unix.MS_NOEXEC},
	{"noatime", unix.MS_NOATIME},
	{"nodiratime", unix.MS_NODIRATIME},
	{"relatime", unix.MS_RELATIME},
	{"nosymfollow", unix.MS_NOSYMFOLLOW},
}

// mountFlags turns per-mount options into MS_ flags.
func mountFlags(opts string) (uint64, error) {
	var f uint64
	for _, o := range strings.Split(opts, ",") {
		if o == "rw" || o == "" {
			continue
		}
		found := false
		for _, p := range perMountFlags {
			if p.name == o {
				f |= p.flag
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown mount option %q", o)
		}
	}
	return f, nil
}

// flagOptions is mountFlags backwards.
func flagOptions(f uint64) string {
	out := []string{"rw"}
	if f&unix.MS_RDONLY != 0 {
		out[0] = "ro"
	}
	for _, p := range perMountFlags[1:] {
		if f&p.flag != 0 {
			out = append(out, p.name)
		}
	}
	return strings.Join(out, ",")
}

// fsTypes are the filesystem types of mnt_entry.fstype (CRIU's fstype
// enum) that ckpt names; others are UNSUPPORTED (0) with their fsname.
var fsTypes = map[string]uint32{"proc": 1, "sysfs": 2, "devtmpfs": 3, "binfmt_misc": 4, "tmpfs": 5, "devpts": 6,
	"pstore": 8, "securityfs": 9, "fusectl": 10, "debugfs": 11, "cgroup": 12, "mqueue": 14, "autofs": 18, "tracefs": 19, "cgroup2": 23}

// kdev is a device number as the kernel packs it inside (MKDEV of
// include/linux/kdev_t.h), as mnt_entry.root_dev holds it.
func kdev(major, minor int) uint32 { return uint32(major)<<20 | uint32(minor)&0xfffff }

// toEntry is a mountinfo line as a mnt_entry.
func toEntry(m procfs.Mount) (*mnt.MntEntry, error) {
	flags, err := mountFlags(m.Options)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", m.Point, err)
	}
	var sbFlags uint32
	var super []string
	for _, o := range strings.Split(m.Super, ",") {
		switch o {
		case "ro":
			sbFlags |= unix.MS_RDONLY
		case "rw", "":
		default:
			super = append(super, o)
		}
	}
	e := &mnt.MntEntry{
		Fstype: proto.Uint32(fsTypes[m.FSType]), MntId: proto.Uint32(uint32(m.ID)),
		RootDev: proto.Uint32(kdev(m.Major, m.Minor)), ParentMntId: proto.Uint32(uint32(m.Parent)),
		Flags: proto.Uint32(uint32(flags)), Root: proto.String(m.Root), Mountpoint: proto.String(m.Point),
		Source: proto.String(m.Source), Options: proto.String(strings.Join(super, ",")),
		Fsname: proto.String(m.FSType), SbFlags: proto.Uint32(sbFlags),
	}
	if m.Shared != 0 {
		e.SharedId = proto.Uint32(uint32(m.Shared))
	}
	if m.Master != 0 {
		e.MasterId = proto.Uint32(uint32(m.Master))
	}
	if m.Unbindable {
		// CRIU keeps unbindable in flags as MS_UNBINDABLE.
		e.Flags = proto.Uint32(uint32(flags | unix.MS_UNBINDABLE))
	}
	return e, nil
}

// fromEntry is a mnt_entry as a mountinfo line.
func fromEntry(e *mnt.MntEntry) procfs.Mount {
	super := "rw"
	if e.GetSbFlags()&unix.MS_RDONLY != 0 {
		super = "ro"
	}
	if e.GetOptions() != "" {
		super += "," + e.GetOptions()
	}
	typ := e.GetFsname()
	if typ == "" {
		for name, n := range fsTypes {
			if n == e.GetFstype() {
				typ = name
			}
		}
	}
	return procfs.Mount{
		ID: int(e.GetMntId()), Parent: int(e.GetParentMntId()),
		Major: int(e.GetRootDev() >> 20), Minor: int(e.GetRootDev() & 0xfffff),
		Root: e.GetRoot(), Point: e.GetMountpoint(), Options: flagOptions(uint64(e.GetFlags())),
		Shared: int(e.GetSharedId()), Master: int(e.GetMasterId()), Unbindable: e.GetFlags()&unix.MS_UNBINDABLE != 0,
		FSType: typ, Source: e.GetSource(), Super: super,
	}
}

// Mount operations of a plan.
const (
	opUmount = iota
	opPropagate
	opRemount
	opBind
	opMount
)

// mountOp is one change that turns the copy of the restorer's namespace
// into the dumped one, run by the restored task.
type mountOp struct {
	op                           int
	source, target, fstype, data string
	flags                        uint64
	// pidNS is the PID namespace of the task that runs the operation:
	// for a new proc mount the one it shows (its init mounts it), else
	// the namespace creator's.
	pidNS uint32
	// mountID is the dumped mount an opMount makes.
	mountID int
}

func (o mountOp) String() string {
	switch o.op {
	case opUmount:
		return "umount " + o.target
	case opPropagate:
		return fmt.Sprintf("set propagation %#x of %s", o.flags, o.target)
	case opRemount:
		return fmt.Sprintf("remount %s %s", o.target, flagOptions(o.flags))
	case opBind:
		return fmt.Sprintf("bind %s on %s", o.source, o.target)
	}
	return fmt.Sprintf("mount %s %s on %s (%s)", o.fstype, o.source, o.target, o.data)
}

// fresh are the filesystems whose new mount is exactly the dumped one
// when nothing has the same superblock: proc and sysfs show the kernel's
// state (of the mounting task's PID and network namespaces), and an
// empty tmpfs is nothing but its options.
var fresh = map[string]bool{"proc": true, "sysfs": true, "tmpfs": true}

// planMounts compares want (the dumped namespace) with cur (the
// restorer's, which the new namespace is a copy of) and returns the
// changes, or the first difference that cannot be made. procNS gives
// the PID namespace of each new proc mount by its mount id (0: ckpt's),
// creatorNS the PID namespace of the task that makes the namespace.
func planMounts(cur, want []procfs.Mount, procNS map[int]uint32, creatorNS uint32) ([]mountOp, error) {
	cm, ck := byID(cur)
	wm, wk := byID(want)
	cr, wr := rootOf(cur, cm), rootOf(want, wm)
	if cr == nil || wr == nil {
		return nil, errors.New("no root mount")
	}
	if !same(*cr, *wr) {
		return nil, fmt.Errorf("its root filesystem (%s %s, root %s) is not the restorer's (%s %s, root %s): a namespace after pivot_root or chroot of its own cannot be made", wr.FSType, wr.Source, wr.Root, cr.FSType, cr.Source, cr.Root)
	}
	match := map[int]int{wr.ID: cr.ID} // want id -> cur id
	matched := map[int]bool{cr.ID: true}
	var walk func(w, c int)
	walk = func(w, c int) {
		for _, wc := range wk[w] {
			for _, cc := range ck[c] {
				if !matched[cc] && same(*wm[wc], *cm[cc]) {
					match[wc], matched[cc] = cc, true
					walk(wc, cc)
					break
				}
			}
		}
	}
	walk(wr.ID, cr.ID)

	// Propagation first, so that no later change reaches the restorer's
	// namespace through a peer; then unmounts, then per-mount flags.
	var ops, remounts []mountOp
	wantOf := map[int]*procfs.Mount{} // cur id -> the dumped mount it is
	for w, c := range match {
		wantOf[c] = wm[w]
	}
	// Propagation of the mounts both have.
	// covered tells a mount of the copy that another covers (at the same
	// point); kept counts only mounts that stay (for what comes after
	// the unmounts).
	covered := func(id int, kept bool) bool {
		for _, k := range ck[id] {
			if cm[k].Point == cm[id].Point && (!kept || matched[k]) {
				return true
			}
		}
		return false
	}
	allPrivate := true
	for _, w := range want {
		if w.Shared != 0 || w.Master != 0 || w.Unbindable {
			allPrivate = false
		}
	}
	curPrivate := true
	for _, c := range cur {
		if matched[c.ID] && (c.Shared != 0 || c.Master != 0 || c.Unbindable) {
			curPrivate = false
		}
	}
	if allPrivate && !curPrivate {
		ops = append(ops, mountOp{op: opPropagate, target: "/", flags: unix.MS_REC | unix.MS_PRIVATE})
	}
	ckptGroups := map[int]bool{}
	for _, c := range cur {
		if c.Shared != 0 {
			ckptGroups[c.Shared] = true
		}
	}
	newGroups := map[int]int{}
	for _, w := range want {
		if w.Shared != 0 && !ckptGroups[w.Shared] {
			newGroups[w.Shared]++
		}
	}
	for _, w := range want {
		if n := newGroups[w.Shared]; n > 1 {
			return nil, fmt.Errorf("mounts %s and others are peers (shared:%d) of a group of their own: peer groups cannot be made yet", w.Point, w.Shared)
		}
	}
	propagation := func(w procfs.Mount, c *procfs.Mount) ([]uint64, error) {
		var fl []uint64
		switch {
		case w.Master != 0 && !ckptGroups[w.Master]:
			return nil, fmt.Errorf("mount %s is a slave of peer group %d, which the restorer's namespace lacks", w.Point, w.Master)
		case w.Master != 0 && (c == nil || c.Shared != w.Master):
			return nil, fmt.Errorf("mount %s is a slave of peer group %d, which its copy is not a peer of", w.Point, w.Master)
		case w.Master != 0 && c.Master == w.Master && c.Shared == w.Shared:
		case w.Master != 0:
			fl = append(fl, unix.MS_SLAVE)
			if w.Shared != 0 {
				fl = append(fl, unix.MS_SHARED)
			}
		case w.Shared != 0 && ckptGroups[w.Shared]:
			if c == nil || c.Shared != w.Shared || c.Master != 0 {
				return nil, fmt.Errorf("mount %s is a peer of the restorer's peer group %d, which its copy is not", w.Point, w.Shared)
			}
		case w.Shared != 0:
			if c == nil || c.Shared != 0 || c.Master != 0 || c.Unbindable {
				fl = append(fl, unix.MS_PRIVATE)
			}
			fl = append(fl, unix.MS_SHARED)
		case c != nil && (c.Shared != 0 || c.Master != 0) && !(allPrivate && !curPrivate):
			fl = append(fl, unix.MS_PRIVATE)
		}
		if w.Unbindable && (c == nil || !c.Unbindable) {
			fl = append(fl, unix.MS_UNBINDABLE)
		}
		return fl, nil
	}
	for _, w := range want {
		cid, ok := match[w.ID]
		if !ok {
			continue
		}
		c := cm[cid]
		fl, err := propagation(w, c)
		if err != nil {
			return nil, err
		}
		if len(fl) > 0 && covered(cid, false) {
			return nil, fmt.Errorf("mount %s needs other propagation but another mount covers it", w.Point)
		}
		for _, f := range fl {
			ops = append(ops, mountOp{op: opPropagate, target: w.Point, flags: f})
		}
		wf, err1 := mountFlags(w.Options)
		cf, err2 := mountFlags(c.Options)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("mount %s: %w", w.Point, err)
		}
		if wf != cf {
			if covered(cid, true) {
				return nil, fmt.Errorf("mount %s has other flags (%s) than the restorer's (%s) but another mount covers it", w.Point, w.Options, c.Options)
			}
			remounts = append(remounts, mountOp{op: opRemount, target: w.Point, flags: unix.MS_REMOUNT | unix.MS_BIND | wf})
		}
	}

	// Unmount what the dumped namespace lacks: the top of each such
	// subtree (it takes its subtree along, MNT_DETACH), once for it and
	// once for every lacking mount stacked on it at the same point.
	var tops []*procfs.Mount
	for _, c := range cur {
		c := c
		if matched[c.ID] || !matched[c.Parent] {
			continue
		}
		if err := noneMatched(c.ID, ck, matched); err != nil {
			return nil, fmt.Errorf("mount %s (%s): %w", c.Point, c.FSType, err)
		}
		// An unmount under a mount that is a peer of the restorer's
		// would propagate there.
		if p := cm[c.Parent]; p.Shared != 0 && wantOf[c.Parent] != nil && wantOf[c.Parent].Shared == p.Shared {
			return nil, fmt.Errorf("mount %s (%s) is not in the dumped namespace, but its parent %s is shared with the restorer's namespace: unmounting it would unmount it there too", c.Point, c.FSType, p.Point)
		}
		tops = append(tops, &c)
	}
	for i := len(tops) - 1; i >= 0; i-- {
		c := tops[i]
		n := 1
		for id := c.ID; ; {
			next := -1
			for _, k := range ck[id] {
				if cm[k].Point == c.Point {
					next = k
				}
			}
			if next < 0 {
				break
			}
			n, id = n+1, next
		}
		for ; n > 0; n-- {
			ops = append(ops, mountOp{op: opUmount, target: c.Point})
		}
	}

	ops = append(ops, remounts...)

	// Make what the copy lacks, parents first.
	var made []procfs.Mount // made so far, for bind sources
	done := map[int]bool{}
	for id := range match {
		done[id] = true
	}
	var todo []procfs.Mount
	for _, w := range want {
		if !done[w.ID] {
			todo = append(todo, w)
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].ID < todo[j].ID })
	for len(todo) > 0 {
		progress := false
		var rest []procfs.Mount
		for _, w := range todo {
			if !done[w.Parent] {
				rest = append(rest, w)
				continue
			}
			progress = true
			done[w.ID] = true
			if p, ok := match[w.Parent]; ok && cm[p].Shared != 0 && wm[w.Parent].Shared == cm[p].Shared {
				return nil, fmt.Errorf("mount %s is under %s, which is shared with the restorer's namespace: making it would make it there too", w.Point, wm[w.Parent].Point)
			}
			op, err := makeMount(w, cur, matched, made, procNS, creatorNS)
			if err != nil {
				return nil, fmt.Errorf("mount %s (%s %s): %w", w.Point, w.FSType, w.Source, err)
			}
			if op.pidNS != creatorNS && len(wk[w.ID]) > 0 {
				return nil, fmt.Errorf("mount %s (proc of another PID namespace) has mounts on it: not supported yet", w.Point)
			}
			ops = append(ops, op)
			wf, _ := mountFlags(w.Options)
			if op.op == opBind {
				ops = append(ops, mountOp{op: opRemount, target: w.Point, flags: unix.MS_REMOUNT | unix.MS_BIND | wf, pidNS: op.pidNS})
			}
			fl, err := propagation(w, nil)
			if err != nil {
				return nil, err
			}
			for _, f := range fl {
				ops = append(ops, mountOp{op: opPropagate, target: w.Point, flags: f, pidNS: op.pidNS})
			}
			made = append(made, w)
		}
		if !progress {
			return nil, fmt.Errorf("mount %s: its parent mount %d is not in the namespace", rest[0].Point, rest[0].Parent)
		}
		todo = rest
	}
	return ops, nil
}

// makeMount is how to make mount w: a bind of a path that shows its
// superblock (in the copy, or a mount made before it), or a fresh mount.
func makeMount(w procfs.Mount, cur []procfs.Mount, matched map[int]bool, made []procfs.Mount, procNS map[int]uint32, creatorNS uint32) (mountOp, error) {
	wf, err := mountFlags(w.Options)
	if err != nil {
		return mountOp{}, err
	}
	var cands []procfs.Mount
	for _, c := range cur {
		if matched[c.ID] {
			cands = append(cands, c)
		}
	}
	cands = append(cands, made...)
	best := -1
	for i, c := range cands {
		if c.Major == w.Major && c.Minor == w.Minor && c.FSType == w.FSType && within(w.Root, c.Root) &&
			(best < 0 || len(c.Root) > len(cands[best].Root)) {
			best = i
		}
	}
	if best >= 0 {
		c := cands[best]
		src := path.Join(c.Point, strings.TrimPrefix(w.Root, c.Root))
		return mountOp{op: opBind, source: src, target: w.Point, flags: unix.MS_BIND, pidNS: creatorNS}, nil
	}
	if !fresh[w.FSType] {
		return mountOp{}, errors.New("not in the restorer's namespace, and only proc, sysfs and empty tmpfs mounts and bind mounts of existing paths can be made")
	}
	if w.Root != "/" {
		return mountOp{}, fmt.Errorf("a new %s mounted from %s inside it cannot be made", w.FSType, w.Root)
	}
	var data []string
	superRO := false
	for _, o := range strings.Split(w.Super, ",") {
		switch o {
		case "ro":
			superRO = true
		case "rw", "":
		default:
			data = append(data, o)
		}
	}
	if superRO && wf&unix.MS_RDONLY == 0 {
		return mountOp{}, errors.New("a read-only superblock under a read-write mount cannot be made")
	}
	op := mountOp{op: opMount, source: w.Source, target: w.Point, fstype: w.FSType, data: strings.Join(data, ","), flags: wf, pidNS: creatorNS, mountID: w.ID}
	if w.FSType == "proc" {
		op.pidNS = procNS[w.ID]
	}
	return op, nil
}

// within tells whether path p is dir or below it.
func within(p, dir string) bool {
	return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/")
}

// same tells whether two mounts are the same mount of the same
// superblock at the same place.
func same(a, b procfs.Mount) bool {
	return a.Point == b.Point && a.Major == b.Major && a.Minor == b.Minor && a.Root == b.Root && a.FSType == b.FSType
}

// byID indexes mounts by id and lists the children of each, by id.
func byID(ms []procfs.Mount) (map[int]*procfs.Mount, map[int][]int) {
	m := map[int]*procfs.Mount{}
	kids := map[int][]int{}
	for i := range ms {
		m[ms[i].ID] = &ms[i]
	}
	for _, x := range ms {
		kids[x.Parent] = append(kids[x.Parent], x.ID)
	}
	for _, k := range kids {
		sort.Ints(k)
	}
	return m, kids
}

// rootOf is the mount of "/" whose parent is not in the namespace.
func rootOf(ms []procfs.Mount, m map[int]*procfs.Mount) *procfs.Mount {
	for i := range ms {
		// The root's parent is outside the namespace's view, or the
		// root itself where it is the initial rootfs (an initramfs).
		if _, ok := m[ms[i].Parent]; (!ok || ms[i].Parent == ms[i].ID) && ms[i].Point == "/" {
			return &ms[i]
		}
	}
	return nil
}

// noneMatched refuses a subtree to unmount that holds a mount to keep.
func noneMatched(id int, kids map[int][]int, matched map[int]bool) error {
	for _, k := range kids[id] {
		if matched[k] {
			return errors.New("the dumped namespace lacks it but has a mount on it")
		}
		if err := noneMatched(k, kids, matched); err != nil {
			return err
		}
	}
	return nil
}

// mntAdvice says what to do with a mount namespace that cannot be made.
const mntAdvice = "; undo that difference, or run ckpt inside that namespace (nsenter --mount --target PID) so that it is ckpt's"

// mntDump is what the dump knows of one mount namespace while it is
// collected: its mounts and, for proc mounts, the PID namespace they
// show (a link, resolved to an id once every task has its ids).
type mntDump struct {
	id      uint32
	creator int                        // the first task in it
	ids     *criucore.TaskKobjIdsEntry // the creator's
	procs   map[int]string
}

// collectMounts reads the mounts of task pid's mount namespace into the
// dump and checks now that they can be made from ckpt's (the restore
// checks again against its own).
func collectMounts(d *model.Dump, id uint32, pid int) (*mntDump, error) {
	want, err := procfs.ReadMountinfo(pid)
	if err != nil {
		return nil, fmt.Errorf("read its mounts: %w", err)
	}
	md := &mntDump{id: id, creator: pid, procs: map[int]string{}}
	cur, err := procfs.ReadMountinfo(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("read ckpt's mounts: %w", err)
	}
	wm, wk := byID(want)
	// Each tmpfs that may have to be made: empty, not empty, or covered.
	tmpfs := map[int]string{}
	for _, w := range want {
		if !fresh[w.FSType] {
			continue
		}
		covered := false
		for _, k := range wk[w.ID] {
			if wm[k].Point == w.Point {
				covered = true
			}
		}
		where := fmt.Sprintf("/proc/%d/root%s", pid, w.Point)
		switch w.FSType {
		case "proc":
			if covered {
				continue // refused below if it must be made
			}
			md.procs[w.ID] = procPidNS(where)
		case "tmpfs":
			if covered {
				tmpfs[w.ID] = "another mount covers it: whether it is empty cannot be told"
				continue
			}
			f, err := os.Open(where)
			if err != nil {
				return nil, fmt.Errorf("tmpfs %s: %w", w.Point, err)
			}
			names, err := f.Readdirnames(1)
			f.Close()
			switch {
			case len(names) > 0:
				tmpfs[w.ID] = fmt.Sprintf("it is not empty (%s, ...): the content of a tmpfs cannot be dumped yet", names[0])
			case err != nil && !errors.Is(err, io.EOF):
				return nil, fmt.Errorf("tmpfs %s: %w", w.Point, err)
			}
		}
	}
	// Check the plan now, PID namespaces aside (Finish checks them).
	ops, err := planMounts(cur, want, map[int]uint32{}, 0)
	if err != nil {
		return nil, ckerr.Unsupported(pid, "its mount namespace", err.Error()+mntAdvice)
	}
	for _, op := range ops {
		if op.op != opMount {
			continue
		}
		w := wm[op.mountID]
		if why, ok := tmpfs[w.ID]; ok && w.FSType == "tmpfs" {
			return nil, ckerr.Unsupported(pid, fmt.Sprintf("its mount namespace's tmpfs %s", w.Point), why)
		}
		if _, ok := md.procs[w.ID]; w.FSType == "proc" && !ok {
			return nil, ckerr.Unsupported(pid, fmt.Sprintf("its mount namespace's proc %s", w.Point), "another mount covers it: its PID namespace cannot be told")
		}
	}
	var es []*mnt.MntEntry
	for _, w := range want {
		e, err := toEntry(w)
		if err != nil {
			return nil, ckerr.Unsupported(pid, "its mount namespace", err.Error()+mntAdvice)
		}
		es = append(es, e)
	}
	if d.Mounts == nil {
		d.Mounts = map[uint32][]*mnt.MntEntry{}
	}
	d.Mounts[id] = es
	return md, nil
}

// restoreMounts turns the copy of the restorer's mount namespace that
// task t is in into mount namespace id of the dump: all of it when t made
// the namespace (creator), else the proc mounts of PID namespace pidNS,
// whose init t is.
func restoreMounts(d *model.Dump, id, pidNS uint32, creator bool, t Task) error {
	es := d.Mounts[id]
	if len(es) == 0 {
		return fmt.Errorf("no mountpoints-%d.img", id)
	}
	cur, err := procfs.ReadMountinfo(os.Getpid())
	if err != nil {
		return fmt.Errorf("read the restorer's mounts: %w", err)
	}
	want := make([]procfs.Mount, len(es))
	procNS := map[int]uint32{}
	for i, e := range es {
		want[i] = fromEntry(e)
		if want[i].FSType == "proc" {
			procNS[want[i].ID] = model.ProcPidNsID(e)
		}
	}
	creatorNS := pidNS
	if !creator {
		// The plan is the namespace creator's: the first process in it
		// (the pstree puts parents first).
		creatorNS = ^uint32(0)
		for _, p := range d.Procs {
			if p.IDs.GetMntNsId() == id {
				creatorNS = p.IDs.GetPidNsId()
				break
			}
		}
	}
	ops, err := planMounts(cur, want, procNS, creatorNS)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if op.pidNS != pidNS {
			continue
		}
		t.Logf("mount namespace %d: %v", id, op)
		if err := runMountOp(op, t); err != nil {
			return fmt.Errorf("%v: %w", op, err)
		}
	}
	return nil
}

// runMountOp runs one mount operation inside the task.
func runMountOp(op mountOp, t Task) error {
	const page = 4096
	put := func(off uint64, s string) (uint64, error) {
		if s == "" {
			return 0, nil
		}
		if len(s) >= page-1 {
			return 0, fmt.Errorf("%.32s...: too long", s)
		}
		return t.PutString(off, s)
	}
	target, err := put(page, op.target)
	if err != nil {
		return err
	}
	if op.op == opUmount {
		_, err := t.Syscall(x86.SysUmount2, target, unix.MNT_DETACH)
		return err
	}
	src, err := put(0, op.source)
	if err != nil {
		return err
	}
	fstype, err := put(2*page, op.fstype)
	if err != nil {
		return err
	}
	if len(op.fstype) > 255 || len(op.data) >= page-256-1 {
		return errors.New("mount data too long")
	}
	data, err := put(2*page+256, op.data)
	if err != nil {
		return err
	}
	_, err = t.Syscall(x86.SysMount, src, target, fstype, op.flags, data)
	return err
}

// procPidNS tells the PID namespace that the proc mounted at where
// shows: "" for ckpt's (its self link names ckpt), else the pid link of
// its PID 1 (a task of the tree, whose links ckpt may read; the host's
// init's it may not), "?" if neither can be read.
func procPidNS(where string) string {
	if self, err := os.Readlink(where + "/self"); err == nil && self == strconv.Itoa(os.Getpid()) {
		return ""
	}
	l, err := os.Readlink(where + "/1/ns/pid")
	if err != nil {
		return "?"
	}
	return l
}
