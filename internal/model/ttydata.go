//go:build linux && amd64

package model

import (
	"github.com/checkpoint-restore/go-criu/v8/crit/images/tty"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TtyInfoDataField is the tty_info_entry field number where ckpt keeps
// the bytes queued for a pty end that no file of the dump opens (typed on
// the master of a pair whose slave nobody opened yet): a field CRIU's
// schema (images/tty.proto) does not have. CRIU takes a tty-data.img
// entry of such an end for a corrupt image ("No tty found to queued
// data") and dumps no such bytes itself; this way CRIU restores the rest
// and ckpt keeps them.
const TtyInfoDataField protowire.Number = 170002

// splitTtyData returns the tty-data.img entries of d, by tty-info id, and
// the tty-info entries to write, those of ends no file opens carrying
// their queued bytes in TtyInfoDataField (copies: d is not changed).
func (d *Dump) splitTtyData() (data map[uint32][]byte, infos map[uint32]*tty.TtyInfoEntry) {
	opened := map[uint32]bool{}
	for _, f := range d.Files {
		if t := f.GetTty(); t != nil {
			opened[t.GetTtyInfoId()] = true
		}
	}
	data = map[uint32][]byte{}
	infos = map[uint32]*tty.TtyInfoEntry{}
	for id, ti := range d.TtyInfos {
		infos[id] = ti
	}
	for id, b := range d.TtyData {
		ti, ok := d.TtyInfos[id]
		if opened[id] || !ok {
			data[id] = b
			continue
		}
		c := proto.Clone(ti).(*tty.TtyInfoEntry)
		m := c.ProtoReflect()
		u := protowire.AppendTag(m.GetUnknown(), TtyInfoDataField, protowire.BytesType)
		m.SetUnknown(protowire.AppendBytes(u, b))
		infos[id] = c
	}
	return data, infos
}

// ttyInfoData returns the bytes ti carries in TtyInfoDataField, nil if
// none.
func ttyInfoData(ti *tty.TtyInfoEntry) []byte {
	b := ti.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if num == TtyInfoDataField && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil
			}
			return v
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil
		}
		b = b[m:]
	}
	return nil
}
