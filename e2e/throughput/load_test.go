package throughput

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// machineLoad is what the machine did while the rounds ran, so that a figure
// measured on a shared machine says how shared it was: the CPU time all
// processes used (/proc/stat), the part this benchmark's processes used, and
// the busiest other processes (from /proc/<pid>/stat snapshots at both ends;
// a process that came and went between them shows only in the total).
type machineLoad struct {
	start     time.Time
	busy      float64 // /proc/stat busy seconds, all CPUs
	self      float64 // this test process's rusage
	server    float64
	processes map[int]procCPU
}

type procCPU struct {
	comm string
	cpu  float64
}

func snapshotLoad(serverPID int) (machineLoad, error) {
	l := machineLoad{start: time.Now(), processes: map[int]procCPU{}}
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return l, err
	}
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	if len(f) < 9 || f[0] != "cpu" {
		return l, fmt.Errorf("/proc/stat: first line %q", f)
	}
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return l, fmt.Errorf("/proc/stat: %w", err)
		}
		l.busy += float64(v) / clockTicks
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return l, err
	}
	l.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	if l.server, err = cpuSeconds(serverPID); err != nil {
		return l, err
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		cpu, err := cpuSeconds(pid)
		if err != nil {
			continue // gone, or not ours to read
		}
		comm, _ := os.ReadFile(filepath.Join(d, "comm"))
		l.processes[pid] = procCPU{comm: strings.TrimSpace(string(comm)), cpu: cpu}
	}
	return l, nil
}

// describeLoad compares two snapshots; readers is the CPU the measured
// consumer and exporter processes used over their lives.
func describeLoad(a, b machineLoad, readers float64, serverPID int) string {
	wall := b.start.Sub(a.start).Seconds()
	ours := (b.self - a.self) + (b.server - a.server) + readers
	busy := b.busy - a.busy
	type other struct {
		name string
		cpu  float64
	}
	var others []other
	for pid, p := range b.processes {
		q, ok := a.processes[pid]
		if !ok || pid == os.Getpid() || pid == serverPID || p.cpu-q.cpu < 0.05 {
			continue
		}
		others = append(others, other{fmt.Sprintf("%s[%d]", p.comm, pid), p.cpu - q.cpu})
	}
	slices.SortFunc(others, func(x, y other) int {
		switch {
		case x.cpu > y.cpu:
			return -1
		case x.cpu < y.cpu:
			return 1
		}
		return 0
	})
	var top []string
	for _, o := range others[:min(len(others), 6)] {
		top = append(top, fmt.Sprintf("%s %.1f s", o.name, o.cpu))
	}
	if len(top) == 0 {
		top = []string{"none above 0.05 s"}
	}
	return fmt.Sprintf("machine during the rounds (%.1f s wall, %d CPUs = %.1f CPU-s): busy %.1f CPU-s, of which this benchmark's processes %.1f, others ≈ %.1f; busiest others: %s",
		wall, len(cpuCount()), wall*float64(len(cpuCount())), busy, ours, busy-ours, strings.Join(top, ", "))
}

// cpuCount lists the cpuN lines of /proc/stat: the CPUs the machine has.
func cpuCount() []string {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	var cpus []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			cpus = append(cpus, strings.Fields(l)[0])
		}
	}
	return cpus
}
