//go:build linux && amd64

package model

import (
	"fmt"

	skinet "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-inet"
	sknetlink "github.com/checkpoint-restore/go-criu/v8/crit/images/sk-netlink"
	"google.golang.org/protobuf/encoding/protowire"
)

// Socket state CRIU's socket images have no field for, which ckpt keeps
// in fields of its own (unknown to CRIU's schema, skipped by crit and
// go-criu; CRIU restores without them):
//
//   - netlink_sk_entry field 170101, type (uint32): the socket's SO_TYPE
//     when it is not SOCK_RAW (SOCK_DGRAM); absent means SOCK_RAW, which
//     is what CRIU makes.
//   - inet_sk_entry field 170110, mcast_group (repeated message
//     McastGroup): the multicast groups the socket joined, each with its
//     interface and source filter.
//   - inet_sk_entry field 170111, mcast_opts (message McastOpts): the
//     multicast options of a UDP socket (IP_MULTICAST_TTL/LOOP/ALL/IF and
//     their IPv6 twins).
//
// The field numbers are far above any CRIU uses, so that fields CRIU
// adds later do not collide.
const (
	netlinkTypeField protowire.Number = 170101
	mcastGroupField  protowire.Number = 170110
	mcastOptsField   protowire.Number = 170111
)

// NetlinkType is a netlink socket's SO_TYPE: netlink_sk_entry.type, or
// SOCK_RAW (3) when absent.
func NetlinkType(e *sknetlink.NetlinkSkEntry) int {
	if t := extUint32(e.ProtoReflect().GetUnknown(), netlinkTypeField); t != 0 {
		return int(t)
	}
	return sockRaw
}

// SetNetlinkType sets netlink_sk_entry.type; SOCK_RAW is not written.
func SetNetlinkType(e *sknetlink.NetlinkSkEntry, typ int) {
	if typ == sockRaw {
		typ = 0
	}
	setExtUint32(e.ProtoReflect(), netlinkTypeField, uint32(typ))
}

// sockRaw is SOCK_RAW (include/linux/net.h).
const sockRaw = 3

// McastGroup is one multicast group membership of an inet socket, as
// MCAST_MSFILTER shows it (struct group_filter, include/uapi/linux/in.h).
// Message fields: 1 level (varint), 2 ifindex (varint), 3 group (bytes),
// 4 fmode (varint), 5 source (repeated bytes).
type McastGroup struct {
	// Level is the level it was joined at and is read and set at:
	// SOL_IP (0) for an IPv4 group, SOL_IPV6 (41) for an IPv6 one.
	Level int
	// Ifindex is the interface's index in the socket's network namespace.
	Ifindex uint32
	// Group is the group's address: 4 bytes (IPv4) or 16 (IPv6).
	Group []byte
	// Fmode is the filter mode: MCAST_EXCLUDE (0) or MCAST_INCLUDE (1).
	Fmode uint32
	// Sources are the source addresses the filter lists, each as long
	// as Group.
	Sources [][]byte
}

// McastOpts are the multicast options of a UDP socket. Message fields:
// 1 ttl, 2 loop, 3 all, 4 if_addr (4 bytes), 9 if_index for IPv4 (V4
// set); 5 hops, 6 loop6, 7 all6, 8 if_index6 for IPv6 (V6 set).
type McastOpts struct {
	V4     bool
	TTL    uint32  // IP_MULTICAST_TTL
	Loop   uint32  // IP_MULTICAST_LOOP
	All    uint32  // IP_MULTICAST_ALL
	IfAddr [4]byte // IP_MULTICAST_IF's address
	// IfIndex is the interface of IP_MULTICAST_IF (inet_sock.mc_index,
	// which getsockopt does not show; package sockbpf reads it), 0 if
	// none or not known.
	IfIndex  uint32
	V6       bool
	Hops     uint32 // IPV6_MULTICAST_HOPS
	Loop6    uint32 // IPV6_MULTICAST_LOOP
	All6     uint32 // IPV6_MULTICAST_ALL
	IfIndex6 uint32 // IPV6_MULTICAST_IF
}

func (g McastGroup) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(g.Level))
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(g.Ifindex))
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, g.Group)
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(g.Fmode))
	for _, s := range g.Sources {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	}
	return b
}

func (o McastOpts) marshal() []byte {
	var b []byte
	put := func(n protowire.Number, v uint32) {
		b = protowire.AppendTag(b, n, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v))
	}
	if o.V4 {
		put(1, o.TTL)
		put(2, o.Loop)
		put(3, o.All)
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, o.IfAddr[:])
		if o.IfIndex != 0 {
			put(9, o.IfIndex)
		}
	}
	if o.V6 {
		put(5, o.Hops)
		put(6, o.Loop6)
		put(7, o.All6)
		put(8, o.IfIndex6)
	}
	return b
}

