// Package ctlogtest runs real Certificate Transparency logs in-process, with no
// network beyond 127.0.0.1, for certlake's tests, benchmarks and demo.
//
// Two kinds of log are offered:
//   - a static-ct-api log ([StartStatic]): TesseraCT on Tessera's POSIX
//     storage, serving the submission API (add-chain, add-pre-chain) and the
//     monitoring API (checkpoint, tile/..., tile/data/..., issuer/...) that
//     https://c2sp.org/static-ct-api specifies;
//   - an RFC 6962 log ([StartRFC6962]): Trillian with its in-memory storage and
//     sequencer behind the CTFE personality of certificate-transparency-go,
//     serving /ct/v1/add-chain, add-pre-chain, get-sth and get-entries
//     (https://www.rfc-editor.org/rfc/rfc6962), with short get-entries reads
//     like real logs.
//
// [Generator] issues the certificates and precertificates to log, and
// [Log.AddCertificates] submits them over HTTP and reports where the log put
// them, so a test can assert exact values at exact indices.
package ctlogtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a log. The zero value gives a working log.
type Options struct {
	// Name names the log and is the path under which it is served
	// ("http://127.0.0.1:PORT/<Name>/"). Default "static" or "rfc6962".
	Name string
	// Addr is the address to listen on. Default "127.0.0.1:0" (a free port).
	Addr string
	// Roots are the roots the log accepts chains to. Default: the root of
	// NewGenerator(GeneratorOptions{}), i.e. of DefaultSeed.
	Roots []*x509.Certificate
	// Logger receives the package's own messages. Nil discards them. (The
	// logs themselves log through klog, which this package does not touch.)
	Logger *slog.Logger
	// Concurrency is how many add-chain requests AddCertificates keeps in
	// flight. Default 128.
	Concurrency int

	// BatchMaxAge is how long the static log waits to fill a sequencing
	// batch. Default 50 ms.
	BatchMaxAge time.Duration
	// BatchMaxSize is the largest sequencing batch of the static log.
	// Default 1024.
	BatchMaxSize uint
	// CheckpointInterval is how often the static log publishes a new
	// checkpoint when it has grown. Default 100 ms (Tessera's minimum).
	CheckpointInterval time.Duration
	// GCInterval is how often the static log deletes partial tiles and
	// bundles that full ones have replaced, so a stale partial tile 404s as
	// on real logs. Default 1 s; negative disables it.
	GCInterval time.Duration
	// GzipDataTiles serves tile/data/... with Content-Encoding: gzip,
	// whatever the request's Accept-Encoding, as object-store-backed static
	// logs do.
	GzipDataTiles bool

	// MaxGetEntries caps the entries one get-entries response of the RFC 6962
	// log holds; longer requests are cut the way CTFE cuts them (to the limit,
	// aligned to a multiple of it). Default 0: CTFE's own limit (1000).
	MaxGetEntries int
	// SequencerInterval is how often Trillian's sequencer runs. Default 50 ms.
	SequencerInterval time.Duration
	// SequencerBatchSize is how many queued leaves one sequencer run
	// integrates. Default 4096.
	SequencerBatchSize int

	// Key is the log's signing key. Default: a new one (the static log:
	// the one kept in its directory, made on its first start). Two logs
	// with one key and one Name (one origin) are one log whose tree
	// forked, as a test may want.
	Key *ecdsa.PrivateKey
}

