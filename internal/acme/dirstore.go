package acme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// DirStore is a Store and Locker over a directory, for `nuncio run`. Replicas on one machine,
// or on several that mount the same directory (flock works over NFSv4), share it:
//
//	<dir>/accounts/<id>.key          account key (0600)
//	<dir>/certificates/<name>.pem    private key, then the chain, leaf first (0600)
//	<dir>/challenges/<type>_<id>     key authorizations while an order is in flight
//	<dir>/locks/<name>.lock          flock(2) leases
//
// Key and chain share one file so that one rename replaces both at once. Every write goes to a
// temporary file in the same directory, is synced, and is renamed over the old one.
type DirStore struct {
	dir string
}

// NewDirStore returns a store rooted at dir, creating it (0700) when missing.
func NewDirStore(dir string) (*DirStore, error) {
	for _, sub := range []string{"accounts", "certificates", "challenges", "locks"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("acme: store: %w", err)
		}
	}
	return &DirStore{dir: dir}, nil
}

// Dir is the store's root.
func (s *DirStore) Dir() string { return s.dir }

// LoadAccountKey implements Store.
func (s *DirStore) LoadAccountKey(_ context.Context, id string) ([]byte, error) {
	p, err := s.path("accounts", id, ".key")
	if err != nil {
		return nil, err
	}
	return readFile(p)
}

// SaveAccountKey implements Store.
func (s *DirStore) SaveAccountKey(_ context.Context, id string, keyPEM []byte) error {
	p, err := s.path("accounts", id, ".key")
	if err != nil {
		return err
	}
	return writeFileAtomic(p, keyPEM)
}

// LoadCertificate implements Store.
func (s *DirStore) LoadCertificate(_ context.Context, name string) (chainPEM, keyPEM []byte, err error) {
	p, err := s.path("certificates", name, ".pem")
	if err != nil {
		return nil, nil, err
	}
	b, err := readFile(p)
	if err != nil {
		return nil, nil, err
	}
	// The key block comes first; everything after it is the chain.
	i := bytes.Index(b, []byte("-----BEGIN CERTIFICATE-----"))
	if i < 0 {
		return nil, nil, fmt.Errorf("acme: store: %s: no certificate", p)
	}
	return b[i:], b[:i], nil
}

// SaveCertificate implements Store.
func (s *DirStore) SaveCertificate(_ context.Context, name string, chainPEM, keyPEM []byte) error {
	p, err := s.path("certificates", name, ".pem")
	if err != nil {
		return err
	}
	return writeFileAtomic(p, append(append([]byte(nil), keyPEM...), chainPEM...))
}

// PutChallenge implements Store.
func (s *DirStore) PutChallenge(_ context.Context, id, keyAuth string) error {
	p, err := s.path("challenges", strings.Replace(id, "/", "_", 1), "")
	if err != nil {
		return err
	}
	return writeFileAtomic(p, []byte(keyAuth))
}

// GetChallenge implements Store.
func (s *DirStore) GetChallenge(_ context.Context, id string) (string, error) {
	p, err := s.path("challenges", strings.Replace(id, "/", "_", 1), "")
	if err != nil {
		return "", err
	}
	b, err := readFile(p)
	return string(b), err
}

// DeleteChallenge implements Store.
func (s *DirStore) DeleteChallenge(_ context.Context, id string) error {
	p, err := s.path("challenges", strings.Replace(id, "/", "_", 1), "")
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("acme: store: %w", err)
	}
	return nil
}

// TryLock implements Locker with flock(2) on <dir>/locks/<name>.lock. The lock belongs to the
// open file, so two DirStores in one process exclude each other as two processes do, and a
// process that dies releases it.
func (s *DirStore) TryLock(_ context.Context, name string) (Lease, error) {
	p, err := s.path("locks", name, ".lock")
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("acme: store: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("acme: store: flock %s: %w", p, err)
	}
	return fileLease{f}, nil
}

type fileLease struct{ f *os.File }

// Release unlocks by closing; the lock file stays, since removing it would let a waiter
// lock a file that a newcomer can no longer see.
func (l fileLease) Release() error { return l.f.Close() }

// path joins a store key after checking that it cannot leave its directory.
func (s *DirStore) path(sub, key, ext string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("acme: store: invalid key %q", key)
	}
	return filepath.Join(s.dir, sub, key+ext), nil
}

// validKey admits what names, account ids, tokens (base64url) and domains are made of.
func validKey(k string) bool {
	if k == "" || len(k) > 255 || k[0] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func readFile(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("acme: store: %w", err)
	}
	return b, nil
}

// writeFileAtomic writes b to p (0600) through a synced temporary file and a rename, then
// syncs the directory so that the rename survives a crash.
func writeFileAtomic(p string, b []byte) error {
	dir := filepath.Dir(p)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(p)+"-*")
	if err != nil {
		return fmt.Errorf("acme: store: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("acme: store: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

var (
	_ Store  = (*DirStore)(nil)
	_ Locker = (*DirStore)(nil)
)
