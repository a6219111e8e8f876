package ctlog

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// issuerCache keeps the DER of recently used static-ct-api issuers, by
// fingerprint, evicting the least recently used beyond maxBytes of DER.
// Concurrent lookups of the same fingerprint share one fetch, so each
// issuer is fetched once however many workers need it. Transient failures
// are not cached. An issuer the log did not serve (errIssuerUnavailable) is
// remembered for unavailableFor only: a log stores issuers before it
// sequences the entries that need them, but a proxy, an outage or a
// permissions slip may have answered for it.
type issuerCache struct {
	maxBytes       int
	unavailableFor time.Duration
	now            func() time.Time

	mu    sync.Mutex
	items map[[32]byte]*list.Element // value: *issuerItem; guarded by mu
	lru   *list.List                 // front: most recently used; guarded by mu
	bytes int                        // DER bytes held; guarded by mu
}

type issuerItem struct {
	fp      [32]byte
	done    chan struct{} // closed when der, err and expires are set
	der     []byte
	err     error
	expires time.Time // for an unavailable issuer: when to ask again
}

// defaultUnavailableFor is how long an issuer the log did not serve is
// taken as unavailable before it is asked for again.
const defaultUnavailableFor = time.Minute

func newIssuerCache(maxBytes int) *issuerCache {
	return &issuerCache{maxBytes: maxBytes, unavailableFor: defaultUnavailableFor, now: time.Now,
		items: map[[32]byte]*list.Element{}, lru: list.New()}
}

