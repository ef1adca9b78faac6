//go:build linux && amd64

package sockbpf

import (
	"encoding/binary"
	"strings"
	"testing"
)

// btfBuilder writes a BTF blob as the kernel lays it out.
type btfBuilder struct {
	types []byte
	strs  []byte
}

func (b *btfBuilder) str(s string) uint32 {
	if s == "" {
		return 0
	}
	off := uint32(len(b.strs))
	b.strs = append(append(b.strs, s...), 0)
	return off
}

func (b *btfBuilder) typ(name string, kind int, kflag bool, vlen int, st uint32, extra ...uint32) {
	info := uint32(kind)<<24 | uint32(vlen)
	if kflag {
		info |= 1 << 31
	}
	for _, v := range append([]uint32{b.str(name), info, st}, extra...) {
		b.types = binary.LittleEndian.AppendUint32(b.types, v)
	}
}

// member is the 12 bytes of a struct member.
func (b *btfBuilder) member(name string, typ, off uint32) []uint32 {
	return []uint32{b.str(name), typ, off}
}

func (b *btfBuilder) blob() []byte {
	h := make([]byte, 24)
	le := binary.LittleEndian
	le.PutUint16(h, btfMagic)
	h[2] = 1
	le.PutUint32(h[4:], 24)
	le.PutUint32(h[8:], 0)
	le.PutUint32(h[12:], uint32(len(b.types)))
	le.PutUint32(h[16:], uint32(len(b.types)))
	le.PutUint32(h[20:], uint32(len(b.strs)))
	return append(append(h, b.types...), b.strs...)
}

func testBTF(mcBitOff uint32, kflag bool) []byte {
	b := &btfBuilder{strs: []byte{0}}
	b.typ("int", kindInt, false, 0, 4, 32)                                                                       // 1
	b.typ("sock_common", kindStruct, false, 1, 96, b.member("skc_cookie", 1, 88*8)...)                           // 2
	b.typ("sock", kindStruct, false, 1, 96, b.member("__sk_common", 2, 0)...)                                    // 3
	b.typ("", kindUnion, false, 1, 4, b.member("mc_index", 1, 0)...)                                             // 4
	b.typ("inet_sock", kindStruct, kflag, 2, 900, append(b.member("sk", 3, 0), b.member("", 4, mcBitOff)...)...) // 5
	b.typ("udp_sock", kindFwd, false, 0, 0)                                                                      // 6
	b.typ("udp_sock_t", kindTypedef, false, 0, 8)                                                                // 7
	b.typ("udp_sock", kindStruct, false, 1, 1000, b.member("inet", 5, 0)...)                                     // 8
	b.typ("", kindFuncProto, false, 1, 1, 0, 1)                                                                  // 9
	b.typ("bpf_iter_udp", kindFunc, false, 0, 9)                                                                 // 10
	b.typ("x", kindEnum, false, 1, 4, b.str("X"), 1)                                                             // 11
	return b.blob()
}

func TestFindLayout(t *testing.T) {
	l, err := findLayout(testBTF(840*8, false))
	if err != nil {
		t.Fatal(err)
	}
	if l != (layout{iterFunc: 10, cookieOff: 88, mcIndexOff: 840}) {
		t.Errorf("layout %+v", l)
	}
	// A member offset in a struct with kind_flag: the low 24 bits.
	if l, err := findLayout(testBTF(840*8|5<<24, true)); err != nil || l.mcIndexOff != 840 {
		t.Errorf("kind_flag: %+v %v", l, err)
	}
	if _, err := findLayout(testBTF(840*8+3, false)); err == nil || !strings.Contains(err.Error(), "bitfield") {
		t.Errorf("bit offset: %v", err)
	}
	good := testBTF(840*8, false)
	for name, b := range map[string][]byte{
		"magic":     append([]byte{0, 0}, good[2:]...),
		"short":     good[:10],
		"truncated": good[:24+30], // the header says more
		"no func":   []byte(strings.Replace(string(good), "bpf_iter_udp", "bpf_iter_tcp", 1)),
		"no member": []byte(strings.Replace(string(good), "mc_index", "mc_indey", 1)),
	} {
		if _, err := findLayout(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	bad := append([]byte(nil), good...)
	bad[24+7] = 30 // first type's kind: unknown
	if _, err := parseBTF(bad); err == nil {
		t.Error("unknown kind: no error")
	}
}

func TestProgram(t *testing.T) {
	p := program(layout{iterFunc: 1, cookieOff: 88, mcIndexOff: 840})
	if len(p) != 15*8 {
		t.Fatalf("%d instructions", len(p)/8)
	}
	le := binary.LittleEndian
	// The null check jumps to "r0 = 0".
	if p[2*8] != opJeqK || 2+1+int(int16(le.Uint16(p[2*8+2:]))) != 13 || p[13*8] != opMovK {
		t.Error("null check does not jump to the exit")
	}
	if p[4*8] != opLdxDW || int16(le.Uint16(p[4*8+2:])) != 88 || p[6*8] != opLdxW || int16(le.Uint16(p[6*8+2:])) != 840 {
		t.Error("field loads")
	}
	if p[12*8] != opCall || le.Uint32(p[12*8+4:]) != seqWrite {
		t.Error("helper call")
	}
	m, err := parseRecords(append(le.AppendUint64(le.AppendUint64(nil, 7), 3), make([]byte, 16)...))
	if err != nil || len(m) != 1 || m[7] != 3 {
		t.Errorf("records: %v %v", m, err)
	}
	if _, err := parseRecords(make([]byte, 17)); err == nil {
		t.Error("17 bytes: no error")
	}
}