func (o *Options) defaults(name string) error {
	if o.Name == "" {
		o.Name = name
	}
	if strings.ContainsAny(o.Name, "/?#% ") {
		return fmt.Errorf("log name %q: must be one path segment", o.Name)
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if len(o.Roots) == 0 {
		g, err := NewGenerator(GeneratorOptions{})
		if err != nil {
			return fmt.Errorf("default roots: %w", err)
		}
		o.Roots = []*x509.Certificate{g.Root()}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 128
	}
	if o.BatchMaxAge <= 0 {
		o.BatchMaxAge = 50 * time.Millisecond
	}
	if o.BatchMaxSize == 0 {
		o.BatchMaxSize = 1024
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 100 * time.Millisecond
	}
	if o.GCInterval == 0 {
		o.GCInterval = time.Second
	}
	if o.SequencerInterval <= 0 {
		o.SequencerInterval = 50 * time.Millisecond
	}
	if o.SequencerBatchSize <= 0 {
		o.SequencerBatchSize = 4096
	}
	return nil
}

// Cert is one logged (pre)certificate as the test put it in.
type Cert struct {
	// Index is the entry's index in the log.
	Index uint64
	// Precert is true for a precertificate (add-pre-chain).
	Precert bool
	// DNSNames are the subjectAltName DNS names.
	DNSNames []string
	// CommonName is the subject CN.
	CommonName string
	// Serial is the serial number.
	Serial *big.Int
	// NotBefore and NotAfter bound the validity.
	NotBefore, NotAfter time.Time
	// IssuerCN is the CN of the certificate that signed DER (for a
	// precertificate signed by a Precertificate Signing Certificate, that
	// certificate's CN).
	IssuerCN string
	// SHA256 is the digest of DER.
	SHA256 [32]byte
	// DER is "the certificate" of the entry: the X.509 certificate, or for a
	// precertificate the full pre-certificate (not the TBS in the leaf).
	DER []byte
}

// Log is a running in-process CT log.
type Log struct {
	// Name is Options.Name.
	Name string
	// Static is true for a static-ct-api log, false for an RFC 6962 log.
	Static bool
	// URL is what a reader uses, ending in "/": the monitoring prefix of a
	// static-ct-api log (URL+"checkpoint"), the base URL of an RFC 6962 log
	// (URL+"ct/v1/get-sth").
	URL string
	// SubmissionURL is the prefix of the add-chain endpoints, ending in "/"
	// (URL+"ct/v1/add-chain" for both kinds here).
	SubmissionURL string
	// Origin is the static log's checkpoint origin; empty for RFC 6962.
	Origin string
	// PublicKey verifies the log's SCTs, checkpoints and STHs.
	PublicKey crypto.PublicKey

	signer *ecdsa.PrivateKey // the private half of PublicKey (SignTreeHead)

	opts   Options
	log    *slog.Logger
	client *http.Client
	srv    *http.Server
	served chan struct{} // closed when srv.Serve returned

	// The kind-specific parts.
	sizeBefore  func(ctx context.Context) (uint64, error)
	waitIndexed func(ctx context.Context, start uint64, subs []submission) error
	bulk        func(ctx context.Context, issued []*Issued) ([]uint64, error)
	closeKind   func(ctx context.Context) error

	// issuersSeen holds the chains (chainKey) submitted at least once.
	// TesseraCT's issuer cache has a data race when two requests store new
	// issuers at once, so the first submission of each chain goes alone.
	issuersMu   sync.Mutex
	issuersSeen map[string]bool

	closeOnce sync.Once
	closeErr  error
}

// submission is one accepted add-chain: what was sent and what came back.
type submission struct {
	issued *Issued
	sct    addChainResponse
	index  uint64
}

type addChainResponse struct {
	SCTVersion int    `json:"sct_version"`
	ID         []byte `json:"id"`
	Timestamp  uint64 `json:"timestamp"`
	Extensions string `json:"extensions"`
	Signature  []byte `json:"signature"`
}

// serve starts the HTTP server of l on ln.
func (l *Log) serve(ln net.Listener, h http.Handler) {
	l.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	l.served = make(chan struct{})
	l.client = &http.Client{Transport: &http.Transport{
		MaxIdleConns:        4 * l.opts.Concurrency,
		MaxIdleConnsPerHost: 4 * l.opts.Concurrency,
		// The log's own responses are small JSON; compressing them costs CPU only.
		DisableCompression: true,
	}}
	go func() {
		defer close(l.served)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("serve", "log", l.Name, "err", err)
		}
	}()
}

