package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nuncio-gw/nuncio/internal/ratelimit"
	"github.com/nuncio-gw/nuncio/internal/ratelimit/limiter"
)

func ratelimitCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("ratelimit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("config-dir", "", "`DIR` of envoyproxy/ratelimit YAML files (*.yaml, *.yml), one domain each; reloaded on change")
	watch := fs.Bool("watch", true, "reload --config-dir when it changes (a bad file keeps the running config)")
	redisAddr := fs.String("redis", "", "Redis `HOST:PORT` shared by all replicas; empty counts in memory (one replica only)")
	redisUser := fs.String("redis-username", "", "Redis ACL user")
	redisDB := fs.Int("redis-db", 0, "Redis database number")
	redisTimeout := fs.Duration("redis-timeout", 100*time.Millisecond, "bound on every Redis call, connecting included")
	redisPool := fs.Int("redis-pool-size", 0, "most Redis connections (0: 10 per CPU)")
	prefix := fs.String("key-prefix", "", "prefix of every Redis key (empty: envoyproxy/ratelimit's keys, shared with it)")
	alg := fs.String("algorithm", "fixed", "counting: fixed (calendar windows, as envoyproxy/ratelimit) or sliding (two-window estimate)")
	listen := fs.String("listen", "127.0.0.1:8081", "gRPC address of the rate limit service and gRPC health")
	metrics := fs.String("metrics", "", "`HOST:PORT` serving /metrics in Prometheus text (none when empty)")
	headers := fs.Bool("response-headers", false, "add x-ratelimit-limit, -remaining and -reset to responses")
	near := fs.Float64("near-limit-ratio", 0.8, "share of a limit past which hits count as near_limit")
	drain := fs.Duration("drain-time", 5*time.Second, "how long calls in flight may finish on SIGTERM")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: nuncio ratelimit --config-dir DIR [--redis HOST:PORT] [--listen 127.0.0.1:8081] [--algorithm fixed|sliding] [--metrics HOST:PORT]")
		return 2
	}
	algorithm, err := limiter.ParseAlgorithm(*alg)
	if err != nil {
		fmt.Fprintln(stderr, "nuncio ratelimit: --algorithm:", err)
		return 2
	}
	log, _, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "nuncio:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = ratelimit.Run(ctx, ratelimit.Options{
		ConfigDir: *dir, Watch: *watch,
		Redis: *redisAddr, RedisUsername: *redisUser, RedisPassword: os.Getenv("NUNCIO_REDIS_PASSWORD"),
		RedisDB: *redisDB, RedisTimeout: *redisTimeout, RedisPool: *redisPool, KeyPrefix: *prefix,
		Algorithm: algorithm, Listen: *listen, Metrics: *metrics, ResponseHeaders: *headers,
		NearLimitRatio: *near, DrainTime: *drain, Logger: log,
	})
	if err != nil {
		fmt.Fprintln(stderr, "nuncio:", err)
		return 1
	}
	return 0
}
