package task

import "github.com/ckpt/ckpt/internal/kinds/ns"

// namespaces checks, before the task is frozen, that its namespaces
// can be dumped (package ns: UTS and IPC namespaces of its own are, the
// others must be ckpt's). PID and time namespaces are the tree's, which
// the dump and restore paths handle; the content of UTS and IPC
// namespaces is collected for the tree (ns.Dumper), not per task.
type namespaces struct{}

func (namespaces) Name() string { return "namespaces" }
func (namespaces) Stage() Stage { return StageThread }

// Inspect refuses a task in namespaces ckpt cannot restore, before
// anything is changed.
func (namespaces) Inspect(pid int) error { return ns.Inspect(pid) }

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
