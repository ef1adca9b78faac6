//go:build linux && amd64

package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	ipcshm "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-shm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// criuFrame builds an image of kind as CRIU lays it out: its magic, then
// each part, a message with its 32-bit length before it or raw bytes.
func criuFrame(t *testing.T, kind string, parts ...any) []byte {
	t.Helper()
	head, err := image.Encode(kind)
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.NewBuffer(head)
	for _, p := range parts {
		switch p := p.(type) {
		case proto.Message:
			b, err := proto.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			_ = binary.Write(buf, binary.LittleEndian, uint32(len(b)))
			buf.Write(b)
		case []byte:
			buf.Write(p)
		}
	}
	return buf.Bytes()
}

func TestReadGhostCRIUForms(t *testing.T) {
	entry := func(mode uint32, size *uint64, chunks bool) *ghostfile.GhostFileEntry {
		e := &ghostfile.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(mode), Size: size}
		if chunks {
			e.Chunks = proto.Bool(true)
		}
		return e
	}
	chunk := func(off, n uint64) *ghostfile.GhostChunkEntry {
		return &ghostfile.GhostChunkEntry{Off: proto.Uint64(off), Len: proto.Uint64(n)}
	}
	reg := uint32(unix.S_IFREG | 0o600)
	for _, c := range []struct {
		name  string
		parts []any
		want  []byte
		bad   bool
	}{
		{"criu raw", []any{entry(reg, nil, false), []byte("hello")}, []byte("hello"), false},
		{"ckpt sized", []any{entry(reg, proto.Uint64(5), false), []byte("hello")}, []byte("hello"), false},
		{"empty", []any{entry(reg, nil, false)}, []byte{}, false},
		{"fifo", []any{entry(unix.S_IFIFO|0o600, nil, false)}, nil, false},
		{"chunks", []any{entry(reg, proto.Uint64(10), true), chunk(1, 2), []byte("ab"), chunk(7, 3), []byte("xyz")},
			[]byte{0, 'a', 'b', 0, 0, 0, 0, 'x', 'y', 'z'}, false},
		{"size mismatch", []any{entry(reg, proto.Uint64(6), false), []byte("hello")}, nil, true},
		{"chunks without size", []any{entry(reg, nil, true)}, nil, true},
		{"chunk past the end", []any{entry(reg, proto.Uint64(4), true), chunk(3, 2), []byte("ab")}, nil, true},
		{"chunk data truncated", []any{entry(reg, proto.Uint64(4), true), chunk(0, 4), []byte("ab")}, nil, true},
		{"huge", []any{entry(reg, proto.Uint64(1<<40), true)}, nil, true},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, image.GhostFileName(1)), criuFrame(t, image.MagicGhostFile, c.parts...), 0o600); err != nil {
			t.Fatal(err)
		}
		g, err := readGhost(image.Dir{Path: dir}, 1)
		if c.bad {
			if !errors.Is(err, image.ErrCorrupt) {
				t.Errorf("%s: err %v, want a corrupt image", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !bytes.Equal(g.Data, c.want) {
			t.Errorf("%s: data %q, want %q", c.name, g.Data, c.want)
		}
	}
}

// A SysV segment CRIU saved in pagemaps (in_pagemaps, nothing after its
// entry) is read from pagemap-shmem-ID.img and the pages image it names,
// ID being the segment's IPC id; pages left out read as zeros up to the
// segment's size.
func TestLoadSysVInPagemaps(t *testing.T) {
	dir := t.TempDir()
	put := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	shm := &ipcshm.IpcShmEntry{Desc: testDesc(7, 0x77), Size: proto.Uint64(3*4096 + 10), InPagemaps: proto.Bool(true)}
	put(image.IpcShmName(2), criuFrame(t, image.MagicIpcShm, shm))
	put(image.IpcSemName(2), criuFrame(t, image.MagicIpcSem))
	put(image.IpcMsgName(2), criuFrame(t, image.MagicIpcMsg))
	put(image.ShmemPagemapName(7), criuFrame(t, image.MagicPagemap,
		&pagemap.PagemapHead{PagesId: proto.Uint32(9)},
		&pagemap.PagemapEntry{Vaddr: proto.Uint64(4096), NrPages: proto.Uint64(1), CompatNrPages: proto.Uint32(1), Flags: proto.Uint32(image.PEPresent)}))
	page := bytes.Repeat([]byte{0xab}, 4096)
	put(image.PagesName(9), page)
	d := &Dump{Dir: image.Dir{Path: dir}}
	s, err := d.loadSysV(2)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Shm) != 1 {
		t.Fatalf("%d segments, want 1", len(s.Shm))
	}
	want := make([]byte, 3*4096+10)
	copy(want[4096:], page)
	if !s.Shm[0].InPages || s.Shm[0].Data != nil {
		t.Fatalf("segment: InPages %v, %d bytes of data: want its content left in the pages", s.Shm[0].InPages, len(s.Shm[0].Data))
	}
	got, err := d.ShmemContent(7, s.Shm[0].Entry.GetSize())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("segment contents differ: %d bytes, page 1 starts %x", len(got), got[4096:4100])
	}
	// Written again by ckpt, the entry still says in_pagemaps and
	// nothing follows it.
	if err := d.writeSysV(3, s); err != nil {
		t.Fatal(err)
	}
	s2, err := d.loadSysV(3)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Shm[0].InPages || !s2.Shm[0].Entry.GetInPagemaps() || s2.Shm[0].Entry.GetSize() != 3*4096+10 {
		t.Errorf("rewritten segment: in_pagemaps %v, size %d", s2.Shm[0].Entry.GetInPagemaps(), s2.Shm[0].Entry.GetSize())
	}
}

