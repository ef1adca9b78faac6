//go:build linux && amd64

// Package image reads and writes CRIU-format image files: the only place
// in ckpt where image bytes are framed. Entries are go-criu's protobuf
// types (crit/images); magic numbers come from go-criu's magic table.
// The framing is done here rather than with crit.Encode/Decode because a
// restore must turn a truncated or corrupt file into an error that names
// the file, and must never allocate what a corrupt size field asks for.
package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/checkpoint-restore/go-criu/v8/magic"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/ckerr"
)

// Image kinds, named as in CRIU's magic.h.
const (
	MagicInventory = "INVENTORY"
	MagicPstree    = "PSTREE"
	MagicCore      = "CORE"
	MagicIDs       = "IDS"
	MagicMM        = "MM"
	MagicPagemap   = "PAGEMAP"
	MagicFiles     = "FILES"
	MagicFdinfo    = "FDINFO"
	MagicFS        = "FS"
	MagicPipesData = "PIPES_DATA"
	MagicSkQueues  = "SK_QUEUES"
	MagicTimens    = "TIMENS"
	MagicCpuinfo   = "CPUINFO"
	MagicTtyInfo   = "TTY_INFO"
	MagicUtsns     = "UTSNS"
	MagicIpcVar    = "IPC_VAR"
	MagicMnts      = "MNTS"
	MagicFileLocks = "FILE_LOCKS"
	MagicGhostFile = "GHOST_FILE"
	MagicRemapPath = "REMAP_FPATH"
	MagicMemfd     = "MEMFD_INODE"
	MagicFifoData  = "FIFO_DATA"
	MagicTcpStream = "TCP_STREAM"
	MagicTtyData   = "TTY_DATA"
	MagicIpcShm    = "IPCNS_SHM"
	MagicIpcSem    = "IPCNS_SEM"
	MagicIpcMsg    = "IPCNS_MSG"
	// MagicStats is stats-dump's and stats-restore's (STATS_MAGIC,
	// 0x57093306). CRIU opens them O_SERVICE (criu/image-desc.c), so
	// their first magic is IMG_SERVICE (0x55105940), not IMG_COMMON.
	MagicStats = "STATS"
)

// serviceKinds are the image kinds framed with IMG_SERVICE: images about
// a run of the tool rather than about the tree.
var serviceKinds = map[string]bool{MagicStats: true}

// firstMagic is the magic that comes before kind's own.
func firstMagic(kind string) uint32 {
	name := "IMG_COMMON"
	if serviceKinds[kind] {
		name = "IMG_SERVICE"
	}
	m, _ := magicOf(name)
	return m
}

// ImgVersion is CRTOOLS_IMAGES_V1_1, the inventory image version.
const ImgVersion = 2

// maxEntry bounds one entry; no image ckpt writes comes near it.
const maxEntry = 64 << 20

var magics = magic.LoadMagic()

// ErrCorrupt marks a truncated or malformed image: it is
// ckerr.ErrCorruptImage (ckpt.ErrCorruptImage), so errors.Is finds it
// through every error of this package that wraps it.
var ErrCorrupt = ckerr.ErrCorruptImage

func magicOf(name string) (uint32, error) {
	if v, ok := ownMagics[name]; ok {
		return v, nil
	}
	m, ok := magics.ByName[name]
	if !ok {
		return 0, fmt.Errorf("unknown image magic %q", name)
	}
	return uint32(m), nil
}

