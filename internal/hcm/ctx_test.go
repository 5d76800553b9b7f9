package hcm

import (
	"context"
	"net/http"
	"testing"
	"unsafe"

	"github.com/nuncio-gw/nuncio/internal/header"
)

func TestStreamCtx(t *testing.T) {
	t.Run("cancel without Done", func(t *testing.T) {
		c := &streamCtx{parent: context.Background()}
		if c.Err() != nil {
			t.Fatal("fresh context is cancelled")
		}
		c.cancel()
		if c.Err() != context.Canceled {
			t.Fatalf("Err %v after cancel", c.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("Done asked after cancel is not closed")
		}
	})
	t.Run("derived contexts end with the stream", func(t *testing.T) {
		c := &streamCtx{parent: context.Background()}
		d, cancel := context.WithCancel(c)
		defer cancel()
		if c.reusable() {
			t.Fatal("a context others derived from is reusable")
		}
		c.cancel()
		<-d.Done()
	})
	t.Run("parent cancels", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		c := &streamCtx{parent: parent}
		done := c.Done()
		cancel()
		<-done
		if c.Err() == nil {
			t.Fatal("Err nil after the parent ended")
		}
	})
	t.Run("values come from the parent", func(t *testing.T) {
		type key struct{}
		c := &streamCtx{parent: context.WithValue(context.Background(), key{}, 1)}
		if c.Value(key{}) != 1 {
			t.Fatal("value lost")
		}
		c.Done()
		if c.Value(key{}) != 1 {
			t.Fatal("value lost after Done")
		}
	})
	t.Run("released streams get a fresh context once it escaped", func(t *testing.T) {
		s := getStream(&Config{}, nil)
		s.startCtx(context.Background())
		escaped := s.Ctx
		_ = escaped.Done()
		s.release()
		if escaped.Err() == nil {
			t.Fatal("a stream's context outlived the stream")
		}
		s2 := getStream(&Config{}, nil)
		defer s2.release()
		s2.startCtx(context.Background())
		if s2.Ctx == escaped {
			t.Fatal("an escaped context was reused")
		}
	})
}

// The HTTP/2 encoder keeps header strings in its dynamic table for the connection's life,
// while response fields alias buffers reused after the stream: what it gets must be copies.
func TestCopyFieldsDoesNotAlias(t *testing.T) {
	buf := []byte("x-upstreamvalue1")
	var h header.Map
	h.Add(unsafe.String(&buf[0], 10), unsafe.String(&buf[10], 6))
	h.Add(unsafe.String(&buf[0], 10), "two")
	hdr := http.Header{}
	copyFields(hdr, &h, "")
	copy(buf, "XXXXXXXXXXXXXXXX")
	//lint:ignore SA1008 copyFields keeps HTTP/2's lower-case names; the map is read as written
	if got := hdr["x-upstream"]; len(got) != 2 || got[0] != "value1" || got[1] != "two" {
		t.Fatalf("copied fields changed with their source: %q", hdr)
	}
}

// The HTTP/2 server looks Content-Length, Content-Type and Date up under net/http's keys;
// under lower-case ones it would add its own next to ours.
func TestCopyFieldsServerKeys(t *testing.T) {
	var h header.Map
	h.Add("content-length", "2")
	h.Add("content-type", "text/plain")
	h.Add("date", "Sat, 21 Nov 2026 00:00:00 GMT")
	h.Add("x-other", "1")
	hdr := http.Header{}
	copyFields(hdr, &h, "")
	for _, k := range []string{"Content-Length", "Content-Type", "Date", "x-other"} {
		if len(hdr[k]) != 1 {
			t.Errorf("%s: %q", k, hdr)
		}
	}
}
