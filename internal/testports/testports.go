// Package testports finds free loopback ports for tests whose servers need
// several consecutive ones (replica i listens on port + i).
package testports

import (
	"net"
	"strconv"
	"testing"
)

// Consecutive returns the first of n consecutive ports that are free on
// 127.0.0.1 when it looks (another process may take one afterwards).
func Consecutive(t testing.TB, n int) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		ok := base+n-1 < 65536
		for i := 1; ok && i < n; i++ {
			l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l2)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports on 127.0.0.1", n)
	return 0
}
