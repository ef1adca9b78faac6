//go:build linux && amd64

package model

import (
	"fmt"

	filelock "github.com/checkpoint-restore/go-criu/v8/crit/images/file-lock"
	"golang.org/x/sys/unix"
)

// The kinds of lock of file_lock_entry.flag, as CRIU writes them
// (criu/include/file-lock.h: FL_POSIX, FL_FLOCK, FL_OFD; its FL_LEASE 8
// ckpt never writes). Its type is F_RDLCK or F_WRLCK for every kind, a
// flock's LOCK_SH being F_RDLCK and LOCK_EX F_WRLCK; start and len are
// bytes from the start of the file, len 0 reaching to its end.
const (
	LockPosix = 1
	LockFlock = 2
	LockOFD   = 4
)

// DescribeLock names a lock of file-locks.img in messages and in
// ckpt show: "POSIX write lock on bytes 20-29", "flock shared (LOCK_SH)
// lock".
func DescribeLock(e *filelock.FileLockEntry) string {
	kind, ok := map[uint32]string{LockPosix: "POSIX", LockOFD: "OFD", LockFlock: "flock"}[e.GetFlag()]
	if !ok {
		kind = fmt.Sprintf("kind-%d", e.GetFlag())
	}
	typ, ok := map[uint32]string{unix.F_RDLCK: "read", unix.F_WRLCK: "write"}[e.GetType()]
	if !ok {
		typ = fmt.Sprintf("type-%d", e.GetType())
	}
	if e.GetFlag() == LockFlock {
		switch e.GetType() {
		case unix.F_RDLCK:
			typ = "shared (LOCK_SH)"
		case unix.F_WRLCK:
			typ = "exclusive (LOCK_EX)"
		}
		return fmt.Sprintf("%s %s lock", kind, typ)
	}
	rng := fmt.Sprintf("bytes %d to EOF", e.GetStart())
	if e.GetLen() != 0 {
		rng = fmt.Sprintf("bytes %d-%d", e.GetStart(), e.GetStart()+e.GetLen()-1)
	}
	return fmt.Sprintf("%s %s lock on %s", kind, typ, rng)
}
