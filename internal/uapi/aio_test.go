//go:build linux && amd64

package uapi

import (
	"encoding/binary"
	"errors"
	"testing"
)

func ringHeader(id, nr, head, tail, magic, hl uint32) []byte {
	b := make([]byte, AIORingHeaderSize)
	for i, v := range []uint32{id, nr, head, tail, magic, 1, 0, hl} {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

func TestParseAIORing(t *testing.T) {
	r, err := ParseAIORing(ringHeader(0, 127, 125, 1, AIO_RING_MAGIC, 32), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if r.Nr != 127 || r.Head != 125 || r.Tail != 1 || r.CompatFeatures != 1 || r.Unreaped() != 3 {
		t.Errorf("parsed %+v, unreaped %d", r, r.Unreaped())
	}
	for name, c := range map[string]struct {
		b   []byte
		len uint64
	}{
		"short":      {ringHeader(0, 127, 0, 0, AIO_RING_MAGIC, 32)[:31], 4096},
		"magic":      {ringHeader(0, 127, 0, 0, 0xdeadbeef, 32), 4096},
		"header len": {ringHeader(0, 127, 0, 0, AIO_RING_MAGIC, 64), 4096},
		"nr vs size": {ringHeader(0, 255, 0, 0, AIO_RING_MAGIC, 32), 4096},
		"head":       {ringHeader(0, 127, 127, 0, AIO_RING_MAGIC, 32), 4096},
		"tail":       {ringHeader(0, 127, 0, 200, AIO_RING_MAGIC, 32), 4096},
		"tiny ring":  {ringHeader(0, 0, 0, 0, AIO_RING_MAGIC, 32), 16},
		"no events":  {ringHeader(0, 0, 0, 0, AIO_RING_MAGIC, 32), 32},
	} {
		_, err := ParseAIORing(c.b, c.len)
		if !errors.Is(err, ErrAIORing) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The ring sizes io_setup gives on a machine with 2 possible CPUs
// (checked on Linux 6.18): the estimate makes the same ring again.
func TestAIONrEvents(t *testing.T) {
	for _, c := range []struct {
		len    uint64
		events uint64
		nrReq  uint32
	}{
		{4096, 127, 62}, {8192, 255, 126}, {12288, 383, 190}, {49152, 1535, 766},
	} {
		if got := AIORingEvents(c.len); got != c.events {
			t.Errorf("AIORingEvents(%d) = %d, want %d", c.len, got, c.events)
		}
		if got := AIONrEvents(c.len); got != c.nrReq {
			t.Errorf("AIONrEvents(%d) = %d, want %d", c.len, got, c.nrReq)
		}
		// ioctx_alloc: max(nr, 4*2 CPUs)*2 + 2 events, whole pages.
		n := max(uint64(c.nrReq), 8)*2 + 2
		pages := (AIORingHeaderSize + n*IOEventSize + 4095) / 4096
		if pages*4096 != c.len {
			t.Errorf("io_setup(%d) makes %d pages, want %d bytes", c.nrReq, pages, c.len)
		}
	}
	if AIONrEvents(0) != 0 || AIONrEvents(64) != 0 {
		t.Error("a ring of fewer than 2 events has an nr_req")
	}
}

func TestAppendIOCB(t *testing.T) {
	b := AppendIOCB(nil, 7, IOCB_CMD_PWRITE, 3, 0x1000, 1, 4096)
	if len(b) != IOCBSize {
		t.Fatalf("%d bytes", len(b))
	}
	le := binary.LittleEndian
	if le.Uint64(b[0:]) != 7 || le.Uint16(b[16:]) != IOCB_CMD_PWRITE || le.Uint32(b[20:]) != 3 ||
		le.Uint64(b[24:]) != 0x1000 || le.Uint64(b[32:]) != 1 || le.Uint64(b[40:]) != 4096 {
		t.Errorf("iocb % x", b)
	}
}

func TestMapHuge(t *testing.T) {
	if f := MapHugeFlag(2 << 20); f != 21<<26 || MapHugeSize(f|0x40000) != 2<<20 {
		t.Errorf("2 MiB: %#x", f)
	}
	if f := MapHugeFlag(1 << 30); f != 30<<26 || MapHugeSize(f) != 1<<30 {
		t.Errorf("1 GiB: %#x", f)
	}
	if MapHugeFlag(3<<20) != 0 || MapHugeFlag(0) != 0 || MapHugeSize(0x40000) != 0 {
		t.Error("not a power of two, or no size bits")
	}
}
