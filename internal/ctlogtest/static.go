package ctlogtest

import (
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/tessera"
	tposix "github.com/transparency-dev/tessera/storage/posix"
	"github.com/transparency-dev/tesseract"
	"github.com/transparency-dev/tesseract/storage"
	"github.com/transparency-dev/tesseract/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// privateDir holds this package's files inside a static log's directory;
// like Tessera's ".state" it starts with a dot, and dot paths are never served.
const privateDir = ".ctlogtest"

// staticLog is what a static log keeps besides the HTTP server.
type staticLog struct {
	cts      *storage.CTStorage
	appender *tessera.Appender
	shutdown func(context.Context) error
	cancel   context.CancelFunc
	bulkState
}

// StartStatic starts a TesseraCT log whose tiles live in dir (created if
// missing) and serves it on Options.Addr. Starting it again on the same dir
// reopens the same log (same key, same entries). The returned Log's URL is the
// monitoring prefix; submissions go to SubmissionURL+"ct/v1/add-chain".
//
// ctx bounds start-up only; the log runs until Close.
func StartStatic(ctx context.Context, dir string, opts Options) (*Log, error) {
	if err := opts.defaults("static"); err != nil {
		return nil, err
	}
	// TesseraCT creates issuer/ on first use, and two concurrent first
	// submissions race on it (one fails with "file exists"); creating it
	// up front avoids that.
	for _, d := range []string{privateDir, "issuer"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create static log dir: %w", err)
		}
	}
	key := opts.Key
	if key == nil {
		var err error
		if key, err = loadOrCreateKey(filepath.Join(dir, privateDir, "key.pem")); err != nil {
			return nil, err
		}
	}
	rootsFile := filepath.Join(dir, privateDir, "roots.pem")
	if err := writeRoots(rootsFile, opts.Roots); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen for static log %s: %w", opts.Name, err)
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	base := "http://" + ln.Addr().String() + "/" + opts.Name + "/"
	// TesseraCT compares the origin with the request's host name (without
	// port) and path, so an origin without the port matches every request.
	origin := host + "/" + opts.Name

	// The log outlives ctx: background work stops when Close cancels this.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sl := &staticLog{cancel: cancel}
	newStorage := func(ctx context.Context, signer note.Signer) (*storage.CTStorage, error) {
		driver, err := tposix.New(ctx, tposix.Config{Path: dir})
		if err != nil {
			return nil, fmt.Errorf("posix driver: %w", err)
		}
		gc := opts.GCInterval
		if gc < 0 {
			gc = 0
		}
		aopts := tessera.NewAppendOptions().
			WithCheckpointSigner(signer).
			WithCTLayout().
			WithCheckpointInterval(opts.CheckpointInterval).
			WithBatching(opts.BatchMaxSize, opts.BatchMaxAge).
			// Bulk loads queue far more than a live log would; pushback
			// would only slow them down.
			WithPushback(1 << 16).
			WithGarbageCollectionInterval(gc)
		appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, aopts)
		if err != nil {
			return nil, fmt.Errorf("tessera appender: %w", err)
		}
		issuers, err := posix.NewIssuerStorage(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("issuer storage: %w", err)
		}
		cts, err := storage.NewCTStorage(ctx, &storage.CTStorageOptions{
			Appender:      appender,
			Reader:        reader,
			IssuerStorage: issuers,
			EnableAwaiter: true, // add-chain answers once the entry is in a published checkpoint
		})
		if err != nil {
			return nil, fmt.Errorf("ct storage: %w", err)
		}
		sl.cts, sl.appender, sl.shutdown = cts, appender, shutdown
		return cts, nil
	}
	handler, err := tesseract.NewLogHandler(runCtx, origin, key, tesseract.ChainValidationConfig{
		RootsPEMFile: rootsFile,
	}, newStorage, 30*time.Second, false, "/"+opts.Name, tesseract.LogHandlerOpts{DedupRL: -1})
	if err != nil {
		cancel()
		ln.Close()
		return nil, fmt.Errorf("start tesseract %s: %w", opts.Name, err)
	}

	mux := http.NewServeMux()
	prefix := "/" + opts.Name + "/"
	mux.Handle(prefix+"ct/", handler)
	files := &tileServer{dir: dir, prefix: prefix, gzipData: opts.GzipDataTiles}
	mux.Handle("GET "+prefix+"checkpoint", files)
	mux.Handle("GET "+prefix+"tile/", files)
	mux.Handle("GET "+prefix+"issuer/", files)

	l := &Log{
		Name:          opts.Name,
		Static:        true,
		URL:           base,
		SubmissionURL: base,
		Origin:        origin,
		PublicKey:     key.Public(),
		signer:        key,
		opts:          opts,
		log:           opts.Logger.With("log", opts.Name),
	}
	l.waitIndexed = l.staticWaitIndexed
	l.sizeBefore = func(context.Context) (uint64, error) { return 0, nil }
	l.bulk = func(ctx context.Context, issued []*Issued) ([]uint64, error) {
		return sl.bulk(ctx, l, issued)
	}
	l.closeKind = func(ctx context.Context) error {
		defer cancel()
		// A submission abandoned by its client may still sit in Tessera's
		// queue, which flushes it within BatchMaxAge; the appender's
		// shutdown only waits for entries whose futures were read. Let the
		// queue drain so nothing writes to dir after Close returns.
		time.Sleep(2 * opts.BatchMaxAge)
		if sl.shutdown != nil {
			if err := sl.shutdown(ctx); err != nil {
				return fmt.Errorf("shut down tessera appender: %w", err)
			}
		}
		return nil
	}
	l.serve(ln, mux)
	// Tessera publishes the empty tree's checkpoint asynchronously; readers
	// expect one from the start.
	if err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(filepath.Join(dir, "checkpoint"))
		return err == nil, nil
	}); err != nil {
		l.Close()
		return nil, fmt.Errorf("wait for first checkpoint of %s: %w", opts.Name, err)
	}
	l.log.InfoContext(ctx, "static log started", "url", base, "dir", dir)
	return l, nil
}

