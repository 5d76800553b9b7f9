package http2

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// healthServer answers grpc.health.v1.Health through the codec's stream API: Check for the
// service "ok" (NOT_FOUND for others), and Watch with three updates.
func healthServer(s *Stream, r *request) {
	grpcMsg := func(m proto.Message) []byte {
		b, _ := proto.Marshal(m)
		return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b))), b...)
	}
	s.WriteHeaders(&Header{Status: 200, Fields: []hpack.HeaderField{{Name: "content-type", Value: "application/grpc"}}}, false)
	var req healthpb.HealthCheckRequest
	if b := r.body.Bytes(); len(b) >= 5 {
		proto.Unmarshal(b[5:], &req)
	}
	trailers := []hpack.HeaderField{{Name: "grpc-status", Value: "0"}}
	switch {
	case r.h.Path == "/grpc.health.v1.Health/Watch":
		for _, st := range []healthpb.HealthCheckResponse_ServingStatus{1, 2, 1} {
			s.WriteData(grpcMsg(&healthpb.HealthCheckResponse{Status: st}), false)
		}
	case req.Service == "ok":
		s.WriteData(grpcMsg(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}), false)
	default:
		trailers = []hpack.HeaderField{{Name: "grpc-status", Value: "5"}, {Name: "grpc-message", Value: "unknown service"}}
	}
	s.WriteTrailers(&Header{Fields: trailers})
}

// TestGRPCClient runs grpc-go's client against the codec.
func TestGRPCClient(t *testing.T) {
	ts := newTestServer(t, Config{}, &testHandler{respond: healthServer})
	cc, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tests := []struct {
		name    string
		service string
		want    codes.Code
	}{
		{name: "serving", service: "ok", want: codes.OK},
		{name: "unknown", service: "nope", want: codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 20; i++ {
				resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: tc.service})
				if status.Code(err) != tc.want {
					t.Fatalf("code %v (%v), want %v", status.Code(err), err, tc.want)
				}
				if err == nil && resp.Status != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("status %v", resp.Status)
				}
			}
		})
	}
	t.Run("server streaming", func(t *testing.T) {
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "ok"})
		if err != nil {
			t.Fatal(err)
		}
		var got []healthpb.HealthCheckResponse_ServingStatus
		for {
			m, err := w.Recv()
			if err != nil {
				if status.Code(err) != codes.OK && err.Error() != "EOF" {
					t.Fatal(err)
				}
				break
			}
			got = append(got, m.Status)
		}
		if len(got) != 3 || got[1] != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("updates %v", got)
		}
	})
}
