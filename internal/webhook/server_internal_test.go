package webhook

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request whose headers exceed 64 KiB is refused with 431 before any handler runs, whatever net/http
// reads beyond MaxHeaderBytes; one just under the limit is served. (Before, a 64 KiB header passed
// and was decided: a 200 on a Public path, a 302 with a 64 KiB login URL on a protected one.)
func TestServerRefusesHeadersOver64KiB(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(ln.Addr().String(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	status := func(headerBytes int) int {
		t.Helper()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		head := "GET /check/traefik HTTP/1.1\r\nHost: authgate\r\nConnection: close\r\nX-Pad: "
		// The request line and headers come to headerBytes, the final empty line included.
		pad := strings.Repeat("a", headerBytes-len(head)-len("\r\n\r\n"))
		if _, err := fmt.Fprintf(conn, "%s%s\r\n\r\n", head, pad); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("a request of %d header bytes: %v", headerBytes, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(maxHeaderBytes + 1); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers of 64 KiB + 1 byte: %d, want 431", got)
	}
	if got := status(maxHeaderBytes + 4<<10); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers of 68 KiB: %d, want 431", got)
	}
	if got := status(maxHeaderBytes - 1<<10); got != http.StatusOK {
		t.Errorf("headers of 63 KiB: %d, want 200", got)
	}
}
