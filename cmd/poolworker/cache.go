//go:build unix

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/wire"
)

// The cache holds each executable a driver sent as <cache-dir>/<sha256>,
// mode 0755. An upload is written to a temporary file in the same directory
// and renamed into place once its size and SHA-256 are checked, so a cached
// file is always complete, even with several poolworkers sharing the
// directory. Within one poolworker, one upload per executable runs at a
// time; the others wait for it (a while) and then find the file.
//
// The cache is kept under -cache-max bytes: after each upload, the least
// recently used executables that no session of this poolworker uses are
// removed until the rest fits. A file's modification time is its last use
// (it is touched each time a driver asks for it), so the order survives a
// restart and is shared by poolworkers sharing the directory. An executable
// in use is never removed, so the cache can exceed the cap while the
// executables in use alone exceed it. Poolworkers sharing a directory see
// only their own sessions: one may remove a file another has running, which
// unix allows (the running process keeps it); a driver that asks for it
// again uploads it again.

// tempPrefix starts the names of uploads in progress.
const tempPrefix = ".upload-"

// staleUpload is the age past which a left-over upload (from a poolworker
// that died during one) is removed at start.
const staleUpload = time.Hour

// prepareCache creates dir if needed (mode 0700), checks that only this
// user can write in it, and removes stale uploads from it.
func prepareCache(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return configErr("cache directory: %v (set -cache-dir to a writable directory)", err)
	}
	if err := checkCacheDir(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return configErr("cache directory: %v", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleUpload {
			log.Info("removing a stale upload from the cache", "file", e.Name())
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// checkCacheDir refuses a cache directory that is a symbolic link, is not
// this user's, or that others may enter or write (mode other than 0700 or
// stricter): another user who could put a file in it under a driver's
// SHA-256 would have it run as this user (issue 11).
func checkCacheDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return configErr("cache directory: %v", err)
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		return configErr("-cache-dir %s is a symbolic link: give the directory itself", dir)
	}
	if !info.IsDir() {
		return configErr("-cache-dir %s is not a directory", dir)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Geteuid() {
		return configErr("-cache-dir %s belongs to UID %d, not to this user (UID %d): whoever owns it could plant "+
			"executables that run as this user. Use a directory of this user's (chown %d %s)", dir, st.Uid, os.Geteuid(), os.Geteuid(), dir)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 || perm&0o700 != 0o700 {
		return configErr("-cache-dir %s has mode %#o: it must be 0700, so that no other user can plant or swap an "+
			"executable in it (chmod 700 %s)", dir, perm, dir)
	}
	return nil
}

// ensureExecutable makes sure the executable setup describes is in the
// cache, receiving it from the driver if not, and that this node can run
// it (checkRunnable). It returns the file open for reading, its SHA-256
// checked against Setup on the open file: the caller executes that file,
// never the path, so what runs is what was hashed.
func (s *server) ensureExecutable(conn net.Conn, boot *wire.Codec, setup wire.Setup, log *slog.Logger) (*os.File, error) {
	unlock, err := s.lockHash(setup.SHA256)
	if err != nil {
		return nil, err
	}
	defer unlock()
	path := filepath.Join(s.cfg.cacheDir, setup.SHA256)
	if f, why := s.openVerified(path, setup); f != nil {
		log.Debug("executable is cached")
		if err := checkRunnable(f); err != nil {
			f.Close()
			return nil, err
		}
		if err := boot.Send(wire.KindSetupReply, wire.SetupReply{NeedBinary: false}); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	} else if why != "" {
		log.Warn("ignoring a file in the cache that is not the executable it is named after; receiving it again", "reason", why)
		os.Remove(path)
	}
	if err := boot.Send(wire.KindSetupReply, wire.SetupReply{NeedBinary: true}); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := s.receive(conn, boot, setup, path); err != nil {
		return nil, err
	}
	s.uploads.Add(1)
	s.metrics.uploads.Inc()
	log.Info("received the executable", "bytes", setup.Size, "duration", time.Since(start).Round(time.Millisecond))
	s.evict()
	f, why := s.openVerified(path, setup)
	if f == nil {
		return nil, refuse("this node stored the executable but cannot read it back intact: %s", why)
	}
	if err := checkRunnable(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := boot.Send(wire.KindSetupReply, wire.SetupReply{}); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openVerified opens the cached executable at path without following a
// symbolic link, and returns it if it is a regular file of this user's that
// no other user may write, of setup's size and SHA-256 (hashed from the open
// file). Otherwise it returns nil and why ("" if there is no file). It
// marks the file used now (its modification time, for eviction).
//
// Hashing costs a read of the file: 37-62 ms for a 16 MB executable on the
// 2-core machine of the README's figures (265-445 MB/s). So a file whose
// hash was checked is remembered by its device, inode, size and
// modification time (after the mark), and not hashed again while these
// are unchanged: in a directory of mode 0700, in a file no other user may
// write, only this user or root can change the bytes, and a write changes
// the modification time.
func (s *server) openVerified(path string, setup wire.Setup) (*os.File, string) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, ""
		}
		return nil, fmt.Sprintf("cannot open it: %v (a symbolic link is never followed)", err)
	}
	f := os.NewFile(uintptr(fd), path)
	fail := func(why string) (*os.File, string) {
		f.Close()
		s.mu.Lock()
		delete(s.verified, setup.SHA256)
		s.mu.Unlock()
		return nil, why
	}
	info, why := checkFile(f, setup)
	if why != "" {
		return fail(why)
	}
	s.mu.Lock()
	known := s.verified[setup.SHA256] == keyOf(info)
	s.mu.Unlock()
	if !known {
		s.hashes.Add(1)
		if why := checkHash(f, setup); why != "" {
			return fail(why)
		}
	}
	syscall.SetNonblock(fd, false)
	now := syscall.NsecToTimeval(time.Now().UnixNano())
	syscall.Futimes(fd, []syscall.Timeval{now, now}) // its last use, for eviction
	if info, err := f.Stat(); err == nil {
		s.mu.Lock()
		s.verified[setup.SHA256] = keyOf(info)
		s.mu.Unlock()
	}
	return f, ""
}

// fileKey identifies the content of a file this user owns: a write changes
// its modification time, a replacement its inode.
type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    int64 // Unix nanoseconds
}

// keyOf returns info's fileKey.
func keyOf(info os.FileInfo) fileKey {
	k := fileKey{size: info.Size(), mtime: info.ModTime().UnixNano()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return k
}

// checkFile says what is wrong with f, before its bytes, as the executable
// setup describes, or "": it must be a regular file of this user's that no
// other user may write, of setup's size.
func checkFile(f *os.File, setup wire.Setup) (os.FileInfo, string) {
	info, err := f.Stat()
	if err != nil {
		return nil, err.Error()
	}
	if !info.Mode().IsRegular() {
		return nil, "not a regular file"
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Sprintf("owned by UID %d, not this user", st.Uid)
	}
	if info.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Sprintf("mode %#o: others may write it", info.Mode().Perm())
	}
	if info.Size() != setup.Size {
		return nil, fmt.Sprintf("%d bytes, not %d", info.Size(), setup.Size)
	}
	return info, ""
}

// checkHash says whether f's SHA-256 is setup's: "" if so.
func checkHash(f *os.File, setup wire.Setup) string {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, setup.Size)); err != nil {
		return err.Error()
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != setup.SHA256 {
		return "its SHA-256 is " + sum
	}
	return ""
}

