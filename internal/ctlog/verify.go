package ctlog

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"filippo.io/sunlight"
	"filippo.io/torchwood"
	ct "github.com/google/certificate-transparency-go"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrVerification marks what a log served that could not be proven against
// its signed tree: a bad signature, a leaf that does not hash into the tree,
// a proof that does not hold, or the log contradicting itself. A
// [*VerificationError] matches it with errors.Is. Retrying the same request
// will not help; the range is a failed range.
var ErrVerification = errors.New("verification")

// ErrNoKey reports a log that is to be verified but has no public key:
// give it a key (log list, or key in ct.custom_logs / ct.static_logs) or
// turn verification off for it (ct.logs.<url>.verify: false).
var ErrNoKey = errors.New("log has no public key")

// VerificationError says why something a log served was not accepted.
// Misbehaviour is set when the log contradicted itself or its
// configuration (a tree going backwards, two roots for one size, another
// origin), rather than serving data that does not match its tree.
type VerificationError struct {
	Log          string
	Reason       string
	Misbehaviour bool
}

func (e *VerificationError) Error() string {
	return "verification: " + e.Reason
}

// Is makes a VerificationError match [ErrVerification].
func (e *VerificationError) Is(target error) bool { return target == ErrVerification }

func verificationErr(log, format string, args ...any) *VerificationError {
	return &VerificationError{Log: log, Reason: fmt.Sprintf(format, args...)}
}

func misbehaviour(log, format string, args ...any) *VerificationError {
	return &VerificationError{Log: log, Reason: fmt.Sprintf(format, args...), Misbehaviour: true}
}

// treeHead is a verified tree head: size, root hash.
type treeHead struct {
	size uint64
	root tlog.Hash
}

// heads keeps the tree heads of one log that passed their signature check,
// and notices the log contradicting itself. It is safe for concurrent use.
type heads struct {
	log string

	mu     sync.Mutex
	latest *treeHead            // largest verified head; guarded by mu
	roots  map[uint64]tlog.Hash // recent verified roots by size; guarded by mu
}

// maxKnownRoots bounds heads.roots.
const maxKnownRoots = 256

// current returns the latest verified head, if any.
func (h *heads) current() (treeHead, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.latest == nil {
		return treeHead{}, false
	}
	return *h.latest, true
}

// accept records a freshly verified head. It fails with a misbehaviour
// report when the head goes back from the latest one or gives another root
// for a size already seen; the latest head is then kept.
func (h *heads) accept(n treeHead) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.roots[n.size]; ok && r != n.root {
		return misbehaviour(h.log, "two tree heads of size %d with different roots (%x, %x)", n.size, r[:8], n.root[:8])
	}
	if h.latest != nil && n.size < h.latest.size {
		return misbehaviour(h.log, "tree size went backwards from %d to %d", h.latest.size, n.size)
	}
	if h.roots == nil || len(h.roots) >= maxKnownRoots {
		h.roots = map[uint64]tlog.Hash{}
	}
	h.roots[n.size] = n.root
	h.latest = &n
	return nil
}

// sthVerifier checks RFC 6962 signed tree heads (section 4.3).
type sthVerifier struct{ v *ct.SignatureVerifier }

func newSTHVerifier(key crypto.PublicKey) (sthVerifier, error) {
	v, err := ct.NewSignatureVerifier(key)
	if err != nil {
		return sthVerifier{}, err
	}
	return sthVerifier{v}, nil
}

// parse decodes a get-sth body and checks its signature.
func (s sthVerifier) parse(log string, body []byte) (treeHead, error) {
	var resp ct.GetSTHResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return treeHead{}, retryableError{fmt.Errorf("parse get-sth: %w", err)}
	}
	sth, err := resp.ToSignedTreeHead()
	if err != nil {
		return treeHead{}, verificationErr(log, "get-sth: %v", err)
	}
	if err := s.v.VerifySTHSignature(*sth); err != nil {
		return treeHead{}, verificationErr(log, "get-sth of size %d: bad signature: %v", sth.TreeSize, err)
	}
	return treeHead{size: sth.TreeSize, root: tlog.Hash(sth.SHA256RootHash)}, nil
}

// checkpointVerifier checks static-ct-api checkpoints: signed notes
// (c2sp.org/signed-note) with an RFC6962NoteSignature by the log's key,
// whose origin line is the log's origin (c2sp.org/static-ct-api).
type checkpointVerifier struct {
	origin string
	v      note.Verifiers
}

func newCheckpointVerifier(origin string, key crypto.PublicKey) (checkpointVerifier, error) {
	v, err := sunlight.NewRFC6962Verifier(origin, key)
	if err != nil {
		return checkpointVerifier{}, fmt.Errorf("origin %q: %w", origin, err)
	}
	return checkpointVerifier{origin: origin, v: note.VerifierList(v)}, nil
}

// parse checks a checkpoint's origin and signature and returns its head.
func (c checkpointVerifier) parse(log string, body []byte) (treeHead, error) {
	first, _, _ := bytes.Cut(body, []byte("\n"))
	if string(first) != c.origin {
		return treeHead{}, misbehaviour(log, "checkpoint origin %q, want %q", truncate(string(first), 100), c.origin)
	}
	n, err := note.Open(body, c.v)
	if err != nil {
		return treeHead{}, verificationErr(log, "checkpoint: bad signature: %v", err)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return treeHead{}, verificationErr(log, "checkpoint: %v", err)
	}
	return treeHead{size: uint64(cp.N), root: cp.Hash}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// verifiers builds the tree head verifiers of l, or says why it cannot be
// verified.
func publicKey(l Log) (crypto.PublicKey, error) {
	if len(l.Key) == 0 {
		return nil, fmt.Errorf("%s: %w: set its key (log list, or key in ct.custom_logs/ct.static_logs) or turn verification off for it (ct.logs.<url>.verify: false)", l.URL, ErrNoKey)
	}
	k, err := x509.ParsePKIXPublicKey(l.Key)
	if err != nil {
		return nil, fmt.Errorf("%s: key: %w", l.URL, err)
	}
	return k, nil
}

// DefaultOrigin is the checkpoint origin of a static-ct-api log whose
// submission prefix is u: the URL without scheme and trailing slashes.
func DefaultOrigin(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	return strings.TrimRight(u, "/")
}

// noteVerification reports err to the metrics and the log if it is a
// verification failure.
func noteVerification(cfg Config, log string, err error) {
	var ve *VerificationError
	if !errors.As(err, &ve) {
		return
	}
	if cfg.Metrics != nil {
		cfg.Metrics.VerificationFailed(log)
	}
	kind := "log served data that failed verification"
	if ve.Misbehaviour {
		kind = "log misbehaviour"
	}
	cfg.Logger.Warn(kind, "log", log, "err", err)
}
