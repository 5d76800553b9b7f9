package loopback

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Request is what an Echo received, and what it answers with as JSON.
type Request struct {
	Server  string      `json:"server"` // the Echo's Name
	Method  string      `json:"method"`
	Path    string      `json:"path"` // the request URI: path and query
	Host    string      `json:"host"`
	Proto   string      `json:"proto"` // "HTTP/1.1", "HTTP/2.0"
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
	Trailer http.Header `json:"trailer"`
}

// Echo is an upstream that answers every request with 200, an x-upstream header naming it
// and a JSON Request describing what it received, and keeps each request for the test.
type Echo struct {
	Name string

	mu   sync.Mutex
	reqs []Request
}

func (e *Echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := Request{
		Server: e.Name, Method: r.Method, Path: r.URL.RequestURI(), Host: r.Host, Proto: r.Proto,
		Header: r.Header, Body: string(body), Trailer: r.Trailer,
	}
	e.mu.Lock()
	e.reqs = append(e.reqs, req)
	e.mu.Unlock()
	w.Header().Set("content-type", "application/json")
	w.Header().Set("x-upstream", e.Name)
	json.NewEncoder(w).Encode(req)
}

// Requests returns the requests received so far, oldest first.
func (e *Echo) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.reqs...)
}

// DecodeEcho parses an Echo's answer.
func DecodeEcho(body []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return Request{}, fmt.Errorf("not an echo: %v: %.200q", err, body)
	}
	return r, nil
}
