//go:build linux && amd64

package model

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/image"
)

// ckpt's field for an unlinked file's other name survives the wire,
// leaves other unknown fields alone, and a malformed one is an error.
func TestRegLinkedAt(t *testing.T) {
	r := &regfile.RegFileEntry{Id: proto.Uint32(3), Name: proto.String("/dev/shm/sem.tmp")}
	if at, err := RegLinkedAt(r); err != nil || at != "" {
		t.Errorf("absent: %q, %v", at, err)
	}
	// Another field of ckpt's own stays.
	other := protowire.AppendVarint(protowire.AppendTag(nil, 170999, protowire.VarintType), 7)
	r.ProtoReflect().SetUnknown(other)
	SetRegLinkedAt(r, "/dev/shm/old")
	SetRegLinkedAt(r, "/dev/shm/sem.x")
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got := &regfile.RegFileEntry{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if at, err := RegLinkedAt(got); err != nil || at != "/dev/shm/sem.x" {
		t.Errorf("present: %q, %v", at, err)
	}
	if extUint32(got.ProtoReflect().GetUnknown(), 170999) != 7 {
		t.Error("SetRegLinkedAt dropped another unknown field")
	}
	SetRegLinkedAt(got, "")
	if at, err := RegLinkedAt(got); err != nil || at != "" {
		t.Errorf("removed: %q, %v", at, err)
	}
	for name, raw := range map[string][]byte{
		"varint":    protowire.AppendVarint(protowire.AppendTag(nil, regLinkedAtField, protowire.VarintType), 1),
		"empty":     protowire.AppendString(protowire.AppendTag(nil, regLinkedAtField, protowire.BytesType), ""),
		"not utf-8": protowire.AppendBytes(protowire.AppendTag(nil, regLinkedAtField, protowire.BytesType), []byte{0xff, 0xfe}),
		"truncated": protowire.AppendTag(nil, regLinkedAtField, protowire.BytesType),
		"bad tag":   {0xff},
	} {
		c := &regfile.RegFileEntry{Id: proto.Uint32(3)}
		c.ProtoReflect().SetUnknown(raw)
		if at, err := RegLinkedAt(c); !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("%s: %q, %v; want ErrCorrupt", name, at, err)
		}
	}
}

// Load reads the field into LinkedAt; a corrupt one fails the load with
// an error naming files.img.
func TestLoadRegLinkedAt(t *testing.T) {
	dir := t.TempDir()
	exe, _ := os.Executable()
	testDump(t, dir, exe)
	files, err := image.ReadAll(image.Dir{Path: dir}, image.FilesName(), image.MagicFiles, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} })
	if err != nil {
		t.Fatal(err)
	}
	write := func(id uint32, set func(*regfile.RegFileEntry)) {
		t.Helper()
		var msgs []proto.Message
		for _, f := range files {
			f := proto.Clone(f).(*fdinfo.FileEntry)
			if f.GetId() == id {
				set(f.GetReg())
			}
			msgs = append(msgs, f)
		}
		if err := (image.Dir{Path: dir}).Write(image.FilesName(), image.MagicFiles, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.LinkedAt) != 0 {
		t.Errorf("LinkedAt %v of a dump without the field", d.LinkedAt)
	}
	write(2, func(r *regfile.RegFileEntry) { SetRegLinkedAt(r, "/dev/shm/sem.x") })
	if d, err = Load(dir); err != nil || d.LinkedAt[2] != "/dev/shm/sem.x" {
		t.Errorf("Load: LinkedAt %v, %v; want file 2 at /dev/shm/sem.x", d.LinkedAt, err)
	}
	write(2, func(r *regfile.RegFileEntry) {
		r.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, regLinkedAtField, protowire.VarintType), 1))
	})
	if _, err := Load(dir); !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), image.FilesName()) {
		t.Errorf("Load of a corrupt field: %v; want ErrCorrupt naming %s", err, image.FilesName())
	}
}
