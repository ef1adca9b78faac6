//go:build linux && amd64

package lazypages

import "testing"

func TestPageSet(t *testing.T) {
	var pp []page
	for i := 0; i < 8; i++ {
		pp = append(pp, page{addr: 0x10000 + uint64(i)*pageSize, off: int64(i) * pageSize})
	}
	s := newPageSet(pp)
	if s.pending != 8 || s.run(0, 100) != 8 || s.run(0, 3) != 3 {
		t.Fatalf("new set: pending %d run %d", s.pending, s.run(0, 100))
	}
	if n := s.drop(0x12000, 0x14000); n != 2 || s.pending != 6 || s.find(0x12000) != -1 || s.find(0x11fff) != 1 {
		t.Fatalf("drop: %d, pending %d", n, s.pending)
	}
	if s.run(0, 100) != 2 {
		t.Errorf("run stops at a done page: %d", s.run(0, 100))
	}
	c := s.clone()
	s.markDone(0, 2)
	if c.pending != 6 || c.find(0x10000) != 0 || s.find(0x10000) != -1 || s.pending != 4 {
		t.Errorf("clone is independent: child %d parent %d", c.pending, s.pending)
	}
	// mremap 0x14000-0x18000 to 0x40000.
	s.remap(0x14000, 0x40000, 0x4000)
	if s.find(0x14000) != -1 || s.find(0x40000) < 0 || s.pending != 4 || len(s.pages) != 4 {
		t.Errorf("remap: %+v", s.pages)
	}
	if i := s.find(0x41000); i < 0 || s.pages[i].off != 5*pageSize {
		t.Errorf("remap keeps the image offset: %+v", s.pages)
	}
	if i := s.next(0); i != 0 {
		t.Errorf("next: %d", i)
	}
	s.markDone(0, 4)
	if s.next(0) != -1 {
		t.Error("next with nothing pending")
	}
}
