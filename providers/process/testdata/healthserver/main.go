// Command healthserver is the workload of the process provider's fleet
// test: a server as small as one can be, so that hundreds fit on a test
// machine beside their supervisors. It listens on 127.0.0.1:$PORT and
// answers GET /health with "ok", GET /pid with its pid, and GET /exit/N by
// exiting with code N.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go serve(c)
	}
}

// serve answers one request and closes the connection.
func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 2048)
	n, _ := c.Read(buf)
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	f := strings.Fields(line) // GET /path HTTP/1.1
	path := ""
	if len(f) == 3 {
		path = f[1]
	}
	status, body, exit := "200 OK", "", -1
	switch {
	case path == "/health":
		body = "ok"
	case path == "/pid":
		body = strconv.Itoa(os.Getpid())
	case strings.HasPrefix(path, "/exit/"):
		if exit, _ = strconv.Atoi(strings.TrimPrefix(path, "/exit/")); exit < 0 || exit > 255 {
			exit = 1
		}
		body = "exiting"
	default:
		status, body = "404 Not Found", "not found"
	}
	fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, len(body), body)
	if exit >= 0 {
		os.Exit(exit)
	}
}
