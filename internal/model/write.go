//go:build linux && amd64

package model

import (
	"os"
	"path/filepath"
	"sort"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	pipedata "github.com/checkpoint-restore/go-criu/v8/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	remap "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	skpacket "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-packet"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// AddFile gives f the next file id, adds it to files.img and returns the id.
func (d *Dump) AddFile(f *fdinfo.FileEntry) uint32 {
	if d.Files == nil {
		d.Files = map[uint32]*fdinfo.FileEntry{}
	}
	id := uint32(len(d.Files) + 1)
	f.Id = proto.Uint32(id)
	d.Files[id] = f
	return id
}

// NextFileID is the id AddFile gives next, for a kind whose entry names
// its own id inside.
func (d *Dump) NextFileID() uint32 { return uint32(len(d.Files) + 1) }

// Write writes every image of the dump into dir except the processes'
// pages, which PagesWriter wrote while they were read. inventory.img
// comes last: its presence marks a whole dump.
func (d *Dump) Write(dir string) error {
	d.Dir = image.Dir{Path: dir}
	fdTables := map[uint32]bool{}
	for _, p := range d.Procs {
		if err := d.writeProc(p, fdTables); err != nil {
			return err
		}
	}
	moved := d.addSkMoved()
	for _, f := range d.Unlisted {
		id := d.AddFile(f)
		if u := f.GetUsk(); u != nil {
			u.Id = proto.Uint32(id)
		}
	}
	d.Unlisted = nil
	ids := make([]uint32, 0, len(d.Files))
	for id := range d.Files {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	files := make([]proto.Message, len(ids))
	for i, id := range ids {
		files[i] = d.Files[id]
	}
	if err := d.Dir.Write(image.FilesName(), image.MagicFiles, files...); err != nil {
		return err
	}
	if d.Clocks != nil {
		if err := d.Dir.Write(image.TimensName(TimensID), image.MagicTimens, d.Clocks); err != nil {
			return err
		}
	}
	ttyData, ttyInfos := d.splitTtyData()
	if len(ttyInfos) > 0 {
		ids := make([]uint32, 0, len(ttyInfos))
		for id := range ttyInfos {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		msgs := make([]proto.Message, len(ids))
		for i, id := range ids {
			msgs[i] = ttyInfos[id]
		}
		if err := d.Dir.Write(image.TtyInfoName(), image.MagicTtyInfo, msgs...); err != nil {
			return err
		}
	}
	if len(ttyData) > 0 {
		ids := make([]uint32, 0, len(ttyData))
		for id := range ttyData {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		msgs := make([]proto.Message, len(ids))
		for i, id := range ids {
			msgs[i] = &tty.TtyDataEntry{TtyId: proto.Uint32(id), Data: ttyData[id]}
		}
		if err := d.Dir.Write(image.TtyDataName(), image.MagicTtyData, msgs...); err != nil {
			return err
		}
	}
	for id, e := range d.UTS {
		if err := d.Dir.Write(image.UtsnsName(id), image.MagicUtsns, e); err != nil {
			return err
		}
	}
	for id, ms := range d.Mounts {
		msgs := make([]proto.Message, len(ms))
		for i, m := range ms {
			msgs[i] = m
		}
		if err := d.Dir.Write(image.MountpointsName(id), image.MagicMnts, msgs...); err != nil {
			return err
		}
	}
	for id, e := range d.IPC {
		if err := d.Dir.Write(image.IpcVarName(id), image.MagicIpcVar, e); err != nil {
			return err
		}
		if s := d.SysV[id]; s != nil {
			if err := d.writeSysV(id, s); err != nil {
				return err
			}
		}
	}
	if s := d.SysV[HostIPC]; s != nil {
		if err := d.writeSysV(HostIPC, s); err != nil {
			return err
		}
	}
	if len(d.FileLocks) > 0 {
		msgs := make([]proto.Message, len(d.FileLocks))
		for i, l := range d.FileLocks {
			msgs[i] = l
		}
		if err := d.Dir.Write(image.FileLocksName(), image.MagicFileLocks, msgs...); err != nil {
			return err
		}
	}
	if d.CPU != nil {
		if err := d.Dir.Write(image.CpuinfoName(), image.MagicCpuinfo, d.CPU); err != nil {
			return err
		}
	}
	for k, sh := range d.Shmem {
		if err := d.writeShmem(sh, k); err != nil {
			return err
		}
	}
	if err := d.writePipes(image.PipesDataName(), image.MagicPipesData, d.Pipes); err != nil {
		return err
	}
	if err := d.writeTcpStreams(); err != nil {
		return err
	}
	if err := d.writeSkQueues(); err != nil {
		return err
	}
	if len(d.Fifos) > 0 {
		if err := d.writePipes(image.FifoDataName(), image.MagicFifoData, d.Fifos); err != nil {
			return err
		}
	}
	if err := d.writeGhosts(moved); err != nil {
		return err
	}
	if len(d.PosixMQs) > 0 {
		if err := d.writePosixMQs(); err != nil {
			return err
		}
	}
	if len(d.Memfds) > 0 {
		inos := make([]uint32, 0, len(d.Memfds))
		for ino := range d.Memfds {
			inos = append(inos, ino)
		}
		sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
		msgs := make([]proto.Message, len(inos))
		for i, ino := range inos {
			msgs[i] = d.Memfds[ino]
		}
		if err := d.Dir.Write(image.MemfdName(), image.MagicMemfd, msgs...); err != nil {
			return err
		}
	}
	ps := make([]proto.Message, len(d.Procs))
	for i, p := range d.Procs {
		ps[i] = p.Pstree
	}
	if err := d.Dir.Write(image.PstreeName(), image.MagicPstree, ps...); err != nil {
		return err
	}
	return d.Dir.Write(image.InventoryName(), image.MagicInventory, d.Inventory)
}

// writeProc writes one process's images; an fd table shared by several
// processes (CLONE_FILES) is written once, with the first of them.
func (d *Dump) writeProc(p *Process, fdTables map[uint32]bool) error {
	if err := d.Dir.Write(image.CoreName(p.Pid), image.MagicCore, p.Core); err != nil {
		return err
	}
	if p.Zombie {
		return nil
	}
	for i, c := range p.Threads {
		if err := d.Dir.Write(image.CoreName(p.Tids[i]), image.MagicCore, c); err != nil {
			return err
		}
	}
	if err := d.Dir.Write(image.IDsName(p.Pid), image.MagicIDs, p.IDs); err != nil {
		return err
	}
	if err := d.Dir.Write(image.MMName(p.Pid), image.MagicMM, p.MM); err != nil {
		return err
	}
	if err := d.Dir.Write(image.FSName(p.Pid), image.MagicFS, p.FS); err != nil {
		return err
	}
	if id := p.FilesID(); !fdTables[id] {
		fdTables[id] = true
		fds := make([]proto.Message, len(p.Fds))
		for i, fd := range p.Fds {
			fds[i] = fd
		}
		if err := d.Dir.Write(image.FdinfoName(id), image.MagicFdinfo, fds...); err != nil {
			return err
		}
	}
	pm := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(p.PagesID)}}
	for _, e := range p.Pagemap {
		pm = append(pm, e)
	}
	return d.Dir.Write(image.PagemapName(p.Pid), image.MagicPagemap, pm...)
}

// writePipes writes pipes-data.img or fifo-data.img: every pipe's size
// and buffered bytes.
func (d *Dump) writePipes(name, magic string, pipes map[uint32]PipeData) error {
	ids := make([]uint32, 0, len(pipes))
	for id := range pipes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	msgs := make([]proto.Message, len(ids))
	data := make([][]byte, len(ids))
	for i, id := range ids {
		pd := pipes[id]
		msgs[i] = &pipedata.PipeDataEntry{PipeId: proto.Uint32(id), Bytes: proto.Uint32(uint32(len(pd.Data))), Size: proto.Uint32(uint32(pd.Size))}
		data[i] = pd.Data
	}
	return d.Dir.WriteWithData(name, magic, msgs, data)
}

// writeGhosts writes each ghost file (its entry, then its contents, not
// in chunks) and remap-fpath.img, which ties files to them; moved are
// the remaps of unix sockets whose file was renamed (addSkMoved).
func (d *Dump) writeGhosts(moved []proto.Message) error {
	if len(d.Remaps) == 0 && len(d.Linked) == 0 && len(moved) == 0 {
		return nil
	}
	for gid, g := range d.Ghosts {
		g.Entry.Size = proto.Uint64(uint64(len(g.Data)))
		if err := d.Dir.WriteWithData(image.GhostFileName(gid), image.MagicGhostFile, []proto.Message{g.Entry}, [][]byte{g.Data}); err != nil {
			return err
		}
	}
	ids := make([]uint32, 0, len(d.Remaps))
	for id := range d.Remaps {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	msgs := make([]proto.Message, len(ids))
	for i, id := range ids {
		msgs[i] = &remap.RemapFilePathEntry{OrigId: proto.Uint32(id), RemapId: proto.Uint32(d.Remaps[id]), RemapType: remap.RemapType_GHOST.Enum()}
	}
	ids = ids[:0]
	for id := range d.Linked {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		msgs = append(msgs, &remap.RemapFilePathEntry{OrigId: proto.Uint32(id), RemapId: proto.Uint32(d.Linked[id]), RemapType: remap.RemapType_LINKED.Enum()})
	}
	msgs = append(msgs, moved...)
	return d.Dir.Write(image.RemapPathName(), image.MagicRemapPath, msgs...)
}

// addSkMoved adds to files.img, for each unix socket whose bound file is
// elsewhere now (SkMoved), a regular-file entry that names where the file
// is, and returns the remap-fpath.img entries that tie the socket to it
// (CRIU's remap_file_path_entry, LINKED: the file is found at the
// remap's path). It runs before files.img is written.
func (d *Dump) addSkMoved() []proto.Message {
	ids := make([]uint32, 0, len(d.SkMoved))
	for id := range d.SkMoved {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var msgs []proto.Message
	for _, id := range ids {
		z := proto.Uint32(0)
		rid := d.AddFile(&fdinfo.FileEntry{
			Type: fdinfo.FdTypes_REG.Enum(),
			Reg: &regfile.RegFileEntry{
				Flags: z, Pos: proto.Uint64(0), Name: proto.String(d.SkMoved[id]),
				Fown: &fown.FownEntry{Uid: z, Euid: z, Signum: z, PidType: z, Pid: z},
			},
		})
		d.Files[rid].Reg.Id = proto.Uint32(rid)
		msgs = append(msgs, &remap.RemapFilePathEntry{OrigId: proto.Uint32(id), RemapId: proto.Uint32(rid), RemapType: remap.RemapType_LINKED.Enum()})
	}
	return msgs
}

// skAddrField is sk_packet_entry's reserved "optional bytes addr = 3"
// (CRIU's images/sk-packet.proto).
const skAddrField = 3

// scmRights is SCM_RIGHTS, the type of a ScmEntry that lists files in
// flight (include/linux/socket.h).
const scmRights = 1

// writeSkQueues writes sk-queues.img, CRIU's sk_packet_entry for each
// queued message followed by its bytes; none when no socket has any.
func (d *Dump) writeSkQueues() error {
	if len(d.SkQueues) == 0 {
		return nil
	}
	ids := make([]uint32, 0, len(d.SkQueues))
	for id := range d.SkQueues {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var msgs []proto.Message
	var data [][]byte
	for _, id := range ids {
		for i, m := range d.SkQueues[id] {
			e := &skpacket.SkPacketEntry{IdFor: proto.Uint32(id), Length: proto.Uint32(uint32(len(m)))}
			if as := d.SkAddrs[id]; i < len(as) && len(as[i]) > 0 {
				// go-criu has no field for it: written as field 3 unknown
				// to its type, as CRIU reserves it (optional bytes addr).
				e.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, skAddrField, protowire.BytesType), as[i]))
			}
			if sc := d.SkScm[id]; i < len(sc) && len(sc[i]) > 0 {
				e.Scm = []*skpacket.ScmEntry{{Type: proto.Uint32(scmRights), Rights: sc[i]}}
			}
			msgs = append(msgs, e)
			data = append(data, m)
		}
	}
	return d.Dir.WriteWithData(image.SkQueuesName(), image.MagicSkQueues, msgs, data)
}

// Size is the total size of the image files in the dump's directory.
func (d *Dump) Size() int64 {
	var n int64
	ents, _ := os.ReadDir(d.Dir.Path)
	for _, e := range ents {
		if fi, err := os.Stat(filepath.Join(d.Dir.Path, e.Name())); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// writeTcpStreams writes one tcp-stream-INO.img per established TCP
// connection.
func (d *Dump) writeTcpStreams() error {
	for ino, t := range d.TcpStreams {
		data := append(append([]byte{}, t.In...), t.Out...)
		if err := d.Dir.WriteWithData(image.TcpStreamName(ino), image.MagicTcpStream, []proto.Message{t.Entry}, [][]byte{data}); err != nil {
			return err
		}
	}
	return nil
}
