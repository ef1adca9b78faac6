//go:build linux && amd64

package fd

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/ckpt/ckpt/internal/model"
	"github.com/ckpt/ckpt/internal/netlock"
	"github.com/ckpt/ckpt/internal/uapi"
)

// DumpedConns are the established TCP connections the dump d holds with
// their state (dumped with --tcp-established): those a dump may have
// locked in the network (tcprepair.go) until their restore.
func DumpedConns(d *model.Dump) ([]netlock.Conn, error) {
	var out []netlock.Conn
	ids := make([]uint32, 0, len(d.Files))
	for id := range d.Files {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		isk := d.Files[id].GetIsk()
		if isk == nil || isk.GetProto() != unix.IPPROTO_TCP || isk.GetState() != uapi.TCP_ESTABLISHED || d.TcpStreams[isk.GetIno()] == nil {
			continue
		}
		fam := int(isk.GetFamily())
		local, err1 := wordsAddr(fam, isk.GetSrcAddr(), isk.GetSrcPort())
		peer, err2 := wordsAddr(fam, isk.GetDstAddr(), isk.GetDstPort())
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("inet socket socket:[%d]: addresses: %v %v", isk.GetIno(), err1, err2)
		}
		c, err := lockConn(local, peer)
		if err != nil {
			return nil, fmt.Errorf("inet socket socket:[%d]: %w", isk.GetIno(), err)
		}
		out = append(out, c)
	}
	return out, nil
}

// NetUnlock removes the network lock of the connections of dump d, in
// the network namespace at nsPath ("" for ckpt's): the rules the dump
// added for them (and nothing else: other dumps' locks stay). It returns
// the connections it unlocked, none when none was locked.
func NetUnlock(d *model.Dump, nsPath string) ([]netlock.Conn, error) {
	conns, err := DumpedConns(d)
	if err != nil || len(conns) == 0 {
		return nil, err
	}
	locked, err := netlock.Locked(nsPath)
	if err != nil {
		return nil, err
	}
	isLocked := make(map[netlock.Conn]bool, len(locked))
	for _, c := range locked {
		isLocked[c] = true
	}
	var mine []netlock.Conn
	for _, c := range conns {
		if isLocked[c] {
			mine = append(mine, c)
		}
	}
	if err := netlock.Unlock(nsPath, mine...); err != nil {
		return nil, err
	}
	return mine, nil
}