// Encode frames entries as an image of the given kind.
func Encode(kind string, entries ...proto.Message) ([]byte, error) {
	m, err := magicOf(kind)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	le := binary.LittleEndian
	if kind != MagicInventory {
		_ = binary.Write(&buf, le, firstMagic(kind))
	}
	_ = binary.Write(&buf, le, m)
	for _, e := range entries {
		b, err := proto.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s entry: %w", kind, err)
		}
		_ = binary.Write(&buf, le, uint32(len(b)))
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Decode checks the magic of an image of the given kind and returns the
// raw payload of each entry.
func Decode(kind string, data []byte) ([][]byte, error) {
	want, err := magicOf(kind)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if kind != MagicInventory {
		if len(data) < 4 {
			return nil, fmt.Errorf("%w: %d bytes, no magic", ErrCorrupt, len(data))
		}
		if got, first := le.Uint32(data), firstMagic(kind); got != first {
			return nil, fmt.Errorf("%w: first magic %#x, want %s %#x", ErrCorrupt, got, magics.ByValue[uint64(first)], first)
		}
		data = data[4:]
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: no %s magic", ErrCorrupt, kind)
	}
	if got := le.Uint32(data); got != want {
		name := magics.ByValue[uint64(got)]
		if name == "" {
			name = "unknown"
		}
		return nil, fmt.Errorf("%w: magic %#x (%s), want %s %#x", ErrCorrupt, got, name, kind, want)
	}
	data = data[4:]
	var out [][]byte
	for off := 0; off < len(data); {
		if len(data)-off < 4 {
			return nil, fmt.Errorf("%w: truncated size of entry %d at byte %d", ErrCorrupt, len(out), off)
		}
		n := int(le.Uint32(data[off:]))
		off += 4
		if n > maxEntry || n > len(data)-off {
			return nil, fmt.Errorf("%w: entry %d claims %d bytes, %d left", ErrCorrupt, len(out), n, len(data)-off)
		}
		out = append(out, data[off:off+n])
		off += n
	}
	return out, nil
}

// Dir is an images directory.
type Dir struct {
	Path string
}

// Write writes an image file atomically enough for a dump: it is created
// whole or the error says which file failed.
func (d Dir) Write(name, kind string, entries ...proto.Message) error {
	b, err := Encode(kind, entries...)
	if err != nil {
		return fmt.Errorf("image %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(d.Path, name), b, 0o600); err != nil {
		return fmt.Errorf("write image %s: %w", name, err)
	}
	return nil
}

// ReadRaw reads an image and returns its entries' payloads.
func (d Dir) ReadRaw(name, kind string) ([][]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.Path, name))
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", name, err)
	}
	ents, err := Decode(kind, b)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", filepath.Join(d.Path, name), err)
	}
	return ents, nil
}

// ReadOne reads an image holding exactly one entry into msg.
func (d Dir) ReadOne(name, kind string, msg proto.Message) error {
	ents, err := d.ReadRaw(name, kind)
	if err != nil {
		return err
	}
	if len(ents) != 1 {
		return fmt.Errorf("image %s: %w: %d entries, want 1", filepath.Join(d.Path, name), ErrCorrupt, len(ents))
	}
	return unmarshal(d, name, 0, ents[0], msg)
}

// ReadAll reads every entry of an image, each into a message from newMsg.
func ReadAll[T proto.Message](d Dir, name, kind string, newMsg func() T) ([]T, error) {
	ents, err := d.ReadRaw(name, kind)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(ents))
	for i, e := range ents {
		m := newMsg()
		if err := unmarshal(d, name, i, e, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Unmarshal decodes one raw entry of image name into msg.
func (d Dir) Unmarshal(name string, i int, raw []byte, msg proto.Message) error {
	return unmarshal(d, name, i, raw, msg)
}

func unmarshal(d Dir, name string, i int, raw []byte, msg proto.Message) error {
	// Required fields are checked, so a truncated entry is an error.
	if err := proto.Unmarshal(raw, msg); err != nil {
		return fmt.Errorf("image %s: entry %d: %w: %v", filepath.Join(d.Path, name), i, ErrCorrupt, err)
	}
	return nil
}

// OpenPages opens pages-N.img for reading.
func (d Dir) OpenPages(id uint32) (*os.File, error) {
	f, err := os.Open(filepath.Join(d.Path, PagesName(id)))
	if err != nil {
		return nil, fmt.Errorf("open pages image: %w", err)
	}
	return f, nil
}

// CreatePages creates pages-N.img for writing.
func (d Dir) CreatePages(id uint32) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(d.Path, PagesName(id)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create pages image: %w", err)
	}
	return f, nil
}

// ReadFullAt reads exactly len(b) bytes at off or says where the file ended.
func ReadFullAt(f *os.File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w: truncated at byte %d, need %d more", f.Name(), ErrCorrupt, off+int64(n), len(b)-n)
	}
	return fmt.Errorf("%s: %w", f.Name(), err)
}

// File names of the images, as CRIU names them.

// InventoryName is the inventory image, written last by a dump.
func InventoryName() string { return "inventory.img" }

// PstreeName is the process tree image.
func PstreeName() string { return "pstree.img" }

// CoreName is the core image of one thread.
func CoreName(pid int) string { return fmt.Sprintf("core-%d.img", pid) }

