//go:build linux && amd64

package model

import (
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// wireVarints appends (field, varint) pairs as protobuf fields.
func wireVarints(b []byte, kv ...uint64) []byte {
	for i := 0; i+1 < len(kv); i += 2 {
		b = protowire.AppendTag(b, protowire.Number(kv[i]), protowire.VarintType)
		b = protowire.AppendVarint(b, kv[i+1])
	}
	return b
}

// wireMessage appends a nested message field.
func wireMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

// TestFromCRIU reads inventory entries as CRIU v4.2 and ckpt write them:
// CRIU's root_ids name every namespace of the dumping tool.
func TestFromCRIU(t *testing.T) {
	// images/inventory.proto: img_version 1, root_ids 3;
	// images/core.proto task_kobj_ids_entry: vm 1, files 2, fs 3,
	// sighand 4, pid_ns 5, net_ns 6, ipc_ns 7, uts_ns 8, mnt_ns 9.
	ids := wireVarints(nil, 1, 1, 2, 1, 3, 1, 4, 1, 5, 1, 6, 2, 7, 3, 8, 4, 9, 6)
	criu := wireMessage(wireVarints(nil, 1, 2), 3, ids)
	inv := &inventory.InventoryEntry{}
	if err := proto.Unmarshal(criu, inv); err != nil {
		t.Fatal(err)
	}
	if !(&Dump{Inventory: inv}).FromCRIU() {
		t.Error("CRIU's inventory taken for ckpt's")
	}
	for _, own := range []bool{false, true} {
		d := &Dump{Inventory: &inventory.InventoryEntry{ImgVersion: proto.Uint32(2), RootIds: RootIDs(3, own)}}
		if d.FromCRIU() {
			t.Errorf("ckpt's inventory (own PID namespace %v) taken for CRIU's", own)
		}
	}
}

// TestCRIUPersonality decodes the personality CRIU writes: the kernel's
// 8 hex digits read by atoi.
func TestCRIUPersonality(t *testing.T) {
	for _, c := range []struct {
		written, want uint32
	}{
		{0, 0},
		{40000, 0x40000},   // ADDR_NO_RANDOMIZE, "00040000"
		{8, 0x8},           // PER_LINUX32
		{400000, 0x400000}, // READ_IMPLIES_EXEC
		{840000, 0x840000}, // ADDR_LIMIT_32BIT|ADDR_NO_RANDOMIZE, "00840000"
	} {
		// images/core.proto task_core_entry: task_state 1, exit_code
		// 2, personality 3, flags 4.
		b := wireVarints(nil, 1, 1, 2, 0, 3, uint64(c.written), 4, 0)
		tc := &criucore.TaskCoreEntry{}
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, tc); err != nil {
			t.Fatal(err)
		}
		criuPersonality(tc)
		if got := tc.GetPersonality(); got != c.want {
			t.Errorf("CRIU's %d: personality %#x, want %#x", c.written, got, c.want)
		}
	}
	criuPersonality(nil) // no task core: nothing to do
}

// TestTcpKeepaliveFromOpts reads an inet socket entry as CRIU v4.2 writes
// it: keepalive settings in tcp_opts only.
func TestTcpKeepaliveFromOpts(t *testing.T) {
	// images/sk-opts.proto: so_sndbuf 1, so_rcvbuf 2, the timeouts 3-6
	// (no tcp_keep* 20-22); images/tcp-stream.proto tcp_opts_entry:
	// nodelay 2, keepcnt 3, keepidle 4, keepintvl 5; images/sk-inet.proto:
	// id 1, ino 2, family 3, type 4, proto 5, state 6, opts 14,
	// tcp_opts 20.
	opts := wireVarints(nil, 1, 4096, 2, 4096, 3, 0, 4, 0, 5, 0, 6, 0)
	tcpOpts := wireVarints(nil, 2, 1, 3, 9, 4, 7200) // keepintvl left out
	b := wireVarints(nil, 1, 1, 2, 100, 3, 2, 4, 1, 5, 6, 6, 10)
	b = wireMessage(b, 14, opts)
	b = wireMessage(b, 20, tcpOpts)
	isk := &skinet.InetSkEntry{}
	if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, isk); err != nil {
		t.Fatal(err)
	}
	tcpKeepaliveFromOpts(isk)
	o := isk.GetOpts()
	if o.TcpKeepcnt == nil || o.GetTcpKeepcnt() != 9 || o.TcpKeepidle == nil || o.GetTcpKeepidle() != 7200 {
		t.Errorf("keepcnt %v keepidle %v: want 9 and 7200 from tcp_opts", o.TcpKeepcnt, o.TcpKeepidle)
	}
	if o.TcpKeepintvl != nil {
		t.Errorf("keepintvl %d: CRIU did not record it, want none", o.GetTcpKeepintvl())
	}
	// ckpt's and CRIU 3.17's sk_opts values stay.
	isk.Opts.TcpKeepcnt = proto.Uint32(3)
	tcpKeepaliveFromOpts(isk)
	if o.GetTcpKeepcnt() != 3 {
		t.Errorf("keepcnt %d: sk_opts' 3 replaced", o.GetTcpKeepcnt())
	}
	tcpKeepaliveFromOpts(nil) // not an inet socket
}
