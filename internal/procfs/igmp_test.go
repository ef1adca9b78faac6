//go:build linux && amd64

package procfs

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestParseIgmp(t *testing.T) {
	text := "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n" +
		"1\tlo        :     2      V3\n" +
		"\t\t\t\t030707EF     1 0:00000000\t\t0\n" +
		"\t\t\t\t010000E0     1 0:00000000\t\t0\n" +
		"4\teth0      :     1      V3\n" +
		"\t\t\t\t010000E0     1 0:00000000\t\t0\n"
	got, err := ParseIgmp(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []McastMember{
		{1, netip.MustParseAddr("239.7.7.3")}, {1, netip.MustParseAddr("224.0.0.1")}, {4, netip.MustParseAddr("224.0.0.1")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{
		"hdr\n\t\t\t\t010000E0     1 0:00000000\t\t0\n", // group before any interface
		"hdr\nx\tlo :\n",
		"hdr\n1\tlo :\n\t\t\t\tZZ0000E0 1\n",
		"hdr\n1\tlo :\n\t\t\t\t0100E0 1\n",
	} {
		if _, err := ParseIgmp(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if c, err := ParseIgmp("hdr\n"); err != nil || len(c) != 0 {
		t.Errorf("empty: %v %v", c, err)
	}
}

func TestParseIgmp6(t *testing.T) {
	text := "1    lo              ff020000000000000000000000000001     1 0000000C 0\n" +
		"1    lo              ff150000000000000000000000070001     1 00000004 0\n" +
		"2    ifb0            ff020000000000000000000000000001     1 0000000C 0\n"
	got, err := ParseIgmp6(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []McastMember{
		{1, netip.MustParseAddr("ff02::1")}, {1, netip.MustParseAddr("ff15::7:1")}, {2, netip.MustParseAddr("ff02::1")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"1 lo\n", "x lo ff020000000000000000000000000001 1\n", "1 lo ff0200 1\n", "1 lo zz020000000000000000000000000001 1\n"} {
		if _, err := ParseIgmp6(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzParseIgmp(f *testing.F) {
	f.Add([]byte("Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n1\tlo        :     1      V3\n\t\t\t\t010000E0     1 0:00000000\t\t0\n"))
	f.Add([]byte("1    lo              ff020000000000000000000000000001     1 0000000C 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range mustNotPanic(ParseIgmp(string(b))) {
			if !m.Group.Is4() {
				t.Errorf("IPv4 parser gave %v", m.Group)
			}
		}
		for _, m := range mustNotPanic(ParseIgmp6(string(b))) {
			if !m.Group.Is6() {
				t.Errorf("IPv6 parser gave %v", m.Group)
			}
		}
	})
}

func mustNotPanic(m []McastMember, _ error) []McastMember { return m }
