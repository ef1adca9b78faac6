//go:build linux && amd64

package sockbpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// A minimal reader of the kernel's BTF (/sys/kernel/btf/vmlinux, format
// in include/uapi/linux/btf.h and Documentation/bpf/btf.rst): enough to
// find a type by kind and name and the byte offset of a member, so that
// the program reads the running kernel's layout rather than one compiled
// in.

// BTF kinds (BTF_KIND_*).
const (
	kindInt       = 1
	kindPtr       = 2
	kindArray     = 3
	kindStruct    = 4
	kindUnion     = 5
	kindEnum      = 6
	kindFwd       = 7
	kindTypedef   = 8
	kindVolatile  = 9
	kindConst     = 10
	kindRestrict  = 11
	kindFunc      = 12
	kindFuncProto = 13
	kindVar       = 14
	kindDatasec   = 15
	kindFloat     = 16
	kindDeclTag   = 17
	kindTypeTag   = 18
	kindEnum64    = 19
)

const btfMagic = 0xeb9f

type btfMember struct {
	name   string
	typ    uint32
	bitOff uint32
}

// btfSpec is the parsed type section: where each type starts (types[0]
// is void), its names read only when asked, as vmlinux has some 100000
// types.
type btfSpec struct {
	types []byte
	strs  []byte
	off   []int
}

// parseBTF reads a raw BTF blob (little-endian).
func parseBTF(b []byte) (*btfSpec, error) {
	le := binary.LittleEndian
	if len(b) < 24 || le.Uint16(b) != btfMagic {
		return nil, errors.New("not BTF (bad magic)")
	}
	hdrLen := le.Uint32(b[4:])
	typeOff, typeLen := le.Uint32(b[8:]), le.Uint32(b[12:])
	strOff, strLen := le.Uint32(b[16:]), le.Uint32(b[20:])
	end := func(off, n uint32) (uint64, bool) {
		e := uint64(hdrLen) + uint64(off) + uint64(n)
		return e, e <= uint64(len(b))
	}
	te, ok1 := end(typeOff, typeLen)
	se, ok2 := end(strOff, strLen)
	if !ok1 || !ok2 {
		return nil, errors.New("BTF sections past the end")
	}
	s := &btfSpec{types: b[uint64(hdrLen)+uint64(typeOff) : te], strs: b[uint64(hdrLen)+uint64(strOff) : se], off: []int{-1}}
	types := s.types
	for p := 0; p < len(types); {
		id := len(s.off)
		if len(types)-p < 12 {
			return nil, fmt.Errorf("type %d: truncated", id)
		}
		info := le.Uint32(types[p+4:])
		kind, vlen := int(info>>24)&0x1f, int(info&0xffff)
		extra := 0
		switch kind {
		case kindInt, kindVar, kindDeclTag:
			extra = 4
		case kindArray:
			extra = 12
		case kindStruct, kindUnion:
			extra = 12 * vlen
		case kindEnum, kindFuncProto:
			extra = 8 * vlen
		case kindDatasec, kindEnum64:
			extra = 12 * vlen
		case kindPtr, kindFwd, kindTypedef, kindVolatile, kindConst, kindRestrict, kindFunc, kindFloat, kindTypeTag:
		default:
			return nil, fmt.Errorf("type %d: unknown kind %d", id, kind)
		}
		if len(types)-p-12 < extra {
			return nil, fmt.Errorf("type %d: truncated", id)
		}
		s.off = append(s.off, p)
		p += 12 + extra
	}
	return s, nil
}

// str is the string at off of the string section ("" past its end).
func (s *btfSpec) str(off uint32) []byte {
	if uint64(off) >= uint64(len(s.strs)) {
		return nil
	}
	b := s.strs[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return b
}

// head gives type id's name, kind, kind_flag, vlen and size/type.
func (s *btfSpec) head(id uint32) (name []byte, kind int, kflag bool, vlen int, st uint32) {
	if id == 0 || int(id) >= len(s.off) {
		return nil, 0, false, 0, 0
	}
	le := binary.LittleEndian
	p := s.types[s.off[id]:]
	info := le.Uint32(p[4:])
	return s.str(le.Uint32(p)), int(info>>24) & 0x1f, info>>31 != 0, int(info & 0xffff), le.Uint32(p[8:])
}

// members lists the members of struct or union id.
func (s *btfSpec) members(id uint32) []btfMember {
	_, kind, kflag, vlen, _ := s.head(id)
	if kind != kindStruct && kind != kindUnion {
		return nil
	}
	le := binary.LittleEndian
	p := s.types[s.off[id]+12:]
	ms := make([]btfMember, vlen)
	for i := range ms {
		m := p[12*i:]
		off := le.Uint32(m[8:])
		if kflag {
			off &= 0xffffff // the bitfield's size is in the top byte
		}
		ms[i] = btfMember{name: string(s.str(le.Uint32(m))), typ: le.Uint32(m[4:]), bitOff: off}
	}
	return ms
}

// find returns the id of the first type of kind named name (for a
// struct, one with members: not a forward declaration).
func (s *btfSpec) find(kind int, name string) (uint32, error) {
	for id := 1; id < len(s.off); id++ {
		n, k, _, vlen, _ := s.head(uint32(id))
		if k == kind && string(n) == name && (kind != kindStruct || vlen > 0) {
			return uint32(id), nil
		}
	}
	return 0, fmt.Errorf("BTF: no %s of kind %d", name, kind)
}

// resolve skips typedefs and qualifiers.
func (s *btfSpec) resolve(id uint32) uint32 {
	for n := 0; n < 32; n++ {
		_, kind, _, _, st := s.head(id)
		switch kind {
		case kindTypedef, kindVolatile, kindConst, kindRestrict, kindTypeTag:
			id = st
		default:
			return id
		}
	}
	return id
}

// memberOffset is the byte offset of the member named name in struct or
// union id, looking into anonymous members too, and the member's type.
func (s *btfSpec) memberOffset(id uint32, name string) (uint32, uint32, error) {
	off, typ, ok := s.memberIn(s.resolve(id), name, 0)
	if !ok {
		n, _, _, _, _ := s.head(s.resolve(id))
		return 0, 0, fmt.Errorf("BTF: %s has no member %s", n, name)
	}
	if off%8 != 0 {
		return 0, 0, fmt.Errorf("BTF: member %s is a bitfield", name)
	}
	return off / 8, typ, nil
}

func (s *btfSpec) memberIn(id uint32, name string, depth int) (uint32, uint32, bool) {
	if depth > 8 {
		return 0, 0, false
	}
	for _, m := range s.members(id) {
		if m.name == name {
			return m.bitOff, m.typ, true
		}
		if m.name == "" {
			if off, typ, ok := s.memberIn(s.resolve(m.typ), name, depth+1); ok {
				return m.bitOff + off, typ, true
			}
		}
	}
	return 0, 0, false
}

// path is the byte offset of a chain of members from struct id, each
// (but the last) a struct embedded in the one before: "inet", "sk", ...
func (s *btfSpec) path(id uint32, names ...string) (uint32, error) {
	var total uint32
	for _, n := range names {
		off, typ, err := s.memberOffset(id, n)
		if err != nil {
			return 0, err
		}
		total += off
		id = typ
	}
	return total, nil
}
