package x86img

import (
	"testing"

	core "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/arch/x86"
)

func TestUserDescRoundTrip(t *testing.T) {
	// Every combination of the seven flags of user_desc_t.
	for bits := 0; bits < 1<<7; bits++ {
		b := func(i int) *bool { return proto.Bool(bits&(1<<i) != 0) }
		d := &core.UserDescT{
			EntryNumber: proto.Uint32(x86.GDTEntryTLSMin + uint32(bits)%x86.GDTEntryTLSEntries),
			BaseAddr:    proto.Uint32(0xf7d00000 + uint32(bits)), Limit: proto.Uint32(0xfffff),
			Seg_32Bit: b(0), ContentsH: b(1), ContentsL: b(2), ReadExecOnly: b(3),
			LimitInPages: b(4), SegNotPresent: b(5), Usable: b(6),
		}
		// Through the struct user_desc bytes, as a restore sets them and
		// a dump reads them.
		raw := x86.EncodeUserDesc(UserDescFromImage(d))
		ud, err := x86.DecodeUserDesc(raw)
		if err != nil {
			t.Fatal(err)
		}
		got := UserDescToImage(ud)
		if !proto.Equal(got, d) {
			t.Errorf("flags %#x: round trip\n got %v\nwant %v", bits, got, d)
		}
		// And through the protobuf wire format: every field is required.
		if _, err := proto.Marshal(got); err != nil {
			t.Errorf("flags %#x: marshal: %v", bits, err)
		}
	}
}

// contents is 2 bits: contents_h is its high bit, contents_l its low one.
// The lm bit has no place in the image.
func TestUserDescContents(t *testing.T) {
	e := UserDescToImage(x86.UserDesc{Contents: 2, LM: true})
	if !e.GetContentsH() || e.GetContentsL() {
		t.Errorf("contents 2: h %v l %v", e.GetContentsH(), e.GetContentsL())
	}
	if d := UserDescFromImage(&core.UserDescT{ContentsL: proto.Bool(true)}); d.Contents != 1 || d.LM {
		t.Errorf("contents_l: %+v", d)
	}
}
