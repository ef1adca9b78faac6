package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// sampleMatrix is a matrix with a program's cells, a real program's and
// the CRIU columns' with where they ran, and, if others, the tables of
// two other CRIU versions.
func sampleMatrix(others bool) *Matrix {
	m := NewMatrix()
	m.Set("mem_anon", "native", Result{Pass: true})
	m.Set("mem_anon", "compat", Result{Reason: "it broke"})
	m.Set("mem_anon", "native-to-criu", Result{Pass: true})
	m.Set("files", "compat-to-criu", Result{Reason: "after the restore by criu: FAIL: files.c:267: F_GETFL 0 -> 0100000"})
	m.Set(realPrefix+"redis", "native", Result{Pass: true})
	m.tests[realPrefix+"redis"] = "TestRedis"
	m.SetWhere("native", "Linux 6.18 amd64 (the host)")
	for _, c := range CRIUColumns {
		m.SetWhere(c, "Linux 6.1.0-57-cloud-amd64 amd64 in a qemu guest with CRIU 3.17.1 (TestCRIUInterop)")
	}
	if !others {
		return m
	}
	v42 := NewMatrix()
	v42.Set("mem_anon", "native-to-criu", Result{Pass: true})
	v42.Set("mem_anon", "compat-to-criu", Result{Pass: true})
	v42.Set("mem_anon", "native-from-criu", Result{Pass: true})
	v42.Set("files", "compat-to-criu", Result{Reason: "after the restore by criu: FAIL: files.c:267: fd 7 (ro.dat): F_GETFL 0 -> 0100000"})
	v42.Set("files", "native-from-criu", Result{Pass: true})
	v42.Set("unix_pair", "native-from-criu", Result{Reason: "dump by criu failed: skqueue: Control messages in queue, not supported"})
	for _, c := range CRIUColumns {
		v42.SetWhere(c, "Linux 6.1.0-57-cloud-amd64 amd64 in a qemu guest with CRIU 4.2 (`criu --version`: Version: 4.2 GitID: v4.2), 2026-11-30 (TestCRIUInterop)")
	}
	m.MergeOtherCRIU("4.2", v42)
	v319 := NewMatrix()
	v319.Set("threads", "native-to-criu", Result{Reason: "restore by criu failed: x"})
	m.MergeOtherCRIU("3.19", v319)
	return m
}

// writeRead writes m and reads it back, returning the file's text too.
func writeRead(t *testing.T, m *Matrix) (*Matrix, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := m.Write(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadMatrix(path)
	if err != nil {
		t.Fatalf("read back: %v\n%s", err, b)
	}
	return got, string(b)
}

func TestMatrixOtherCRIURoundTrip(t *testing.T) {
	for _, others := range []bool{false, true} {
		m := sampleMatrix(others)
		got, text := writeRead(t, m)
		if !reflect.DeepEqual(got, m) {
			t.Errorf("others %v: read back\n%+v\nwant\n%+v\nfrom\n%s", others, got, m, text)
		}
		if has := strings.Contains(text, otherCRIUHeading); has != others {
			t.Errorf("others %v: the file has the section %v:\n%s", others, has, text)
		}
		// The main regeneration (TestEndToEnd, TestGuestKernel, the real
		// programs, TestCRIUInterop with the matrix's CRIU) reads the
		// file, merges its cells into it and writes it: the other
		// tables stay as they are, byte for byte.
		again := NewMatrix()
		again.Merge(got, nil)
		again.Set("mem_anon", "native-from-criu", Result{Pass: true})
		got2, text2 := writeRead(t, again)
		if !reflect.DeepEqual(got2.criu, m.criu) {
			t.Errorf("others %v: a main -update changed the other tables to %+v", others, got2.criu)
		}
		_, section, _ := strings.Cut(text, otherCRIUHeading)
		_, section2, _ := strings.Cut(text2, otherCRIUHeading)
		if section2 != section {
			t.Errorf("others %v: a main -update rewrote the section:\n%s\nwas\n%s", others, section2, section)
		}
		if r, ok := got2.Get("mem_anon", "native-from-criu"); !ok || !r.Pass {
			t.Errorf("others %v: the main -update's cell: %+v %v", others, r, ok)
		}
	}
	if got, _ := writeRead(t, sampleMatrix(false)); got.OtherCRIU("4.2") != nil || len(got.criu) != 0 {
		t.Errorf("a file without the section reads as tables %v", got.criu)
	}
}

func TestMatrixOtherCRIUSection(t *testing.T) {
	_, text := writeRead(t, sampleMatrix(true))
	_, section, _ := strings.Cut(text, otherCRIUHeading)
	for _, want := range []string{
		"### CRIU 3.19\n\n| program | native-to-criu | compat-to-criu | native-from-criu | compat-from-criu |\n|---|---|---|---|---|\n| threads | FAIL |  |  |  |\n\n0 passed, 1 failed.\n",
		"### CRIU 4.2\n",
		"| files |  | FAIL | PASS |  |\n| mem_anon | PASS | PASS | PASS |  |\n| unix_pair |  |  | FAIL |  |\n\n4 passed, 2 failed.\n",
		"- `compat-from-criu`: Linux 6.1.0-57-cloud-amd64 amd64 in a qemu guest with CRIU 4.2 (`criu --version`: Version: 4.2 GitID: v4.2), 2026-11-30 (TestCRIUInterop)\n",
		"Failures:\n\n- files / compat-to-criu: after the restore by criu: FAIL: files.c:267: fd 7 (ro.dat): F_GETFL 0 -> 0100000\n- unix_pair / native-from-criu: dump by criu failed: skqueue: Control messages in queue, not supported\n",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the section lacks %q:\n%s", want, section)
		}
	}
	if strings.Index(section, "### CRIU 3.19") > strings.Index(section, "### CRIU 4.2") {
		t.Errorf("versions out of order:\n%s", section)
	}
	// The main count is the main tables' only.
	if !strings.Contains(text, "\n3 passed, 2 failed.\n\n## Where each column ran") {
		t.Errorf("main count:\n%s", text)
	}
	// An update with some programs of one version keeps the others.
	m := sampleMatrix(true)
	run := NewMatrix()
	run.Set("files", "native-to-criu", Result{Pass: true})
	run.Set("posix_shm", "compat-from-criu", Result{Pass: true})
	m.MergeOtherCRIU("4.2", run)
	v := m.OtherCRIU("4.2")
	for _, c := range []struct {
		prog, col string
		pass      bool
	}{{"files", "native-to-criu", true}, {"files", "compat-to-criu", false}, {"posix_shm", "compat-from-criu", true}, {"mem_anon", "native-to-criu", true}} {
		if r, ok := v.Get(c.prog, c.col); !ok || r.Pass != c.pass {
			t.Errorf("after the merge %s / %s: %+v %v, want pass %v", c.prog, c.col, r, ok, c.pass)
		}
	}
	if _, ok := m.OtherCRIU("3.19").Get("threads", "native-to-criu"); !ok {
		t.Error("the merge into 4.2 lost 3.19's table")
	}
}

