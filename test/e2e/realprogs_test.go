package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// realRan holds the real programs' results of this run, recorded by
// realProgram and written or checked by finishRealPrograms once every
// test has run.
var realRan = NewMatrix()

// realProgram records, when t ends, its result as the cell col of the
// real program name. A skipped test records nothing.
func realProgram(t *testing.T, name, col string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Skipped() {
			return
		}
		r := Result{Pass: !t.Failed()}
		if !r.Pass {
			r.Reason = t.Name() + " failed (its log says why)"
		}
		realRan.Set(realPrefix+name, col, r)
		test, _, _ := strings.Cut(t.Name(), "/")
		realRan.tests[realPrefix+name] = test
	})
}

// finishRealPrograms, given the exit code of the tests, merges the real
// programs' results into the matrix with -update; without it, a real
// program that passes where the matrix lists it as failing fails the
// run, as a test program's cell does.
func finishRealPrograms(code int) int {
	if len(realRan.cells) == 0 {
		return code
	}
	known, err := ReadMatrix(resultsPath)
	if err != nil {
		if *update {
			known = NewMatrix()
		} else {
			fmt.Printf("e2e: read %s: %v\n", resultsPath, err)
			return 1
		}
	}
	if *update {
		known.Merge(realRan, nil)
		if err := known.Write(resultsPath); err != nil {
			fmt.Printf("e2e: write %s: %v\n", resultsPath, err)
			return 1
		}
		return code
	}
	for p, cols := range realRan.cells {
		for c, r := range cols {
			if want, ok := known.Get(p, c); r.Pass && ok && !want.Pass {
				fmt.Printf("e2e: %s / %s passes now, but %s lists it as failing (%s): regenerate the matrix\n", p, c, resultsPath, want.Reason)
				code = 1
			}
		}
	}
	return code
}
