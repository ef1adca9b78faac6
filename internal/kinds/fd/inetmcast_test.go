//go:build linux && amd64

package fd

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
	got, err := parseIgmp(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []mcastCand{
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
		if _, err := parseIgmp(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if c, err := parseIgmp("hdr\n"); err != nil || len(c) != 0 {
		t.Errorf("empty: %v %v", c, err)
	}
}

func TestParseIgmp6(t *testing.T) {
	text := "1    lo              ff020000000000000000000000000001     1 0000000C 0\n" +
		"1    lo              ff150000000000000000000000070001     1 00000004 0\n" +
		"2    ifb0            ff020000000000000000000000000001     1 0000000C 0\n"
	got, err := parseIgmp6(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []mcastCand{
		{1, netip.MustParseAddr("ff02::1")}, {1, netip.MustParseAddr("ff15::7:1")}, {2, netip.MustParseAddr("ff02::1")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"1 lo\n", "x lo ff020000000000000000000000000001 1\n", "1 lo ff0200 1\n", "1 lo zz020000000000000000000000000001 1\n"} {
		if _, err := parseIgmp6(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