// IDsName is the kernel object ids image of one task.
func IDsName(pid int) string { return fmt.Sprintf("ids-%d.img", pid) }

// MMName is the memory descriptor image of one task.
func MMName(pid int) string { return fmt.Sprintf("mm-%d.img", pid) }

// PagemapName is the pagemap image of one task.
func PagemapName(pid int) string { return fmt.Sprintf("pagemap-%d.img", pid) }

// PagesName is a raw pages image.
func PagesName(id uint32) string { return fmt.Sprintf("pages-%d.img", id) }

// FilesName is the image of every open file.
func FilesName() string { return "files.img" }

// FdinfoName is the fd table image of one files id.
func FdinfoName(filesID uint32) string { return fmt.Sprintf("fdinfo-%d.img", filesID) }

// PipesDataName holds the bytes buffered in pipes.
func PipesDataName() string { return "pipes-data.img" }

// SkQueuesName holds the messages queued in sockets (sk_packet_entry,
// each followed by its bytes).
func SkQueuesName() string { return "sk-queues.img" }

// TcpStreamName is the state of the established TCP connection of socket
// inode ino (tcp_stream_entry, then its receive and send queues' bytes);
// CRIU names it by the inode in hex.
func TcpStreamName(ino uint32) string { return fmt.Sprintf("tcp-stream-%x.img", ino) }

// ShmemPagemapName is the pagemap of a shared memory object.
func ShmemPagemapName(ino uint64) string { return fmt.Sprintf("pagemap-shmem-%d.img", ino) }

// CpuinfoName is the image of the dumping machine's CPU: vendor, model,
// instruction-set feature words and enabled xsave components.
func CpuinfoName() string { return "cpuinfo.img" }

// TtyInfoName is the image of the terminals the dump's files refer to:
// their modes (termios) and window sizes.
func TtyInfoName() string { return "tty-info.img" }

// TtyDataName is the image of the bytes queued in the dump's terminals.
func TtyDataName() string { return "tty-data.img" }

// TimensName is the image of time namespace id: the tree's clocks
// (CLOCK_MONOTONIC and CLOCK_BOOTTIME) as it saw them at the dump.
func TimensName(id uint32) string { return fmt.Sprintf("timens-%d.img", id) }

// UtsnsName is the image of UTS namespace id: its host and domain names.
func UtsnsName(id uint32) string { return fmt.Sprintf("utsns-%d.img", id) }

// IpcShmName, IpcSemName and IpcMsgName are the images of IPC namespace
// id's SysV shared memory segments, semaphore sets and message queues.
func IpcShmName(id uint32) string { return fmt.Sprintf("ipcns-shm-%d.img", id) }

// IpcSemName: see IpcShmName.
func IpcSemName(id uint32) string { return fmt.Sprintf("ipcns-sem-%d.img", id) }

// IpcMsgName: see IpcShmName.
func IpcMsgName(id uint32) string { return fmt.Sprintf("ipcns-msg-%d.img", id) }

// IpcVarName is the image of IPC namespace id's settings (its kernel.shm*,
// kernel.msg*, kernel.sem and fs.mqueue.* sysctls).
func IpcVarName(id uint32) string { return fmt.Sprintf("ipcns-var-%d.img", id) }

// MountpointsName is the image of mount namespace id: its mounts.
func MountpointsName(id uint32) string { return fmt.Sprintf("mountpoints-%d.img", id) }

// FileLocksName is the image of the tree's file locks (POSIX, OFD and
// flock), one file_lock_entry each, written with --file-locks.
func FileLocksName() string { return "file-locks.img" }

// GhostFileName is the contents of an unlinked file, by ghost id (hex,
// as CRIU names it).
func GhostFileName(id uint32) string { return fmt.Sprintf("ghost-file-%x.img", id) }

// RemapPathName lists the files of files.img whose path was unlinked and
// the ghost that holds each.
func RemapPathName() string { return "remap-fpath.img" }

// MemfdName lists the memfd inodes of the dump (CRIU's memfd.img).
func MemfdName() string { return "memfd.img" }

// FifoDataName is the bytes queued in the dumped FIFOs.
func FifoDataName() string { return "fifo-data.img" }

// FSName is the cwd/root/umask image of one task.
func FSName(pid int) string { return fmt.Sprintf("fs-%d.img", pid) }

