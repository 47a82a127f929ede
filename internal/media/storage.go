// Package media stores uploads, caches provider media lazily, signs share
// URLs for providers that fetch files, and remuxes browser voice notes
// (WebM/Opus) into Ogg/Opus without re-encoding.
package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/parleyhq/parley/internal/inbox"
)

// File is an open stored object.
type File interface {
	io.ReadSeekCloser
}

// Storage keeps media objects by key. LocalStorage is the embedded one; an
// S3-compatible implementation can satisfy the same interface.
type Storage interface {
	// Put stores r under key; more than limit bytes (limit > 0) is a TooLarge
	// error and nothing is kept.
	Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error)
	Open(ctx context.Context, key string) (File, int64, error)
	Delete(ctx context.Context, key string) error
}

// LocalStorage keeps objects as files under Dir (<datadir>/media).
type LocalStorage struct{ Dir string }

func (s LocalStorage) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") || strings.ContainsRune(key, '\\') {
		return "", fmt.Errorf("media: bad storage key %q", key)
	}
	return filepath.Join(s.Dir, filepath.FromSlash(key)), nil
}

// Put writes to a temporary file and renames it into place, so a reader never
// sees a partial object.
func (s LocalStorage) Put(ctx context.Context, key string, r io.Reader, limit int64) (int64, error) {
	p, err := s.path(key)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	src := r
	if limit > 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, err := io.Copy(f, ctxReader{ctx, src})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if limit > 0 && n > limit {
		return 0, inbox.Errorf(inbox.TooLarge, "the file is larger than the %d MB limit", (limit+(1<<20)-1)>>20)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return 0, err
	}
	return n, nil
}

// Open opens a stored object.
func (s LocalStorage) Open(_ context.Context, key string) (File, int64, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, inbox.Wrap(inbox.NotFound, err, "file not found")
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// Delete removes an object; a missing one is not an error.
func (s LocalStorage) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
