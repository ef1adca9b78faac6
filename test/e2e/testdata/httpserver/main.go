// httpserver is a small Go net/http server for the end-to-end test
// TestGoHTTPServer: it listens on 127.0.0.1 (an ephemeral port), prints
// "READY <port>", and answers GET /count with a counter it keeps in its
// heap, increased by each request, so that the test can tell that the
// state survived a checkpoint. Keep-alive is on (net/http's default) and
// there is no idle timeout, so a client's connection stays open across
// the dump.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
)

func main() {
	var mu sync.Mutex
	count := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		n := count
		mu.Unlock()
		fmt.Fprintf(w, "%d %s", n, r.RemoteAddr)
	})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
	fmt.Printf("READY %d\n", ln.Addr().(*net.TCPAddr).Port)
	if err := http.Serve(ln, mux); err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}
