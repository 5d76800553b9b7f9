// Package ratelimit runs Nuncio's global rate limit service (`nuncio ratelimit`): Envoy's
// envoy.service.ratelimit.v3.RateLimitService over gRPC, configured by a directory of
// envoyproxy/ratelimit YAML files (reloaded when they change, keeping the last good set), counting
// in Redis so that any number of gateway replicas share one count, or in memory for one replica.
//
// It stands alone: nothing here imports the data plane, which reaches it over gRPC like any
// other rate limit service. The parts are config (the YAML format and matching), limiter (the
// counting contract, the algorithms and the in-memory store), redis (the shared store) and
// service (the protocol and stats).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nuncio-gw/nuncio/internal/ratelimit/config"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/redis"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/service"
)

// Options are `nuncio ratelimit`'s flags.
type Options struct {
	// ConfigDir holds the *.yaml rule files.
	ConfigDir string
	// Watch reloads ConfigDir when it changes.
	Watch bool
	// Redis is host:port; empty counts in memory (one replica only).
	Redis         string
	RedisUsername string
	RedisPassword string
	RedisDB       int
	// RedisTimeout bounds each Redis call (default 100ms).
	RedisTimeout time.Duration
	RedisPool    int
	KeyPrefix    string
	Algorithm    limiter.Algorithm
	// Listen is the gRPC address. Listener, when set, is used instead (tests pass one on port 0).
	Listen   string
	Listener net.Listener
	// Metrics is the address of the HTTP server with /metrics (Prometheus text); empty: none.
	Metrics         string
	ResponseHeaders bool
	NearLimitRatio  float64
	// DrainTime is how long in-flight calls may take to finish after ctx is done.
	DrainTime time.Duration
	Logger    *slog.Logger
	// Ready, when set, is called once serving, with the gRPC and metrics addresses (the latter
	// nil without Metrics).
	Ready func(grpcAddr, metricsAddr net.Addr)
}

// Run serves until ctx is done, then stops gracefully: health turns NOT_SERVING, new calls are
// refused, and calls in flight get DrainTime to finish. It fails at once when the config
// directory does not load.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.DrainTime <= 0 {
		o.DrainTime = 5 * time.Second
	}
	cfg, err := config.Load(o.ConfigDir)
	if err != nil {
		return fmt.Errorf("ratelimit config: %w", err)
	}

	var backend limiter.Backend
	if o.Redis == "" {
		backend = limiter.NewMemory(o.Algorithm)
		log.Info("ratelimit: counting in memory (one replica only)", "algorithm", o.Algorithm.String())
	} else {
		redis.SetLogger(log)
		rb := redis.New(redis.Options{
			Addr: o.Redis, Username: o.RedisUsername, Password: o.RedisPassword, DB: o.RedisDB,
			Timeout: o.RedisTimeout, PoolSize: o.RedisPool, Algorithm: o.Algorithm, KeyPrefix: o.KeyPrefix,
		})
		defer rb.Close()
		if err := rb.Ping(ctx); err != nil {
			// Not fatal: the service answers with errors until Redis is there, as it does when
			// Redis goes away later.
			log.Warn("ratelimit: redis not answering yet", "address", o.Redis, "error", err)
		}
		backend = rb
		log.Info("ratelimit: counting in redis", "address", o.Redis, "algorithm", o.Algorithm.String())
	}

	svc := service.New(service.Options{
		Backend: backend, ResponseHeaders: o.ResponseHeaders, NearLimitRatio: o.NearLimitRatio, Logger: log,
	})
	svc.SetConfig(cfg)
	svc.Stats().ConfigLoadSuccess.Add(1)
	log.Info("ratelimit: config loaded", "dir", o.ConfigDir, "domains", cfg.Domains(), "files", len(cfg.Files))

	lis := o.Listener
	if lis == nil {
		if lis, err = net.Listen("tcp", o.Listen); err != nil {
			return fmt.Errorf("ratelimit listen: %w", err)
		}
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	rlsv3.RegisterRateLimitServiceServer(gs, svc)
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(rlsv3.RateLimitService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)

	var metricsSrv *http.Server
	var metricsAddr net.Addr
	errc := make(chan error, 3)
	if o.Metrics != "" {
		ml, err := net.Listen("tcp", o.Metrics)
		if err != nil {
			lis.Close()
			return fmt.Errorf("ratelimit metrics listen: %w", err)
		}
		metricsAddr = ml.Addr()
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_ = svc.Stats().WritePrometheus(w)
		})
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := metricsSrv.Serve(ml); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("ratelimit metrics: %w", err)
			}
		}()
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if !o.Watch {
			return
		}
		err := config.Watch(watchCtx, o.ConfigDir, func(c *config.Config, err error) {
			if err != nil {
				svc.Stats().ConfigLoadError.Add(1)
				log.Error("ratelimit: config rejected, keeping the previous one", "error", err)
				return
			}
			svc.SetConfig(c)
			svc.Stats().ConfigLoadSuccess.Add(1)
			log.Info("ratelimit: config reloaded", "domains", c.Domains(), "files", len(c.Files))
		})
		if err != nil {
			errc <- err
		}
	}()

	go func() {
		if err := gs.Serve(lis); err != nil {
			errc <- fmt.Errorf("ratelimit grpc: %w", err)
		}
	}()
	log.Info("ratelimit: serving", "address", lis.Addr().String())
	if o.Ready != nil {
		o.Ready(lis.Addr(), metricsAddr)
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(o.DrainTime):
		gs.Stop()
		<-stopped
	}
	if metricsSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = metricsSrv.Shutdown(sctx)
		cancel()
	}
	stopWatch()
	<-watchDone
	log.Info("ratelimit: stopped")
	return err
}
