//go:build !unix

package accesslog

func watchReopenSignal() {}