// Bytes queued for a pty end that no file opens go into its tty-info
// entry (TtyInfoDataField), not tty-data.img, which CRIU refuses for
// such an end; Load puts them back.
func TestTtyDataOfUnopenedEnd(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := testDump(t, dir, exe)
	info := func(id uint32) *tty.TtyInfoEntry {
		return &tty.TtyInfoEntry{Id: proto.Uint32(id), Type: tty.TtyType_PTY.Enum(), Locked: proto.Bool(true), Exclusive: proto.Bool(false),
			PacketMode: proto.Bool(false), Sid: proto.Uint32(0), Pgrp: proto.Uint32(0), Rdev: proto.Uint32(0), Pty: &tty.TtyPtyEntry{Index: proto.Uint32(0)}}
	}
	d.AddFile(&fdinfo.FileEntry{Type: fdinfo.FdTypes_TTY.Enum(), Tty: &tty.TtyFileEntry{Id: proto.Uint32(d.NextFileID()), TtyInfoId: proto.Uint32(1),
		Flags: proto.Uint32(2), Fown: &fown.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)}}})
	d.TtyInfos = map[uint32]*tty.TtyInfoEntry{0: info(0), 1: info(1)}
	d.TtyData = map[uint32][]byte{0: []byte("early\n"), 1: []byte("out")}
	if err := d.Write(dir); err != nil {
		t.Fatal(err)
	}
	ents, err := image.ReadAll(image.Dir{Path: dir}, image.TtyDataName(), image.MagicTtyData, func() *tty.TtyDataEntry { return &tty.TtyDataEntry{} })
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].GetTtyId() != 1 {
		t.Errorf("tty-data.img has %v, want only the opened end 1's bytes", ents)
	}
	if ttyInfoData(d.TtyInfos[0]) != nil {
		t.Error("Write changed the dump's own tty-info entry")
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.TtyData[0]) != "early\n" || string(back.TtyData[1]) != "out" {
		t.Errorf("loaded tty data %q / %q", back.TtyData[0], back.TtyData[1])
	}
}
