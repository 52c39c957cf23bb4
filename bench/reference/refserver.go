// Reference server for the KestrelTcp benchmark, the Go counterpart of refserver.c: what a Go
// programmer writes with the standard library's net package for Echo (RFC 862) and daytime
// (RFC 867, the ctime line that KestrelTcp's Time handler and refserver.c send).
// Echo is one goroutine per connection running io.Copy(conn, conn), as the popular TCP echo
// images do; daytime writes "Mon Jan _2 15:04:05 2006\r\n" (UTC, day space-padded like
// strftime's %e in refserver.c) and closes. No logging, no metrics. Standard library only.
//
// Build: GOTOOLCHAIN=local go build -o refserver-go refserver.go
// Run:   GOMAXPROCS=1 ./refserver-go ECHO_PORT DAYTIME_PORT [BIND_ADDRESS=127.0.0.1]
// Stops on SIGTERM/SIGINT (Go's default: the process exits).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func listen(addr, port string) net.Listener {
	if _, err := strconv.Atoi(port); err != nil {
		fmt.Fprintf(os.Stderr, "bad port %s\n", port)
		os.Exit(2)
	}
	if net.ParseIP(addr) == nil {
		fmt.Fprintf(os.Stderr, "bad address %s\n", addr)
		os.Exit(2)
	}
	l, err := net.Listen("tcp4", net.JoinHostPort(addr, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(3)
	}
	return l
}

// accept loops over l, retrying transient errors (EMFILE, ECONNABORTED) after a short pause.
func accept(l net.Listener, serve func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		serve(c)
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintf(os.Stderr, "usage: %s ECHO_PORT DAYTIME_PORT [BIND_ADDRESS]\n", os.Args[0])
		os.Exit(2)
	}
	addr := "127.0.0.1"
	if len(os.Args) > 3 {
		addr = os.Args[3]
	}
	echo := listen(addr, os.Args[1])
	daytime := listen(addr, os.Args[2])
	fmt.Printf("refserver-go: echo on %s:%s, daytime on %s:%s\n", addr, os.Args[1], addr, os.Args[2])

	// Daytime: answered in the accept loop, as refserver.c does (one short write to a fresh socket).
	go accept(daytime, func(c net.Conn) {
		_, _ = c.Write([]byte(time.Now().UTC().Format(time.ANSIC) + "\r\n"))
		_ = c.Close()
	})
	// Echo: a goroutine per connection; io.Copy returns when the client half-closes (EOF) or on error.
	// Go sets TCP_NODELAY on accepted connections by default, as Kestrel and refserver.c do.
	accept(echo, func(c net.Conn) {
		go func() {
			_, _ = io.Copy(c, c)
			_ = c.Close()
		}()
	})
}
