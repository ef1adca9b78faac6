package main

import (
	"fmt"
	"io"
)

func show(w io.Writer, dir string) error { return fmt.Errorf("not yet") }
func check(w io.Writer) error            { return fmt.Errorf("not yet") }