// Close stops the HTTP server and the log behind it. Entries already
// integrated stay in a static log's directory. Close is idempotent.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var errs []error
		if l.srv != nil {
			if err := l.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("shut down http server: %w", err))
			}
			<-l.served
			l.client.CloseIdleConnections()
		}
		if l.closeKind != nil {
			if err := l.closeKind(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// TreeSize reads the size the log publishes: the checkpoint of a static log,
// get-sth of an RFC 6962 log.
func (l *Log) TreeSize(ctx context.Context) (uint64, error) {
	if l.Static {
		body, err := l.get(ctx, l.URL+"checkpoint")
		if err != nil {
			return 0, err
		}
		return checkpointSize(body)
	}
	body, err := l.get(ctx, l.URL+"ct/v1/get-sth")
	if err != nil {
		return 0, err
	}
	var sth struct {
		TreeSize uint64 `json:"tree_size"`
	}
	if err := json.Unmarshal(body, &sth); err != nil {
		return 0, fmt.Errorf("decode get-sth of %s: %w", l.Name, err)
	}
	return sth.TreeSize, nil
}

// checkpointSize returns the tree size on the second line of a checkpoint
// (https://c2sp.org/tlog-checkpoint).
func checkpointSize(cp []byte) (uint64, error) {
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 3 {
		return 0, fmt.Errorf("checkpoint has %d lines, want at least 3", len(lines))
	}
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("checkpoint size %q: %w", lines[1], err)
	}
	return n, nil
}

// AddCertificates issues n certificates with gen (gen.Next: a mix of
// certificates and precertificates), submits each through add-chain or
// add-pre-chain over HTTP, waits until the log publishes a tree that contains
// all of them, and returns them in index order.
func (l *Log) AddCertificates(ctx context.Context, n int, gen *Generator) ([]Cert, error) {
	issued := make([]*Issued, n)
	for i := range issued {
		var err error
		if issued[i], err = gen.Next(); err != nil {
			return nil, err
		}
	}
	return l.Submit(ctx, issued)
}

// Submit submits already issued certificates through the HTTP submission API,
// waits until all are in a published tree, and returns them in index order.
func (l *Log) Submit(ctx context.Context, issued []*Issued) ([]Cert, error) {
	start, err := l.sizeBefore(ctx)
	if err != nil {
		return nil, err
	}
	subs := make([]submission, len(issued))
	for i := range issued {
		subs[i].issued = issued[i]
	}
	done, err := l.submitNewChains(ctx, subs)
	if err != nil {
		return nil, err
	}
	work := make(chan int)
	errc := make(chan error, l.opts.Concurrency)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(l.opts.Concurrency, len(issued)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := l.addChain(ctx, &subs[i]); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range issued {
		if done[i] {
			continue
		}
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.waitIndexed(ctx, start, subs); err != nil {
		return nil, err
	}
	return sortedCerts(subs), nil
}

// submitNewChains submits, one at a time, the first entry of every chain the
// log has not seen yet, and reports which entries it submitted.
func (l *Log) submitNewChains(ctx context.Context, subs []submission) ([]bool, error) {
	done := make([]bool, len(subs))
	l.issuersMu.Lock()
	defer l.issuersMu.Unlock()
	if l.issuersSeen == nil {
		l.issuersSeen = map[string]bool{}
	}
	for i := range subs {
		k := chainKey(subs[i].issued.Chain)
		if l.issuersSeen[k] {
			continue
		}
		if err := l.addChain(ctx, &subs[i]); err != nil {
			return nil, err
		}
		l.issuersSeen[k] = true
		done[i] = true
	}
	return done, nil
}

func sortedCerts(subs []submission) []Cert {
	certs := make([]Cert, len(subs))
	for i, s := range subs {
		certs[i] = s.issued.Cert
		certs[i].Index = s.index
	}
	sortByIndex(certs)
	return certs
}

func sortByIndex(certs []Cert) {
	slices.SortFunc(certs, func(a, b Cert) int { return cmp.Compare(a.Index, b.Index) })
}

// addChain posts one chain, retrying the log's pushback (429/503) with
// backoff that honours Retry-After.
func (l *Log) addChain(ctx context.Context, s *submission) error {
	endpoint := "ct/v1/add-chain"
	if s.issued.Cert.Precert {
		endpoint = "ct/v1/add-pre-chain"
	}
	chain := append([][]byte{s.issued.DER}, s.issued.Chain...)
	body, err := json.Marshal(struct {
		Chain [][]byte `json:"chain"`
	}{chain})
	if err != nil {
		return err
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.SubmissionURL+endpoint, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := l.client.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", endpoint, l.Name, err)
		}
		rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read %s response of %s: %w", endpoint, l.Name, err)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			if err := json.Unmarshal(rb, &s.sct); err != nil {
				return fmt.Errorf("decode %s response of %s: %w", endpoint, l.Name, err)
			}
			return nil
		case (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) && attempt < 20:
			wait := backoff + rand.N(backoff)
			if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
				wait = time.Duration(ra) * time.Second
			}
			l.log.DebugContext(ctx, "pushback", "log", l.Name, "status", resp.StatusCode, "wait", wait)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(2*backoff, 2*time.Second)
		default:
			return fmt.Errorf("%s %s %s: status %d: %s", endpoint, l.Name, s.issued.Cert.DNSNames[0], resp.StatusCode, bytes.TrimSpace(rb))
		}
	}
}

// get fetches url and returns its body, failing on any status but 200.
func (l *Log) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// sctLeafIndex returns the leaf_index extension of a static-ct-api SCT
// (https://c2sp.org/static-ct-api#sct-extension).
func sctLeafIndex(extB64 string) (uint64, error) {
	ext, err := base64.StdEncoding.DecodeString(extB64)
	if err != nil {
		return 0, fmt.Errorf("decode sct extensions: %w", err)
	}
	for len(ext) >= 3 {
		typ, n := ext[0], int(ext[1])<<8|int(ext[2])
		ext = ext[3:]
		if len(ext) < n {
			break
		}
		if typ == 0 /* leaf_index */ && n == 5 {
			var v uint64
			for _, b := range ext[:5] {
				v = v<<8 | uint64(b)
			}
			return v, nil
		}
		ext = ext[n:]
	}
	return 0, errors.New("sct has no leaf_index extension")
}

// poll calls f every interval until it reports done, fails, or ctx ends.
func poll(ctx context.Context, interval time.Duration, f func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// KeyDER returns the log's public key as a DER SubjectPublicKeyInfo, the
// form of the log list's "key" (base64) and of ctlog.Log.Key.
func (l *Log) KeyDER() []byte {
	der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
	if err != nil {
		panic(fmt.Sprintf("ctlogtest: marshal the key of %s: %v", l.Name, err)) // the log's own key: cannot happen
	}
	return der
}

// KeyBase64 is KeyDER in base64, as ct.custom_logs and ct.static_logs take it.
func (l *Log) KeyBase64() string { return base64.StdEncoding.EncodeToString(l.KeyDER()) }