func TestMatrixOtherCRIUCorrupt(t *testing.T) {
	_, text := writeRead(t, sampleMatrix(true))
	for _, c := range []struct{ name, old, new string }{
		{"bad cell", "| mem_anon | PASS | PASS | PASS |  |", "| mem_anon | PASS | OK | PASS |  |"},
		{"missing cell", "| mem_anon | PASS | PASS | PASS |  |", "| mem_anon | PASS | PASS | PASS |"},
		{"no program", "| mem_anon | PASS | PASS | PASS |  |", "|  | PASS | PASS | PASS |  |"},
		{"bad header", "| program | native-to-criu | compat-to-criu | native-from-criu | compat-from-criu |\n|---|---|---|---|---|\n| files", "| program | native-to-criu | compat-to-criu | native-from-criu |\n|---|---|---|---|\n| files"},
		{"no version", "### CRIU 3.19", "### CRIU "},
		{"same version twice", "### CRIU 3.19", "### CRIU 4.2"},
		{"row before a version", "\n### CRIU 3.19", "\n| threads | PASS |  |  |  |\n\n### CRIU 3.19"},
		{"reason for a pass", "- unix_pair / native-from-criu:", "- mem_anon / native-from-criu:"},
		{"reason for no cell", "- unix_pair / native-from-criu:", "- unix_pair / compat-from-criu:"},
		{"bad where column", "- `compat-from-criu`: Linux 6.1.0-57-cloud-amd64 amd64 in a qemu guest with CRIU 4.2", "- `compat-criu`: Linux 6.1.0-57-cloud-amd64 amd64 in a qemu guest with CRIU 4.2"},
		{"version without table", "\n- threads / native-to-criu: restore by criu failed: x\n", "\n- threads / native-to-criu: restore by criu failed: x\n\n### CRIU 9.9\n\nNo table.\n"},
		{"stray item", "\nFailures:\n", "\n- what\n\nFailures:\n"},
		{"section twice", "### CRIU 3.19", otherCRIUHeading + "\n\n### CRIU 3.19"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := strings.Replace(text, c.old, c.new, 1)
			if bad == text {
				t.Fatalf("%q is not in the file", c.old)
			}
			path := filepath.Join(t.TempDir(), "RESULTS.md")
			if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			if m, err := ReadMatrix(path); err == nil {
				t.Errorf("no error; read %+v from\n%s", m.criu, bad)
			} else {
				t.Log(err)
			}
		})
	}
}

// TestMatrixFileRoundTrip reads docs/RESULTS.md and writes it again: the
// writer must give back the file it reads, or a regeneration would
// change what it did not run.
func TestMatrixFileRoundTrip(t *testing.T) {
	want, err := os.ReadFile(resultsPath)
	if err != nil {
		t.Skip(err)
	}
	m, err := ReadMatrix(resultsPath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	if err := m.Write(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s does not round-trip; written:\n%s", resultsPath, got)
	}
}

// TestCRIUColumnsMatch keeps TestCRIUInterop's columns and the matrix's
// in step.
func TestCRIUColumnsMatch(t *testing.T) {
	var cols []string
	for _, c := range criuColumns {
		cols = append(cols, c.col)
	}
	if !slices.Equal(cols, CRIUColumns) || !slices.Equal(Columns[len(Columns)-len(CRIUColumns):], CRIUColumns) {
		t.Errorf("criuColumns %v, CRIUColumns %v, Columns %v", cols, CRIUColumns, Columns)
	}
}
