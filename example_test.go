package ckpt_test

import (
	"fmt"
	"log"

	"github.com/ckpt/ckpt"
)

// Dump a running process tree, then restore it and wait for it.
func Example() {
	pid := 12345 // the process to checkpoint
	if _, err := ckpt.Dump(ckpt.DumpOptions{Pid: pid, ImagesDir: "/var/lib/ckpt/job"}); err != nil {
		log.Fatal(err)
	}
	p, err := ckpt.Restore(ckpt.RestoreOptions{ImagesDir: "/var/lib/ckpt/job"})
	if err != nil {
		log.Fatal(err)
	}
	ws, err := p.Wait()
	fmt.Println(ws.ExitStatus(), err)
}
