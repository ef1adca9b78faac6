//go:build linux && amd64

package model

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	ipcdesc "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-desc"
	ipcmsg "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-msg"
	ipcsem "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-sem"
	ipcshm "github.com/checkpoint-restore/go-criu/v8/crit/images/ipc-shm"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

func testDesc(id, key uint32) *ipcdesc.IpcDescEntry {
	u := proto.Uint32
	return &ipcdesc.IpcDescEntry{Key: u(key), Uid: u(1000), Gid: u(1001), Cuid: u(0), Cgid: u(0), Mode: u(0o1640), Id: u(id)}
}

func TestSysVRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d := &Dump{Dir: image.Dir{Path: dir}}
	sv := &SysV{
		Shm: []SysVShm{{Entry: &ipcshm.IpcShmEntry{Desc: testDesc(1, 0x5a)}, Data: []byte("seven!!")}, {Entry: &ipcshm.IpcShmEntry{Desc: testDesc(2, 0)}}},
		Sem: []SysVSem{{Entry: &ipcsem.IpcSemEntry{Desc: testDesc(1, 0x5b)}, Values: []uint16{3, 0, 65535}}},
		Msg: []SysVMsgQueue{
			{Entry: &ipcmsg.IpcMsgEntry{Desc: testDesc(1, 0x5c), Qbytes: proto.Uint32(4096)}, Msgs: []SysVMsg{{1, []byte("hello")}, {2, []byte("123456789")}}},
			{Entry: &ipcmsg.IpcMsgEntry{Desc: testDesc(2, 0x5d), Qbytes: proto.Uint32(16)}},
		},
	}
	if err := d.writeSysV(3, sv); err != nil {
		t.Fatal(err)
	}
	got, err := d.loadSysV(3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Shm) != 2 || string(got.Shm[0].Data) != "seven!!" || got.Shm[0].Entry.GetDesc().GetMode() != 0o1640 || got.Shm[1].Entry.GetSize() != 0 {
		t.Errorf("segments %+v", got.Shm)
	}
	if len(got.Sem) != 1 || len(got.Sem[0].Values) != 3 || got.Sem[0].Values[2] != 65535 {
		t.Errorf("semaphore sets %+v", got.Sem)
	}
	if len(got.Msg) != 2 || len(got.Msg[0].Msgs) != 2 || got.Msg[0].Msgs[1].Type != 2 || string(got.Msg[0].Msgs[1].Text) != "123456789" ||
		got.Msg[0].Entry.GetQbytes() != 4096 || len(got.Msg[1].Msgs) != 0 || got.Msg[1].Entry.GetDesc().GetKey() != 0x5d {
		t.Errorf("queues %+v", got.Msg)
	}
	// A queue that claims more messages than the image holds is corrupt.
	b, err := os.ReadFile(filepath.Join(dir, image.IpcMsgName(3)))
	if err != nil {
		t.Fatal(err)
	}
	cut := bytes.Index(b, []byte("123456789"))
	if err := os.WriteFile(filepath.Join(dir, image.IpcMsgName(3)), b[:cut], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.loadSysV(3); err == nil {
		t.Error("a truncated ipcns-msg image loads")
	}
	// Older dumps have no SysV images: no objects.
	if s, err := d.loadSysV(9); err != nil || len(s.Shm)+len(s.Sem)+len(s.Msg) != 0 {
		t.Errorf("loadSysV of a namespace without images: %+v, %v", s, err)
	}
}
