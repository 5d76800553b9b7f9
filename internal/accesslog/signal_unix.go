//go:build unix

package accesslog

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

var signalOnce sync.Once

// watchReopenSignal reopens the log files on SIGUSR1, the signal logrotate's postrotate
// scripts send (Envoy's equivalent is the admin POST /reopen_logs).
func watchReopenSignal() {
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1)
		go func() {
			for range ch {
				Reopen()
			}
		}()
	})
}
