// Command upstream is the backend the resilience tests start as a separate process, so that
// killing it (kill -9) and restarting it on the same port behaves like a real service dying.
//
// It answers every request with its name. Flags make it misbehave:
//
//	-delay 2s        wait before answering
//	-reset-every 3   close the connection without answering every 3rd request
//	-fail-every 2    answer 503 to every 2nd request
//	-fail-burst 5    answer 503 to 5 requests in a row out of every 20
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	name := flag.String("name", "upstream", "name put in every answer")
	delay := flag.Duration("delay", 0, "wait this long before answering")
	resetEvery := flag.Int64("reset-every", 0, "close the connection without answering every n-th request")
	failEvery := flag.Int64("fail-every", 0, "answer 503 to every n-th request")
	failBurst := flag.Int64("fail-burst", 0, "answer 503 to n requests in a row out of every 20")
	flag.Parse()

	var n atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		i := n.Add(1)
		if *resetEvery > 0 && i%*resetEvery == 0 {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0) // RST, not FIN
				}
				c.Close()
				return
			}
		}
		if *delay > 0 {
			select {
			case <-time.After(*delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("x-upstream", *name)
		if (*failEvery > 0 && i%*failEvery == 0) || (*failBurst > 0 && i%20 < *failBurst) {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "%s overloaded\n", *name)
			return
		}
		fmt.Fprintf(w, "%s\n", *name)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The test waits for this line before sending traffic.
	fmt.Fprintf(os.Stdout, "listening %s\n", ln.Addr())
	log.Fatal((&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln))
}