// StatsDumpName is the statistics of the last dump into the directory:
// a stats_entry with its dump part, named as CRIU names it (no ".img").
func StatsDumpName() string { return "stats-dump" }

// StatsRestoreName is the statistics of the last restore from the
// directory: a stats_entry with its restore part.
func StatsRestoreName() string { return "stats-restore" }

// WriteWithData writes an image whose entries are each followed by raw
// bytes (PIPES_DATA: a pipe_data_entry, then the pipe's buffered bytes).
func (d Dir) WriteWithData(name, kind string, msgs []proto.Message, data [][]byte) error {
	m, err := magicOf(kind)
	if err != nil {
		return err
	}
	common, _ := magicOf("IMG_COMMON")
	var buf bytes.Buffer
	le := binary.LittleEndian
	_ = binary.Write(&buf, le, common)
	_ = binary.Write(&buf, le, m)
	for i, e := range msgs {
		b, err := proto.Marshal(e)
		if err != nil {
			return fmt.Errorf("image %s: %w", name, err)
		}
		_ = binary.Write(&buf, le, uint32(len(b)))
		buf.Write(b)
		buf.Write(data[i])
	}
	if err := os.WriteFile(filepath.Join(d.Path, name), buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write image %s: %w", name, err)
	}
	return nil
}

// ReadWithData reads an image written by WriteWithData; size tells how
// many raw bytes follow an entry.
func ReadWithData[T proto.Message](d Dir, name, kind string, newMsg func() T, size func(T) int) ([]T, [][]byte, error) {
	path := filepath.Join(d.Path, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read image %s: %w", name, err)
	}
	want, err := magicOf(kind)
	if err != nil {
		return nil, nil, err
	}
	le := binary.LittleEndian
	if len(b) < 8 || le.Uint32(b[4:]) != want {
		return nil, nil, fmt.Errorf("image %s: %w: not a %s image", path, ErrCorrupt, kind)
	}
	b = b[8:]
	var msgs []T
	var data [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, nil, fmt.Errorf("image %s: %w: truncated entry size", path, ErrCorrupt)
		}
		n := int(le.Uint32(b))
		b = b[4:]
		if n > maxEntry || n > len(b) {
			return nil, nil, fmt.Errorf("image %s: %w: entry of %d bytes, %d left", path, ErrCorrupt, n, len(b))
		}
		m := newMsg()
		if err := proto.Unmarshal(b[:n], m); err != nil {
			return nil, nil, fmt.Errorf("image %s: entry %d: %w: %v", path, len(msgs), ErrCorrupt, err)
		}
		b = b[n:]
		k := size(m)
		if k < 0 || k > len(b) {
			return nil, nil, fmt.Errorf("image %s: entry %d: %w: %d data bytes, %d left", path, len(msgs), ErrCorrupt, k, len(b))
		}
		msgs = append(msgs, m)
		data = append(data, b[:k])
		b = b[k:]
	}
	return msgs, data, nil
}

// ReadFramed reads an image written by WriteWithData whose entries are
// of several message types (IPCNS_MSG: a queue's entry, then each of its
// messages): next gets each entry's raw bytes in turn and returns how
// many raw bytes follow it, or an error.
func ReadFramed(d Dir, name, kind string, next func(i int, raw []byte) (int, error)) ([][]byte, error) {
	path := filepath.Join(d.Path, name)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", name, err)
	}
	want, err := magicOf(kind)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if len(b) < 8 || le.Uint32(b[4:]) != want {
		return nil, fmt.Errorf("image %s: %w: not a %s image", path, ErrCorrupt, kind)
	}
	b = b[8:]
	var data [][]byte
	for i := 0; len(b) > 0; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("image %s: %w: truncated entry size", path, ErrCorrupt)
		}
		n := int(le.Uint32(b))
		b = b[4:]
		if n > maxEntry || n > len(b) {
			return nil, fmt.Errorf("image %s: %w: entry of %d bytes, %d left", path, ErrCorrupt, n, len(b))
		}
		k, err := next(i, b[:n])
		if err != nil {
			return nil, fmt.Errorf("image %s: entry %d: %w", path, i, err)
		}
		b = b[n:]
		if k < 0 || k > len(b) {
			return nil, fmt.Errorf("image %s: entry %d: %w: %d data bytes, %d left", path, i, ErrCorrupt, k, len(b))
		}
		data = append(data, b[:k])
		b = b[k:]
	}
	return data, nil
}
