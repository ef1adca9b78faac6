package image

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// FuzzDecode decodes arbitrary bytes as an image of every kind ckpt
// reads and unmarshals each entry into its go-criu type. Nothing may
// panic, and whatever decodes and unmarshals must encode and decode
// again to as many entries.
func FuzzDecode(f *testing.F) {
	ss := samples()
	for i, s := range ss {
		b := encode(f, s)
		f.Add(uint8(i), b)
		f.Add(uint8(i), b[:len(b)/2])
		// The same bytes under every other kind's name.
		f.Add(uint8((i+1)%len(ss)), b)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		s := ss[int(which)%len(ss)]
		ents, err := Decode(s.kind, data)
		if err != nil {
			return
		}
		var msgs []proto.Message
		for i, e := range ents {
			m := s.newMsg(i)
			if proto.Unmarshal(e, m) != nil {
				return
			}
			msgs = append(msgs, m)
		}
		b, err := Encode(s.kind, msgs...)
		if err != nil {
			t.Fatalf("re-encode %s: %v", s.kind, err)
		}
		again, err := Decode(s.kind, b)
		if err != nil || len(again) != len(msgs) {
			t.Fatalf("re-decode %s: %d entries of %d, %v", s.kind, len(again), len(msgs), err)
		}
	})
}
