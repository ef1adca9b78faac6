//go:build linux && amd64

package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Stat holds selected fields of /proc/PID/stat, written by do_task_stat()
// in fs/proc/array.c. Field numbers below are 1-based as in proc(5).
//
// The address fields depend on access: when the reader lacks
// PTRACE_MODE_READ access to the task, do_task_stat prints StartCode and
// EndCode as 1 and StartStack and StartData..EnvEnd as 0; for a task with
// no mm (kernel thread, zombie) all of them are 0.
type Stat struct {
	Pid     int    // field 1
	Comm    string // field 2, without the parentheses; raw, not escaped
	State   byte   // field 3, e.g. 'R', 'S', 'D', 'Z', 't', 'T'
	PPid    int    // field 4
	Pgrp    int    // field 5
	Session int    // field 6
	TtyNr   int    // field 7, controlling terminal device number
	Tpgid   int    // field 8, the foreground process group of that terminal, -1 without one

	Flags      uint64 // field 9, PF_* task flags
	Nice       int    // field 19, -20..19
	NumThreads int    // field 20
	StartTime  uint64 // field 22, clock ticks since boot

	StartCode, EndCode, StartStack uint64 // fields 26, 27, 28

	StartData, EndData, StartBrk, ArgStart, ArgEnd, EnvStart, EnvEnd uint64 // fields 45..51

	ExitSignal int // field 38, signal sent to the parent on death

	RtPriority uint64 // field 40, the real-time priority, 0 for other policies
	Policy     uint64 // field 41, SCHED_* (without SCHED_RESET_ON_FORK)

	// ExitCode is field 52, the wait status of a task that has exited
	// (a zombie); 0 when the kernel does not show it.
	ExitCode int
}

// statMinFields is the number of fields ParseStat needs: up to env_end
// (field 51, present since Linux 3.5).
const statMinFields = 51

// ParseStat parses the contents of /proc/PID/stat. The comm field is
// printed raw between '(' and ')' and may itself contain spaces, newlines
// and ") (", so the comm ends at the LAST ')' in the data. Fields after 51
// (exit_code) are accepted and ignored; fewer than 51 fields is an error.
func ParseStat(data []byte) (*Stat, error) {
	lp := bytes.IndexByte(data, '(')
	rp := bytes.LastIndexByte(data, ')')
	if lp < 0 || rp < lp {
		return nil, fmt.Errorf("stat: no \"(comm)\" field")
	}
	st := &Stat{}
	pid := string(data[:lp])
	if !strings.HasSuffix(pid, " ") {
		return nil, fmt.Errorf("stat field 1 (pid): want space before '('")
	}
	var err error
	if st.Pid, err = parseIntField("stat field 1 (pid)", pid[:len(pid)-1]); err != nil {
		return nil, err
	}
	if st.Pid <= 0 {
		return nil, fmt.Errorf("stat field 1 (pid): %d is not positive", st.Pid)
	}
	st.Comm = string(data[lp+1 : rp])

	rest := string(data[rp+1:])
	rest = strings.TrimSuffix(rest, "\n")
	if !strings.HasPrefix(rest, " ") {
		return nil, fmt.Errorf("stat: want space after comm")
	}
	// f[i] is field i+3 (1-based), since pid and comm are consumed.
	f := strings.Split(rest[1:], " ")
	if len(f)+2 < statMinFields {
		return nil, fmt.Errorf("stat: %d fields, want at least %d", len(f)+2, statMinFields)
	}
	field := func(n int) string { return f[n-3] }

	if s := field(3); len(s) != 1 {
		return nil, fmt.Errorf("stat field 3 (state): want one character, got %q", clip(s))
	}
	st.State = field(3)[0]

	ints := []struct {
		n    int
		name string
		dst  *int
	}{
		{4, "ppid", &st.PPid},
		{5, "pgrp", &st.Pgrp},
		{6, "session", &st.Session},
		{7, "tty_nr", &st.TtyNr},
		{8, "tpgid", &st.Tpgid},
		{19, "nice", &st.Nice},
		{20, "num_threads", &st.NumThreads},
		{38, "exit_signal", &st.ExitSignal},
	}
	for _, x := range ints {
		if *x.dst, err = parseIntField(fmt.Sprintf("stat field %d (%s)", x.n, x.name), field(x.n)); err != nil {
			return nil, err
		}
	}
	uints := []struct {
		n    int
		name string
		dst  *uint64
	}{
		{9, "flags", &st.Flags},
		{22, "starttime", &st.StartTime},
		{26, "startcode", &st.StartCode},
		{27, "endcode", &st.EndCode},
		{28, "startstack", &st.StartStack},
		{40, "rt_priority", &st.RtPriority},
		{41, "policy", &st.Policy},
		{45, "start_data", &st.StartData},
		{46, "end_data", &st.EndData},
		{47, "start_brk", &st.StartBrk},
		{48, "arg_start", &st.ArgStart},
		{49, "arg_end", &st.ArgEnd},
		{50, "env_start", &st.EnvStart},
		{51, "env_end", &st.EnvEnd},
	}
	for _, x := range uints {
		if *x.dst, err = parseUint(fmt.Sprintf("stat field %d (%s)", x.n, x.name), field(x.n), 10, 64); err != nil {
			return nil, err
		}
	}
	if len(f)+2 >= 52 {
		if st.ExitCode, err = parseIntField("stat field 52 (exit_code)", field(52)); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// ReadStat reads and parses /proc/PID/stat.
func ReadStat(pid int) (*Stat, error) {
	return readStat(fmt.Sprintf("/proc/%d/stat", pid))
}

// ReadTaskStat reads and parses /proc/PID/task/TID/stat.
func ReadTaskStat(pid, tid int) (*Stat, error) {
	return readStat(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
}

func readStat(path string) (*Stat, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	st, err := ParseStat(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return st, nil
}