// staticWaitIndexed takes each entry's index from its SCT's leaf_index
// extension; TesseraCT answered only after publishing a checkpoint that
// contains it, which the final TreeSize check confirms.
func (l *Log) staticWaitIndexed(ctx context.Context, _ uint64, subs []submission) error {
	var want uint64
	for i := range subs {
		idx, err := sctLeafIndex(subs[i].sct.Extensions)
		if err != nil {
			return fmt.Errorf("sct of %s from %s: %w", subs[i].issued.Cert.DNSNames[0], l.Name, err)
		}
		subs[i].index = idx
		want = max(want, idx+1)
	}
	return l.waitTreeSize(ctx, want)
}

// waitTreeSize waits until the published tree has at least want entries.
func (l *Log) waitTreeSize(ctx context.Context, want uint64) error {
	return poll(ctx, 25*time.Millisecond, func() (bool, error) {
		size, err := l.TreeSize(ctx)
		return size >= want, err
	})
}

// tileServer serves the monitoring API of a static log straight from the
// directory Tessera writes, as a static-ct-api log's object store would.
type tileServer struct {
	dir, prefix string
	gzipData    bool
}

func (s *tileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(r.URL.Path, s.prefix)
	for _, seg := range strings.Split(rel, "/") {
		// Dot segments would reach Tessera's .state or this package's key.
		if seg == "" || strings.HasPrefix(seg, ".") {
			http.NotFound(w, r)
			return
		}
	}
	f, err := os.Open(filepath.Join(s.dir, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	switch {
	case rel == "checkpoint":
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
	case strings.HasPrefix(rel, "issuer/"):
		h.Set("Content-Type", "application/pkix-cert")
		h.Set("Cache-Control", "public, max-age=604800, immutable")
	default:
		h.Set("Content-Type", "application/octet-stream")
		if strings.Contains(rel, ".p/") {
			h.Set("Cache-Control", "no-store")
		} else {
			h.Set("Cache-Control", "public, max-age=604800, immutable")
		}
	}
	if s.gzipData && strings.HasPrefix(rel, "tile/data/") {
		h.Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.Copy(zw, f)
		_ = zw.Close()
		return
	}
	_, _ = io.Copy(w, f)
}

// loadOrCreateKey returns the log's ECDSA P-256 key, creating it on first
// start so a restarted log keeps verifying its old checkpoints.
func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	if b, err := os.ReadFile(path); err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("log key %s: no PEM block", path)
		}
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("log key %s: %w", path, err)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read log key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate log key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal log key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("write log key: %w", err)
	}
	return k, nil
}

func writeRoots(path string, roots []*x509.Certificate) error {
	var b []byte
	for _, r := range roots {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write roots: %w", err)
	}
	return nil
}