// get returns the issuer with fingerprint fp, calling fetch if it is
// neither cached nor being fetched.
func (c *issuerCache) get(ctx context.Context, fp [32]byte, fetch func(context.Context, [32]byte) ([]byte, error)) ([]byte, error) {
	for {
		c.mu.Lock()
		if el, ok := c.items[fp]; ok {
			it := el.Value.(*issuerItem)
			select {
			case <-it.done:
				if it.err != nil && !it.expires.IsZero() && c.now().After(it.expires) {
					c.removeLocked(el)
					c.mu.Unlock()
					continue
				}
			default:
			}
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			select {
			case <-it.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The fetch we waited for was cancelled by its own caller:
			// ours is still alive, so try again.
			if it.err != nil && ctx.Err() == nil &&
				(errors.Is(it.err, context.Canceled) || errors.Is(it.err, context.DeadlineExceeded)) {
				continue
			}
			return it.der, it.err
		}
		it := &issuerItem{fp: fp, done: make(chan struct{})}
		c.items[fp] = c.lru.PushFront(it)
		c.mu.Unlock()

		der, err := fetch(ctx, fp)
		c.mu.Lock()
		it.der, it.err = der, err
		el, held := c.items[fp]
		held = held && el.Value == it
		switch {
		case err != nil && !errors.Is(err, errIssuerUnavailable):
			if held {
				c.removeLocked(el)
			}
		case err != nil:
			it.expires = c.now().Add(c.unavailableFor)
		case held:
			c.bytes += len(der)
		}
		for c.bytes > c.maxBytes && c.lru.Len() > 1 {
			c.removeLocked(c.lru.Back())
		}
		c.mu.Unlock()
		close(it.done)
		return der, err
	}
}

// removeLocked drops el; c.mu is held.
func (c *issuerCache) removeLocked(el *list.Element) {
	it := c.lru.Remove(el).(*issuerItem)
	delete(c.items, it.fp)
	select {
	case <-it.done:
		c.bytes -= len(it.der)
	default: // in flight: its bytes were not counted yet
	}
}

// len returns the number of cached or in-flight issuers.
func (c *issuerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// issuerKeys checks a precertificate's issuer_key_hash against its chain
// (RFC 6962 section 3.2): the SHA-256 of the issuer's SubjectPublicKeyInfo,
// where the issuer is chain[0], or chain[1] when chain[0] is a
// Precertificate Signing Certificate. What it learns of each issuer is kept
// (bounded), since a log's entries share a handful of issuers. It is safe
// for concurrent use.
type issuerKeys struct {
	mu    sync.Mutex
	info  map[string]issuerInfo   // by DER; guarded by mu
	byFP  map[[32]byte]issuerInfo // by SHA-256 of the DER (static-ct-api fingerprints); guarded by mu
	bytes int                     // key bytes; guarded by mu
}

type issuerInfo struct {
	keyHash       [32]byte
	precertSigner bool
	err           error
	// Of a Precertificate Signing Certificate: its issuer and the value
	// of its authority key identifier (nil if none), which take the place
	// of a precertificate's in the TBSCertificate a log signs.
	rawIssuer, authKeyID []byte
}

// Bounds of issuerKeys; when either would be exceeded, it is emptied.
const (
	maxIssuerKeys      = 1024
	maxIssuerKeysBytes = 4 << 20
)

func newIssuerKeys() *issuerKeys {
	return &issuerKeys{info: map[string]issuerInfo{}, byFP: map[[32]byte]issuerInfo{}}
}

// checkFP is check for a static-ct-api entry, whose chain comes with the
// fingerprints of its certificates (fps[i] is the SHA-256 of chain[i], as
// the issuer cache checked): they key the lookups, cheaper than the DER.
func (k *issuerKeys) checkFP(ikh [32]byte, fps [][32]byte, chain [][]byte) error {
	if len(chain) == 0 || len(fps) != len(chain) {
		return k.check(ikh, chain)
	}
	in := k.getFP(fps[0], chain[0])
	if in.err == nil && in.precertSigner && len(chain) >= 2 {
		in = k.getFP(fps[1], chain[1])
	} else if in.err == nil && in.precertSigner {
		return k.check(ikh, chain)
	}
	if in.err != nil {
		return fmt.Errorf("issuer: %w", in.err)
	}
	if in.keyHash != ikh {
		return keyHashMismatch(ikh, in.keyHash)
	}
	return nil
}

// cachedFP returns what is known of the issuer whose fingerprint is fp, if
// getFP saw it.
func (k *issuerKeys) cachedFP(fp [32]byte) (issuerInfo, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	in, ok := k.byFP[fp]
	return in, ok
}

func (k *issuerKeys) getFP(fp [32]byte, der []byte) issuerInfo {
	k.mu.Lock()
	in, ok := k.byFP[fp]
	k.mu.Unlock()
	if ok {
		return in
	}
	in = k.get(der)
	k.mu.Lock()
	if len(k.byFP) >= maxIssuerKeys {
		clear(k.byFP)
	}
	k.byFP[fp] = in
	k.mu.Unlock()
	return in
}

func (k *issuerKeys) check(ikh [32]byte, chain [][]byte) error {
	if len(chain) == 0 {
		return errors.New("precertificate without an issuer in its chain")
	}
	in := k.get(chain[0])
	if in.err == nil && in.precertSigner {
		if len(chain) < 2 {
			return errors.New("precertificate signed by a Precertificate Signing Certificate without its issuer")
		}
		in = k.get(chain[1])
	}
	if in.err != nil {
		return fmt.Errorf("issuer: %w", in.err)
	}
	if in.keyHash != ikh {
		return keyHashMismatch(ikh, in.keyHash)
	}
	return nil
}

// keyHashMismatch is the error of a precertificate whose issuer_key_hash is
// not its issuer's. A function of its own so that the hashes escape to the
// heap only when it is called.
func keyHashMismatch(ikh, issuer [32]byte) error {
	return fmt.Errorf("issuer_key_hash %x does not match the issuer's key %x", ikh[:8], issuer[:8])
}

func (k *issuerKeys) get(der []byte) issuerInfo {
	k.mu.Lock()
	in, ok := k.info[string(der)]
	k.mu.Unlock()
	if ok {
		return in
	}
	// ct-go's parser is lenient: it returns the certificate with its
	// non-fatal errors, and only the key and usages are needed here.
	cert, err := ctx509.ParseCertificate(der)
	switch {
	case cert != nil:
		in.keyHash = sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		for _, u := range cert.ExtKeyUsage {
			if u == ctx509.ExtKeyUsageCertificateTransparency {
				in.precertSigner = true
			}
		}
		if in.precertSigner {
			in.rawIssuer = bytes.Clone(cert.RawIssuer)
			for _, e := range cert.Extensions {
				if e.Id.Equal(ctx509.OIDExtensionAuthorityKeyId) {
					in.authKeyID = bytes.Clone(e.Value)
				}
			}
		}
	default:
		in.err = fmt.Errorf("unparseable issuer: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.info) >= maxIssuerKeys || k.bytes+len(der) > maxIssuerKeysBytes {
		clear(k.info)
		k.bytes = 0
	}
	k.info[string(der)] = in
	k.bytes += len(der)
	return in
}
