package procfs

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// auxvBytes encodes pairs as native words of the given size.
func auxvBytes(wordSize int, words ...uint64) []byte {
	b := make([]byte, 0, len(words)*wordSize)
	for _, w := range words {
		if wordSize == 8 {
			b = binary.NativeEndian.AppendUint64(b, w)
		} else {
			b = binary.NativeEndian.AppendUint32(b, uint32(w))
		}
	}
	return b
}

func TestParseAuxvReal(t *testing.T) {
	data := readTestdata(t, "auxv_x86_64.bin")
	es, err := ParseAuxv(data, 8)
	if err != nil {
		t.Fatal(err)
	}
	// 368 bytes = 23 pairs, the last being AT_NULL.
	if len(es) != 22 {
		t.Fatalf("got %d entries, want 22", len(es))
	}
	want := map[uint64]uint64{
		33: 0x7fd6146b8000, // AT_SYSINFO_EHDR = [vdso] start in smaps_python.txt
		6:  4096,           // AT_PAGESZ
		3:  0x55a181bd1040, // AT_PHDR
		4:  0x38,           // AT_PHENT
		27: 0x1c,           // AT_RSEQ_FEATURE_SIZE
		28: 0x20,           // AT_RSEQ_ALIGN
	}
	got := map[uint64]uint64{}
	for _, e := range es {
		got[e.Type] = e.Value
		if e.Type == 0 {
			t.Error("AT_NULL included")
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("type %d: got %#x, want %#x", k, got[k], v)
		}
	}
}

func TestParseAuxv(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		wordSize int
		want     []AuxvEntry
	}{
		{"64-bit", auxvBytes(8, 6, 4096, 25, 0x7ffc0000, 0, 0), 8,
			[]AuxvEntry{{6, 4096}, {25, 0x7ffc0000}}},
		{"32-bit (ia32)", auxvBytes(4, 32, 0xf7f00000, 33, 0xf7f01000, 6, 4096, 0, 0), 4,
			[]AuxvEntry{{32, 0xf7f00000}, {33, 0xf7f01000}, {6, 4096}}},
		{"32-bit max values", auxvBytes(4, 0xffffffff, 0xffffffff, 0, 0), 4,
			[]AuxvEntry{{0xffffffff, 0xffffffff}}},
		{"stops at AT_NULL", append(auxvBytes(8, 6, 4096, 0, 0, 7, 7), 1, 2, 3), 8,
			[]AuxvEntry{{6, 4096}}},
		{"no AT_NULL", auxvBytes(8, 6, 4096), 8, []AuxvEntry{{6, 4096}}},
		{"only AT_NULL", auxvBytes(8, 0, 0), 8, nil},
		{"empty", nil, 8, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuxv(tt.data, tt.wordSize)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseAuxvErrors(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		wordSize int
		sub      string
	}{
		{"bad word size", auxvBytes(8, 0, 0), 2, "word size 2"},
		{"zero word size", nil, 0, "word size 0"},
		{"partial pair 64", auxvBytes(8, 6, 4096, 7), 8, "8 trailing bytes at offset 16"},
		{"partial word 32", append(auxvBytes(4, 6, 4096), 1), 4, "1 trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAuxv(tt.data, tt.wordSize)
			wantErr(t, err, tt.sub)
		})
	}
}
