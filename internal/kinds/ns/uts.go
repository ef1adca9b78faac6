//go:build linux && amd64

package ns

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/utsns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt/ckpt/internal/model"
)

// A UTS namespace is its host name and NIS domain name (uname's nodename
// and domainname; utsns_entry).

func collectUTS(d *model.Dump, id uint32) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	if d.UTS == nil {
		d.UTS = map[uint32]*utsns.UtsnsEntry{}
	}
	d.UTS[id] = &utsns.UtsnsEntry{
		Nodename:   proto.String(unix.ByteSliceToString(u.Nodename[:])),
		Domainname: proto.String(unix.ByteSliceToString(u.Domainname[:])),
	}
	return nil
}

func restoreUTS(d *model.Dump, id uint32) error {
	e := d.UTS[id]
	if e == nil {
		return fmt.Errorf("no utsns-%d.img", id)
	}
	if err := unix.Sethostname([]byte(e.GetNodename())); err != nil {
		return fmt.Errorf("sethostname %q: %w", e.GetNodename(), err)
	}
	if err := unix.Setdomainname([]byte(e.GetDomainname())); err != nil {
		return fmt.Errorf("setdomainname %q: %w", e.GetDomainname(), err)
	}
	return nil
}
