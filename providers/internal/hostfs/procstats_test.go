package hostfs

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// tcpRow is a /proc/net/tcp row in state st holding socket inode.
func tcpRow(st string, inode int) string {
	return "   0: 0100007F:1F90 0100007F:C350 " + st + " 00000000:00000000 00:00000000 00000000  1000        0 " + strconv.Itoa(inode) + " 1 0000000000000000 20 4 30 10 -1\n"
}

// fakeProc lays out /proc entries for the tests: per pid its parent, its
// threads, its socket inodes, its network namespace and that namespace's
// tcp and tcp6 tables.
type fakePid struct {
	pid, ppid, threads int
	sockets            []int
	netns              string
	tcp, tcp6          string
}

func fakeProc(t *testing.T, pids ...fakePid) {
	t.Helper()
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	write := func(path, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pids {
		dir := filepath.Join(root, strconv.Itoa(p.pid))
		// A command name with spaces and a parenthesis, as a process may
		// choose.
		write(filepath.Join(dir, "stat"), strconv.Itoa(p.pid)+" (a (b) c) S "+strconv.Itoa(p.ppid)+" 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n")
		write(filepath.Join(dir, "status"), "Name:\tx\nState:\tS (sleeping)\nThreads:\t"+strconv.Itoa(p.threads)+"\nVmRSS:\t1 kB\n")
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		link("/dev/null", filepath.Join(dir, "fd", "0"))
		link("pipe:[9]", filepath.Join(dir, "fd", "1"))
		for i, ino := range p.sockets {
			link("socket:["+strconv.Itoa(ino)+"]", filepath.Join(dir, "fd", strconv.Itoa(3+i)))
		}
		link(p.netns, filepath.Join(dir, "ns", "net"))
		write(filepath.Join(dir, "net", "tcp"), tcpHeader+p.tcp)
		if p.tcp6 != "" {
			write(filepath.Join(dir, "net", "tcp6"), tcpHeader+p.tcp6)
		}
	}
	// Not a process.
	write(filepath.Join(root, "meminfo"), "MemTotal: 1 kB\n")
}

func TestProcTreeThreadsConnections(t *testing.T) {
	// The host namespace's tables, as every process in it sees them:
	// 101 and 102 established (held by 10 and its child 11), 103
	// listening (held by 10), 104 established but held by another
	// process, 105 established over IPv6 (held by 12, 11's child), 106
	// shared by 10 and 11 (inherited across a fork).
	tcp := tcpRow("01", 101) + tcpRow("01", 102) + tcpRow("0A", 103) + tcpRow("01", 104) + tcpRow("01", 106) + tcpRow("06", 107)
	tcp6 := tcpRow("01", 105)
	fakeProc(t,
		fakePid{pid: 1, ppid: 0, threads: 1, netns: "net:[1]", tcp: tcp, tcp6: tcp6},
		fakePid{pid: 10, ppid: 1, threads: 4, sockets: []int{101, 103, 106, 107}, netns: "net:[1]", tcp: tcp, tcp6: tcp6},
		fakePid{pid: 11, ppid: 10, threads: 2, sockets: []int{102, 106}, netns: "net:[1]", tcp: tcp, tcp6: tcp6},
		fakePid{pid: 12, ppid: 11, threads: 1, sockets: []int{105}, netns: "net:[1]", tcp: tcp, tcp6: tcp6},
		fakePid{pid: 20, ppid: 1, threads: 7, sockets: []int{104}, netns: "net:[1]", tcp: tcp, tcp6: tcp6},
		// 13 is 10's child in a namespace of its own, whose table has
		// 201 established.
		fakePid{pid: 13, ppid: 10, threads: 1, sockets: []int{201}, netns: "net:[2]", tcp: tcpRow("01", 201) + tcpRow("01", 202)},
	)

	tree := ProcTree(10)
	if tree[0] != 10 {
		t.Fatalf("ProcTree(10) = %v, want 10 first", tree)
	}
	if got := slices.Sorted(slices.Values(tree)); !slices.Equal(got, []int{10, 11, 12, 13}) {
		t.Errorf("ProcTree(10) = %v, want 10, 11, 12, 13", tree)
	}
	if got := ProcTree(12); !slices.Equal(got, []int{12}) {
		t.Errorf("ProcTree(12) = %v, want [12]", got)
	}

	if n, err := Threads(10); err != nil || n != 4 {
		t.Errorf("Threads(10) = %d, %v; want 4", n, err)
	}
	if n, err := TreeThreads(tree); err != nil || n != 8 {
		t.Errorf("TreeThreads(%v) = %d, %v; want 8", tree, n, err)
	}
	// A process of the tree that exited since the scan is skipped; the
	// first one is not.
	if n, err := TreeThreads([]int{10, 999}); err != nil || n != 4 {
		t.Errorf("TreeThreads with an exited child = %d, %v; want 4", n, err)
	}
	if _, err := TreeThreads([]int{999, 10}); err == nil {
		t.Error("TreeThreads of an exited main process: no error")
	}

	// 101, 102, 105, 106 (once) and 201: the listening socket, the
	// closed one and another process's connection do not count.
	if n, err := EstablishedTCP(tree); err != nil || n != 5 {
		t.Errorf("EstablishedTCP(%v) = %d, %v; want 5", tree, n, err)
	}
	if n, err := EstablishedTCP([]int{10}); err != nil || n != 2 {
		t.Errorf("EstablishedTCP(10) = %d, %v; want 2 (101, 106)", n, err)
	}
	if n, err := EstablishedTCP([]int{10, 999}); err != nil || n != 2 {
		t.Errorf("EstablishedTCP with an exited child = %d, %v; want 2", n, err)
	}
	if _, err := EstablishedTCP([]int{999}); err == nil {
		t.Error("EstablishedTCP of an exited process: no error")
	}
	if _, err := EstablishedTCP(nil); err == nil {
		t.Error("EstablishedTCP of no process: no error")
	}

	if c := CountTree(10); c != (TreeCounts{Threads: 8, HasThreads: true, Connections: 5, HasConnections: true}) {
		t.Errorf("CountTree(10) = %+v, want 8 threads and 5 connections", c)
	}
	if c := CountTree(999); c.HasThreads || c.HasConnections {
		t.Errorf("CountTree of an exited process = %+v, want nothing known", c)
	}

	// Every established row of a namespace, whoever holds it: 101, 102,
	// 104, 106 and 105 over IPv6.
	if n, err := NetnsEstablishedTCP(1); err != nil || n != 5 {
		t.Errorf("NetnsEstablishedTCP(1) = %d, %v; want 5", n, err)
	}
	// No tcp6 table (IPv6 off): the IPv4 rows alone.
	if n, err := NetnsEstablishedTCP(13); err != nil || n != 2 {
		t.Errorf("NetnsEstablishedTCP(13) = %d, %v; want 2", n, err)
	}
	if _, err := NetnsEstablishedTCP(999); err == nil {
		t.Error("NetnsEstablishedTCP of an exited process: no error")
	}
}

func TestParseTCPSkipsMalformedRows(t *testing.T) {
	in := tcpHeader + tcpRow("01", 7) + "garbage\n" + "   1: 0100007F:1F90 0100007F:C350 01 x x x x x notanumber\n" + tcpRow("0A", 8)
	var got []string
	if err := parseTCP(strings.NewReader(in), func(st string, ino uint64) {
		got = append(got, st+"/"+strconv.FormatUint(ino, 10))
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"01/7", "0A/8"}; !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}

// TestEstablishedTCPLive counts this test process's own connections in the
// real /proc: n connections to a listener of its own are 2n established
// sockets (the client's end and the accepted end), and the listener is
// not one.
func TestEstablishedTCPLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("no /proc/self/net/tcp here")
	}
	base, err := EstablishedTCP([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 3
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range n {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case a := <-accepted:
			defer a.Close()
		case <-time.After(5 * time.Second):
			t.Fatal("the listener accepted nothing in 5s")
		}
	}
	got, err := EstablishedTCP([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if got-base != 2*n {
		t.Errorf("EstablishedTCP = %d with %d connections to itself (%d before), want %d more", got, n, base, 2*n)
	}
	if th, err := Threads(os.Getpid()); err != nil || th < 1 {
		t.Errorf("Threads(self) = %d, %v; want at least 1", th, err)
	}
}
