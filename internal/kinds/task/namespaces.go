package task

import (
	"fmt"
	"os"

	"github.com/ckpt/ckpt/internal/ckerr"
)

// namespaces are the task's namespaces other than PID and time, which
// the dump and restore paths handle as the tree's (a PID namespace whose
// init is the root, the time namespace from its clocks). A task in a
// UTS, IPC, mount, network, cgroup or user namespace other than ckpt's
// is refused before it is frozen: a restore would put it into ckpt's own
// (its hostname, its mounts, its network gone), which nothing could tell.
type namespaces struct{}

// foreignNS are the namespaces a task must share with ckpt.
var foreignNS = []string{"uts", "ipc", "mnt", "net", "cgroup", "user"}

func (namespaces) Name() string { return "namespaces" }
func (namespaces) Stage() Stage { return StageThread }

// Inspect refuses a task in a namespace of its own, before anything is
// changed.
func (namespaces) Inspect(pid int) error {
	for _, ns := range foreignNS {
		mine, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			continue // a kernel without this namespace kind
		}
		its, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil {
			return fmt.Errorf("read its %s namespace: %w", ns, err)
		}
		if its != mine {
			return ckerr.Unsupported(pid, fmt.Sprintf("its %s namespace (%s; ckpt's is %s)", ns, its, mine),
				"a task in a "+ns+" namespace of its own cannot be dumped yet: a restore would put it into ckpt's; run ckpt inside that namespace (nsenter) or dump a task that shares ckpt's")
		}
	}
	return nil
}

func (namespaces) Collect(t Thread, e Entry) error { return nil }
func (namespaces) Restore(t Thread, e Entry) error { return nil }

// Inspector is an attribute that checks, before the task is frozen,
// that it can be dumped at all.
type Inspector interface {
	Inspect(pid int) error
}

// InspectAll runs every attribute's check of a task that is not frozen
// yet.
func InspectAll(pid int) error {
	for _, a := range All {
		if i, ok := a.(Inspector); ok {
			if err := i.Inspect(pid); err != nil {
				return err
			}
		}
	}
	return nil
}
