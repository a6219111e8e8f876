package ctlogtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/trillian/util"
	"github.com/google/trillian"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/ctonly"
	"golang.org/x/sync/errgroup"
)

// bulkChunk is how many entries AddBulk generates and appends at a time.
const bulkChunk = 4096

// AddBulk issues n certificates with gen and appends them in-process,
// without HTTP, through the same log implementation add-chain feeds:
// Tessera's CT appender (the one TesseraCT wraps) for a static log, Trillian's
// QueueLeaf with CTFE's leaf encoding for an RFC 6962 log. Chains are not
// re-validated (the generator's are valid). It returns once the published
// tree contains every entry. fn, if not nil, sees every entry with its
// index, in index order within each chunk of 4096; AddBulk does not keep
// them, so fn decides what a million entries cost in memory.
func (l *Log) AddBulk(ctx context.Context, n int, gen *Generator, fn func(Cert)) error {
	chunks := make(chan []*Issued, 1)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(chunks)
		for done := 0; done < n; {
			k := min(bulkChunk, n-done)
			issued, err := issueParallel(ctx, gen, k)
			if err != nil {
				return err
			}
			select {
			case chunks <- issued:
			case <-ctx.Done():
				return ctx.Err()
			}
			done += k
		}
		return nil
	})
	g.Go(func() error {
		var want uint64
		for issued := range chunks {
			idx, err := l.bulk(ctx, issued)
			if err != nil {
				return err
			}
			certs := make([]Cert, len(issued))
			for i, is := range issued {
				certs[i] = is.Cert
				certs[i].Index = idx[i]
				want = max(want, idx[i]+1)
			}
			if fn != nil {
				sortByIndex(certs)
				for _, c := range certs {
					fn(c)
				}
			}
		}
		if want == 0 {
			return nil
		}
		return l.waitTreeSize(ctx, want)
	})
	return g.Wait()
}

// issueParallel issues the next k certificates of gen's sequence on all CPUs.
func issueParallel(ctx context.Context, gen *Generator, k int) ([]*Issued, error) {
	first := gen.reserve(uint64(k))
	out := make([]*Issued, k)
	g, ctx := errgroup.WithContext(ctx)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		g.Go(func() error {
			for i := w; i < k; i += workers {
				if err := ctx.Err(); err != nil {
					return err
				}
				is, err := gen.Issue(gen.Spec(first + uint64(i)))
				if err != nil {
					return err
				}
				out[i] = is
			}
			return nil
		})
	}
	return out, g.Wait()
}

// bulk appends issued to the static log through Tessera's CT appender and
// returns their indices once they are sequenced.
func (sl *staticLog) bulk(ctx context.Context, l *Log, issued []*Issued) ([]uint64, error) {
	if sl.appender == nil {
		return nil, errors.New("static log has no appender")
	}
	sl.addOnce.Do(func() {
		sl.add = tessera.NewCertificateTransparencyAppender(sl.appender)
	})
	// Issuers first, as TesseraCT's add-chain does: a reader must find the
	// issuer of every entry it can see.
	l.issuersMu.Lock()
	if l.issuersSeen == nil {
		l.issuersSeen = map[string]bool{}
	}
	for _, is := range issued {
		key := chainKey(is.Chain)
		if l.issuersSeen[key] {
			continue
		}
		if err := sl.cts.AddIssuerChain(ctx, is.chainCerts); err != nil {
			l.issuersMu.Unlock()
			return nil, fmt.Errorf("store issuers in %s: %w", l.Name, err)
		}
		l.issuersSeen[key] = true
	}
	l.issuersMu.Unlock()
	ts := uint64(time.Now().UnixMilli())
	entries := make([]*ctonly.Entry, len(issued))
	futures := make([]tessera.IndexFuture, len(issued))
	for i, is := range issued {
		e, err := ctEntry(is, ts)
		if err != nil {
			return nil, err
		}
		entries[i] = e
		futures[i] = sl.add(ctx, e)
	}
	idx := make([]uint64, len(issued))
	for i := range futures {
		for {
			got, err := futures[i]()
			if errors.Is(err, tessera.ErrPushback) {
				// Integration is behind; wait and add the entry again.
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				futures[i] = sl.add(ctx, entries[i])
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("append to %s: %w", l.Name, err)
			}
			idx[i] = got.Index
			break
		}
	}
	return idx, nil
}

