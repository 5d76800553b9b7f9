package listener

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/testutil/leak"
)

func TestConnReplay(t *testing.T) {
	tests := []struct {
		name      string
		record    bool
		rewind    bool
		reads     []int // sizes of the reads done before a possible rewind
		wantAfter string
	}{
		{name: "peeked bytes come first", reads: nil, wantAfter: "hello world"},
		{name: "partial reads of the peeked bytes", reads: []int{2, 1}, wantAfter: "lo world"},
		{name: "rewind replays everything read while recording", record: true, rewind: true, reads: []int{3, 4}, wantAfter: "hello world"},
		{name: "no rewind without recording", rewind: true, reads: []int{3}, wantAfter: "lo world"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server, peer := net.Pipe()
			defer server.Close()
			go func() {
				peer.Write([]byte("hello"))
				peer.Write([]byte(" world"))
				peer.Close()
			}()
			c := &conn{Conn: server}
			if b, err := c.peek(); err != nil || b != 'h' {
				t.Fatalf("peek = %q, %v", b, err)
			}
			c.recording = tc.record
			for _, n := range tc.reads {
				if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.rewind {
				c.rewind()
			}
			rest, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(rest) != tc.wantAfter {
				t.Errorf("read %q, want %q", rest, tc.wantAfter)
			}
		})
	}
}

func TestConnMutedWrites(t *testing.T) {
	server, peer := net.Pipe()
	defer server.Close()
	defer peer.Close()
	c := &conn{Conn: server, muteWrites: true}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errMuted) {
		t.Errorf("Write while muted = %v", err)
	}
}

func TestConnRecordLimit(t *testing.T) {
	server, peer := net.Pipe()
	defer server.Close()
	go func() {
		peer.Write(make([]byte, maxRecord+1))
		peer.Close()
	}()
	c := &conn{Conn: server, recording: true}
	_, err := io.ReadAll(c)
	if err == nil {
		t.Fatal("recording past the limit did not fail")
	}
	if c.rewind() {
		t.Error("rewind after overflow")
	}
}

func TestApplyValidates(t *testing.T) {
	leak.Check(t)
	m := newTestManager(t, Options{})
	a := mustCompile(t, plainListener("a", loopback(0), "a"), nil)
	tests := []struct {
		name string
		ls   []*Compiled
		want string
	}{
		{name: "duplicate name", ls: []*Compiled{a, mustCompile(t, plainListener("a", loopback(0), "b"), nil)}, want: `listener "a": Apply: duplicate name`},
		{name: "nil", ls: []*Compiled{nil}, want: "nil Compiled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Apply(tc.ls)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply = %v, want %q", err, tc.want)
			}
			if len(m.Listeners()) != 0 {
				t.Errorf("a rejected Apply started listeners: %+v", m.Listeners())
			}
		})
	}
}
