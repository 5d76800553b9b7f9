package xdsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nuncio-gw/nuncio/internal/controller/source"
)

// ListenAndRun is the controller process: it serves ADS on address (and, when healthAddress
// is not empty, HTTP /healthz and /readyz there) with the resources of src, until ctx is done or
// src fails to start.
func ListenAndRun(ctx context.Context, address, healthAddress string, src source.Source, opts Options) error {
	lis, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("xds: %w", err)
	}
	s := New(opts)
	if healthAddress != "" {
		hl, err := net.Listen("tcp", healthAddress)
		if err != nil {
			lis.Close()
			return fmt.Errorf("health: %w", err)
		}
		hs := &http.Server{Handler: s.HealthHandler(), ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(hl)
		defer hs.Close()
		s.log.Info("health: serving", "address", hl.Addr().String())
	}
	s.log.Info("xds: serving ADS", "address", lis.Addr().String())
	if err := s.Run(ctx, src, lis); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	s.log.Info("xds: stopped")
	return nil
}