// ctEntry builds the static-ct entry of an issued (pre)certificate the way
// TesseraCT builds it from a submitted chain.
func ctEntry(is *Issued, ts uint64) (*ctonly.Entry, error) {
	e := &ctonly.Entry{Timestamp: ts, IsPrecert: is.Cert.Precert}
	for _, c := range is.Chain {
		e.FingerprintsChain = append(e.FingerprintsChain, sha256.Sum256(c))
	}
	if !is.Cert.Precert {
		e.Certificate = is.DER
		return e, nil
	}
	tbs, h, err := precertParts(is)
	if err != nil {
		return nil, err
	}
	e.Certificate = tbs
	e.Precertificate = is.DER
	e.IssuerKeyHash = h[:]
	return e, nil
}

// precertParts returns what RFC 6962 logs of a precertificate: the TBS
// without the poison (with the final issuer when a Precertificate Signing
// Certificate signed it) and the SHA-256 of the final issuer's public key.
func precertParts(is *Issued) ([]byte, [32]byte, error) {
	if is.loggedTBS == nil {
		return nil, [32]byte{}, fmt.Errorf("precert %s: not issued by a Generator", is.Cert.DNSNames[0])
	}
	return is.loggedTBS, is.issuerKeyHash, nil
}

func chainKey(chain [][]byte) string {
	h := sha256.New()
	for _, c := range chain {
		s := sha256.Sum256(c)
		h.Write(s[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// bulk queues issued in Trillian as CTFE would (same leaf and extra data)
// and returns their indices once the sequencer has integrated them.
func (rl *rfcLog) bulk(ctx context.Context, l *Log, issued []*Issued) ([]uint64, error) {
	start, err := rl.root(ctx)
	if err != nil {
		return nil, err
	}
	ts := uint64(time.Now().UnixMilli())
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *Issued)
	for range 16 {
		g.Go(func() error {
			for is := range work {
				leaf, err := rl.logLeaf(is, ts)
				if err != nil {
					return err
				}
				if _, err := rl.client.QueueLeaf(gctx, &trillian.QueueLeafRequest{LogId: rl.treeID, Leaf: leaf}); err != nil {
					return fmt.Errorf("queue leaf in %s: %w", l.Name, err)
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		for _, is := range issued {
			select {
			case work <- is:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	subs := make([]submission, len(issued))
	for i, is := range issued {
		subs[i].issued = is
	}
	if err := rl.waitIndexed(ctx, l, start, subs); err != nil {
		return nil, err
	}
	idx := make([]uint64, len(subs))
	for i, s := range subs {
		idx[i] = s.index
	}
	return idx, nil
}

// logLeaf encodes an issued (pre)certificate as CTFE's add-chain does.
func (rl *rfcLog) logLeaf(is *Issued, ts uint64) (*trillian.LogLeaf, error) {
	raw := make([]ct.ASN1Cert, 0, 1+len(is.Chain))
	raw = append(raw, ct.ASN1Cert{Data: is.DER})
	for _, c := range is.Chain {
		raw = append(raw, ct.ASN1Cert{Data: c})
	}
	// The MerkleTreeLeaf CTFE builds (ct.MerkleTreeLeafFromChain), put
	// together from parts the generator already has: ct-go's version
	// re-parses the whole chain, which made it the bulk path's bottleneck.
	entry := &ct.TimestampedEntry{Timestamp: ts, EntryType: ct.X509LogEntryType, X509Entry: &raw[0]}
	if is.Cert.Precert {
		tbs, h, err := precertParts(is)
		if err != nil {
			return nil, err
		}
		entry.EntryType = ct.PrecertLogEntryType
		entry.X509Entry = nil
		entry.PrecertEntry = &ct.PreCert{IssuerKeyHash: h, TBSCertificate: tbs}
	}
	mtl := ct.MerkleTreeLeaf{Version: ct.V1, LeafType: ct.TimestampedEntryLeafType, TimestampedEntry: entry}
	return util.BuildLogLeaf(rl.prefix, mtl, 0, raw[0], raw[1:], is.Cert.Precert)
}

// bulkState is the static log's lazily built bulk-path state.
type bulkState struct {
	addOnce sync.Once
	add     func(context.Context, *ctonly.Entry) tessera.IndexFuture
}
