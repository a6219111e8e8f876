package ctlogtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"filippo.io/sunlight"
	"filippo.io/torchwood"
	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/tls"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// SignTreeHead returns a tree head of the given size and root signed with
// the log's own key, in the form the log serves it: a checkpoint
// (static-ct-api) or a get-sth answer (RFC 6962). The log itself never
// publishes it; a test serves it to play a log that signs what it should
// not: an inflated tree, or two roots for one size.
func (l *Log) SignTreeHead(size uint64, root [32]byte) ([]byte, error) {
	if l.signer == nil {
		return nil, errors.New("ctlogtest: the log has no signing key")
	}
	sth := ct.SignedTreeHead{
		Version:        ct.V1,
		TreeSize:       size,
		Timestamp:      uint64(time.Now().UnixMilli()),
		SHA256RootHash: ct.SHA256Hash(root),
	}
	input, err := ct.SerializeSTHSignatureInput(sth)
	if err != nil {
		return nil, fmt.Errorf("tree head signature input: %w", err)
	}
	ds, err := tls.CreateSignature(*l.signer, tls.SHA256, input)
	if err != nil {
		return nil, fmt.Errorf("sign tree head: %w", err)
	}
	sig, err := tls.Marshal(ds)
	if err != nil {
		return nil, fmt.Errorf("encode tree head signature: %w", err)
	}
	if !l.Static {
		return json.Marshal(ct.GetSTHResponse{
			TreeSize:          size,
			Timestamp:         sth.Timestamp,
			SHA256RootHash:    root[:],
			TreeHeadSignature: sig,
		})
	}
	// A static-ct-api checkpoint carries the same signature in an
	// RFC6962NoteSignature (c2sp.org/static-ct-api).
	signer, err := sunlight.NewRFC6962InjectedSigner(l.Origin, l.PublicKey, sig, int64(sth.Timestamp))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	text := torchwood.Checkpoint{Origin: l.Origin, Tree: tlog.Tree{N: int64(size), Hash: root}}.String()
	return note.Sign(&note.Note{Text: text}, signer)
}