// fields calls f with each field of a message b (value: the varint, or
// the bytes of a length-delimited field); other wire types are errors.
func fields(b []byte, f func(n protowire.Number, v uint64, bs []byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := f(n, v, nil); err != nil {
				return err
			}
			b = b[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := f(n, 0, v); err != nil {
				return err
			}
			b = b[m:]
		default:
			m := protowire.ConsumeFieldValue(n, typ, b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := f(n, 0, nil); err != nil {
				return err
			}
			b = b[m:]
		}
	}
	return nil
}

func unmarshalMcastGroup(b []byte) (McastGroup, error) {
	var g McastGroup
	err := fields(b, func(n protowire.Number, v uint64, bs []byte) error {
		switch n {
		case 1:
			g.Level = int(v)
		case 2:
			g.Ifindex = uint32(v)
		case 3:
			g.Group = append([]byte(nil), bs...)
		case 4:
			g.Fmode = uint32(v)
		case 5:
			g.Sources = append(g.Sources, append([]byte(nil), bs...))
		}
		return nil
	})
	if err != nil {
		return g, err
	}
	alen := map[int]int{0: 4, 41: 16}[g.Level]
	if alen == 0 {
		return g, fmt.Errorf("level %d", g.Level)
	}
	if len(g.Group) != alen {
		return g, fmt.Errorf("group address of %d bytes at level %d", len(g.Group), g.Level)
	}
	for _, s := range g.Sources {
		if len(s) != alen {
			return g, fmt.Errorf("source address of %d bytes at level %d", len(s), g.Level)
		}
	}
	if g.Fmode > 1 {
		return g, fmt.Errorf("filter mode %d", g.Fmode)
	}
	return g, nil
}

func unmarshalMcastOpts(b []byte) (McastOpts, error) {
	var o McastOpts
	err := fields(b, func(n protowire.Number, v uint64, bs []byte) error {
		switch n {
		case 1, 2, 3:
			o.V4 = true
			*[]*uint32{&o.TTL, &o.Loop, &o.All}[n-1] = uint32(v)
		case 4:
			if len(bs) != 4 {
				return fmt.Errorf("IP_MULTICAST_IF address of %d bytes", len(bs))
			}
			o.V4 = true
			copy(o.IfAddr[:], bs)
		case 9:
			o.V4 = true
			o.IfIndex = uint32(v)
		case 5, 6, 7, 8:
			o.V6 = true
			*[]*uint32{&o.Hops, &o.Loop6, &o.All6, &o.IfIndex6}[n-5] = uint32(v)
		}
		return nil
	})
	return o, err
}

// McastGroups returns inet_sk_entry.mcast_group (see above).
func McastGroups(e *skinet.InetSkEntry) ([]McastGroup, error) {
	var gs []McastGroup
	err := fields(e.ProtoReflect().GetUnknown(), func(n protowire.Number, _ uint64, bs []byte) error {
		if n != mcastGroupField {
			return nil
		}
		g, err := unmarshalMcastGroup(bs)
		if err != nil {
			return fmt.Errorf("multicast group %d: %w", len(gs), err)
		}
		gs = append(gs, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inet socket %d: %w", e.GetIno(), err)
	}
	return gs, nil
}

// SetMcastGroups sets inet_sk_entry.mcast_group.
func SetMcastGroups(e *skinet.InetSkEntry, gs []McastGroup) {
	m := e.ProtoReflect()
	raw := unknownWithout(m.GetUnknown(), mcastGroupField)
	for _, g := range gs {
		raw = protowire.AppendTag(raw, mcastGroupField, protowire.BytesType)
		raw = protowire.AppendBytes(raw, g.marshal())
	}
	m.SetUnknown(raw)
}

// GetMcastOpts returns inet_sk_entry.mcast_opts (see above); ok is false
// when the entry has none (an image of CRIU's or of an older ckpt).
func GetMcastOpts(e *skinet.InetSkEntry) (o McastOpts, ok bool, err error) {
	err = fields(e.ProtoReflect().GetUnknown(), func(n protowire.Number, _ uint64, bs []byte) error {
		if n != mcastOptsField {
			return nil
		}
		var err error
		o, err = unmarshalMcastOpts(bs)
		ok = true
		return err
	})
	if err != nil {
		return o, false, fmt.Errorf("inet socket %d: multicast options: %w", e.GetIno(), err)
	}
	return o, ok, nil
}

// SetMcastOpts sets inet_sk_entry.mcast_opts.
func SetMcastOpts(e *skinet.InetSkEntry, o McastOpts) {
	m := e.ProtoReflect()
	raw := unknownWithout(m.GetUnknown(), mcastOptsField)
	raw = protowire.AppendTag(raw, mcastOptsField, protowire.BytesType)
	raw = protowire.AppendBytes(raw, o.marshal())
	m.SetUnknown(raw)
}
