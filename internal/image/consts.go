//go:build linux && amd64

package image

// VMA status bits of vma_entry.status, from CRIU's include/image.h
// (part of the image format).
const (
	VMAAreaRegular  = 1 << 0
	VMAAreaStack    = 1 << 1
	VMAAreaVsyscall = 1 << 2
	VMAAreaVDSO     = 1 << 3
	VMAAreaHeap     = 1 << 5
	VMAFilePrivate  = 1 << 6
	VMAFileShared   = 1 << 7
	VMAAnonShared   = 1 << 8
	VMAAnonPrivate  = 1 << 9
	VMAAreaSysVIPC  = 1 << 10
	VMAAreaVVAR     = 1 << 12
	// VMAAreaAIORing marks an AIO ring (io_setup); CRIU sets it alone,
	// without VMAAreaRegular, and saves the ring's pages.
	VMAAreaAIORing = 1 << 13
	VMAAreaMemfd   = 1 << 14
)

// Pagemap entry flags (CRIU's include/pagemap.h).
const (
	PEParent  = 1 << 0
	PELazy    = 1 << 1
	PEPresent = 1 << 2
)

// Task states of task_core_entry.task_state (CRIU's include/image.h).
const (
	TaskAlive   = 1
	TaskDead    = 2
	TaskStopped = 3
)