// lockWait bounds the wait for another driver's upload of the same
// executable: the driver waiting gives up on its SetupReply after 30s. Past
// it, both upload (safely: each to its own temporary file).
const lockWait = 20 * time.Second

// hashLock is the upload lock of one executable, and how many sessions
// hold or wait for it: the lock is forgotten when none do, so that the
// map of locks does not grow with every executable ever asked for.
type hashLock struct {
	ch   chan struct{}
	refs int
}

// lockHash waits for the upload lock of one executable, for lockWait at
// most, or until Shutdown. It returns the function that unlocks it.
func (s *server) lockHash(sum string) (unlock func(), err error) {
	s.mu.Lock()
	l := s.hashLocks[sum]
	if l == nil {
		l = &hashLock{ch: make(chan struct{}, 1)}
		s.hashLocks[sum] = l
	}
	l.refs++
	s.mu.Unlock()
	forget := func() {
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.hashLocks, sum)
		}
		s.mu.Unlock()
	}
	timer := time.NewTimer(lockWait)
	defer timer.Stop()
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; forget() }, nil
	case <-timer.C:
		return forget, nil
	case <-s.done:
		forget()
		return nil, errors.New("the node is shutting down")
	}
}

// receive reads the executable's pieces from the driver into the cache at
// path, checking their total size and SHA-256. A mismatch is a *refusal.
func (s *server) receive(conn net.Conn, boot *wire.Codec, setup wire.Setup, path string) (err error) {
	tmp, err := os.CreateTemp(s.cfg.cacheDir, tempPrefix+setup.SHA256[:12]+"-*")
	if err != nil {
		return refuse("this node cannot store the executable: %v", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := copyPieces(io.MultiWriter(tmp, h), conn, boot, setup.Size)
	if err != nil {
		return err
	}
	if n != setup.Size {
		return refuse("the executable sent has %d bytes; Setup announced %d", n, setup.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != setup.SHA256 {
		return refuse("the executable sent has SHA-256 %s; Setup announced %s", sum, setup.SHA256)
	}
	return install(tmp, path)
}

// copyPieces copies KindBinary frames from boot to w until the empty frame
// that ends them, and returns the number of bytes copied. More than max
// bytes is a *refusal. So is a failure to write (a full disk): the rest of
// the pieces is then read and dropped, so that the driver, which is still
// sending, gets the refusal and its reason rather than a broken pipe.
func copyPieces(w io.Writer, conn net.Conn, boot *wire.Codec, max int64) (int64, error) {
	var n int64
	var werr error
	for {
		conn.SetDeadline(time.Now().Add(pieceTimeout))
		k, body, err := boot.Recv()
		if err != nil {
			return n, recvErr("receiving the executable", err)
		}
		if k != wire.KindBinary {
			return n, refuse("protocol error: expected Binary, got %s", k)
		}
		if len(body) == 0 {
			if werr != nil {
				return n, refuse("this node cannot store the executable: %v", werr)
			}
			return n, nil
		}
		if n += int64(len(body)); n > max {
			return n, refuse("the executable sent is longer than the %d bytes Setup announced", max)
		}
		if werr == nil {
			_, werr = w.Write(body)
		}
	}
}

// install makes the complete upload tmp executable and renames it to path.
// It closes tmp.
func install(tmp *os.File, path string) error {
	if err := tmp.Sync(); err != nil {
		return refuse("this node cannot store the executable: %v", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return refuse("this node cannot store the executable: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return refuse("this node cannot store the executable: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return refuse("this node cannot store the executable: %v", err)
	}
	return nil
}

// acquire marks the executable sum in use by one more session.
func (s *server) acquire(sum string) {
	s.mu.Lock()
	s.inUse[sum]++
	s.mu.Unlock()
}

// releaseExe marks the executable sum in use by one session fewer.
func (s *server) releaseExe(sum string) {
	s.mu.Lock()
	if s.inUse[sum]--; s.inUse[sum] <= 0 {
		delete(s.inUse, sum)
	}
	s.mu.Unlock()
}

// cacheEntry is a file in the cache directory.
type cacheEntry struct {
	name string
	size int64
	used time.Time // modification time: last use
}

// scanCache lists the cache directory: the executables, oldest use first,
// and the total bytes of every file in it, uploads in progress included.
func (s *server) scanCache() (exes []cacheEntry, total int64) {
	entries, _ := os.ReadDir(s.cfg.cacheDir)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		total += info.Size()
		if isSHA256Hex(e.Name()) {
			exes = append(exes, cacheEntry{e.Name(), info.Size(), info.ModTime()})
		}
	}
	slices.SortFunc(exes, func(a, b cacheEntry) int { return a.used.Compare(b.used) })
	return exes, total
}

// cacheBytes returns the bytes of every file in the cache directory. It
// costs a directory scan.
func (s *server) cacheBytes() int64 {
	_, total := s.scanCache()
	return total
}

// evict removes the least recently used executables not in use until the
// cache holds at most -cache-max bytes, or only executables in use.
func (s *server) evict() {
	exes, total := s.scanCache()
	for _, e := range exes {
		if total <= s.cfg.cacheMax {
			return
		}
		s.mu.Lock() // acquire, under the same lock, sees the file or its absence
		busy := s.inUse[e.name] > 0
		var err error
		if !busy {
			err = os.Remove(filepath.Join(s.cfg.cacheDir, e.name))
			delete(s.verified, e.name)
		}
		s.mu.Unlock()
		switch {
		case busy:
			continue
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			s.log.Warn("cannot remove an executable from the cache", "exe", e.name[:12], "err", err)
			continue
		case err == nil:
			s.metrics.evictions.Inc()
			s.log.Info("removed an executable from the cache", "exe", e.name[:12], "bytes", e.size,
				"last_used", e.used.UTC().Format(time.RFC3339), "cache_max", s.cfg.cacheMax)
		}
		total -= e.size
	}
	if total > s.cfg.cacheMax {
		s.log.Warn("the cache exceeds -cache-max: the executables left are in use", "bytes", total, "cache_max", s.cfg.cacheMax)
	}
}
