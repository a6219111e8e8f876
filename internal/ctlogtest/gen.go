package ctlogtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"
)

// OIDCTPoison marks a precertificate (RFC 6962 section 3.1); it is critical and
// its value is ASN.1 NULL, so no client can mistake a precertificate for a
// certificate.
var OIDCTPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

// OIDPrecertSigning is the extended key usage of a Precertificate Signing
// Certificate (RFC 6962 section 3.1).
var OIDPrecertSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 4}

// DefaultSeed is the seed of a zero GeneratorOptions; logs started without
// Options.Roots trust the root of this seed.
const DefaultSeed = "certlake"

// GeneratorOptions configures a Generator. The zero value is usable.
type GeneratorOptions struct {
	// Seed makes keys, serials, names and dates reproducible. Default DefaultSeed.
	Seed string
	// Domain is the parent of every generated DNS name. Default "certlake.test".
	Domain string
	// PrecertEvery makes every PrecertEvery-th certificate of Next a
	// precertificate (numbers n with n%PrecertEvery == PrecertEvery-1).
	// 0 means 3; a negative value means never.
	PrecertEvery int
	// NotBefore is the notBefore of certificate number 0; certificate n starts
	// n minutes later. Default 2025-01-01T00:00:00Z.
	NotBefore time.Time
	// Validity is notAfter-notBefore of generated leaves. Default 90 days.
	Validity time.Duration
}

// LeafSpec describes one leaf for Generator.Issue.
type LeafSpec struct {
	// DNSNames go into the subjectAltName extension. Required.
	DNSNames []string
	// CommonName is the subject CN; empty means DNSNames[0].
	CommonName string
	// Organization and Country are optional subject fields.
	Organization string
	Country      string
	// Serial is the serial number; nil means a value derived from the seed
	// and the DNS names.
	Serial *big.Int
	// NotBefore and NotAfter bound the validity; zero values mean the
	// generator's base date and base date + Validity.
	NotBefore, NotAfter time.Time
	// Precert adds the CT poison extension.
	Precert bool
	// ViaPrecertSigner signs a precertificate with the Precertificate Signing
	// Certificate instead of the intermediate (ignored for certificates).
	ViaPrecertSigner bool
}

// Issued is one generated leaf with the chain a log accepts it with.
type Issued struct {
	// Cert describes the leaf; Index is zero until a log assigns one.
	Cert Cert
	// DER is the certificate or precertificate.
	DER []byte
	// Chain holds the issuers after DER, up to and including the root, in
	// the order add-chain expects them.
	Chain [][]byte

	// For the in-process bulk path, which builds log entries itself.
	loggedTBS     []byte              // precertificates: the TBS RFC 6962 logs record
	issuerKeyHash [32]byte            // precertificates: SHA-256 of the final issuer's key
	chainCerts    []*x509.Certificate // Chain, parsed
}

// Generator issues certificates and precertificates under its own root and
// intermediate (ECDSA P-256). Keys, serials, names and dates follow from the
// seed; signatures do not (the Go runtime randomizes ECDSA), so the DER and
// its SHA-256 differ from run to run. It is safe for concurrent use.
type Generator struct {
	opts GeneratorOptions

	root, inter, preSigner          *x509.Certificate
	rootKey, interKey, preSignerKey *ecdsa.PrivateKey
	// leafKey is shared by every leaf: keys cost as much as a signature
	// and nothing downstream cares whose key a certificate carries.
	leafKey  *ecdsa.PrivateKey
	leafSPKI []byte // leafKey's SubjectPublicKeyInfo

	mu   sync.Mutex
	next uint64 // number of the certificate Next issues next
}

// NewGenerator creates the CA hierarchy of opts.Seed: a root, an
// intermediate it signs, and a Precertificate Signing Certificate the
// intermediate signs.
func NewGenerator(opts GeneratorOptions) (*Generator, error) {
	if opts.Seed == "" {
		opts.Seed = DefaultSeed
	}
	if opts.Domain == "" {
		opts.Domain = "certlake.test"
	}
	if opts.PrecertEvery == 0 {
		opts.PrecertEvery = 3
	}
	if opts.NotBefore.IsZero() {
		opts.NotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if opts.Validity == 0 {
		opts.Validity = 90 * 24 * time.Hour
	}
	g := &Generator{opts: opts}
	var err error
	for _, k := range []struct {
		label string
		key   **ecdsa.PrivateKey
	}{{"root", &g.rootKey}, {"intermediate", &g.interKey}, {"precert-signer", &g.preSignerKey}, {"leaf", &g.leafKey}} {
		if *k.key, err = seededKey(opts.Seed, k.label); err != nil {
			return nil, fmt.Errorf("derive %s key: %w", k.label, err)
		}
	}

	if g.leafSPKI, err = x509.MarshalPKIXPublicKey(&g.leafKey.PublicKey); err != nil {
		return nil, fmt.Errorf("marshal leaf key: %w", err)
	}

	caStart := opts.NotBefore.AddDate(-1, 0, 0)
	caEnd := opts.NotBefore.AddDate(20, 0, 0)
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"certlake test CA"}, Country: []string{"ZZ"}}
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          g.serialFor("root"),
		Subject:               name("certlake " + opts.Seed + " Root"),
		NotBefore:             caStart,
		NotAfter:              caEnd,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          keyID(&g.rootKey.PublicKey),
	}
	if g.root, err = sign(rootTmpl, rootTmpl, &g.rootKey.PublicKey, g.rootKey); err != nil {
		return nil, fmt.Errorf("issue root: %w", err)
	}
	interTmpl := &x509.Certificate{
		SerialNumber:          g.serialFor("intermediate"),
		Subject:               name("certlake " + opts.Seed + " Intermediate"),
		NotBefore:             caStart,
		NotAfter:              caEnd,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		SubjectKeyId:          keyID(&g.interKey.PublicKey),
	}
	if g.inter, err = sign(interTmpl, g.root, &g.interKey.PublicKey, g.rootKey); err != nil {
		return nil, fmt.Errorf("issue intermediate: %w", err)
	}
	// RFC 6962 3.1: CA:true and only the Certificate Transparency EKU.
	preTmpl := &x509.Certificate{
		SerialNumber:          g.serialFor("precert-signer"),
		Subject:               name("certlake " + opts.Seed + " Precertificate Signing"),
		NotBefore:             caStart,
		NotAfter:              caEnd,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		UnknownExtKeyUsage:    []asn1.ObjectIdentifier{OIDPrecertSigning},
		SubjectKeyId:          keyID(&g.preSignerKey.PublicKey),
	}
	if g.preSigner, err = sign(preTmpl, g.inter, &g.preSignerKey.PublicKey, g.interKey); err != nil {
		return nil, fmt.Errorf("issue precert signer: %w", err)
	}
	return g, nil
}

// Root returns the root certificate that logs must trust.
func (g *Generator) Root() *x509.Certificate { return g.root }

// Intermediate returns the CA certificate that signs leaves.
func (g *Generator) Intermediate() *x509.Certificate { return g.inter }

// PrecertSigner returns the Precertificate Signing Certificate.
func (g *Generator) PrecertSigner() *x509.Certificate { return g.preSigner }

// RootPEM returns Root PEM-encoded.
func (g *Generator) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.root.Raw})
}

// Spec returns the LeafSpec of certificate number n of this generator's
// sequence: DNS names "n<n>.<seed>.<domain>" and "www.n<n>.<seed>.<domain>",
// a serial derived from seed and n, notBefore = base + n minutes, and every
// PrecertEvery-th a precertificate (alternately signed by the intermediate
// and by the Precertificate Signing Certificate).
func (g *Generator) Spec(n uint64) LeafSpec {
	host := fmt.Sprintf("n%d.%s.%s", n, label(g.opts.Seed), g.opts.Domain)
	nb := g.opts.NotBefore.Add(time.Duration(n) * time.Minute)
	s := LeafSpec{
		DNSNames:     []string{host, "www." + host},
		Organization: "certlake test subscriber",
		Country:      "ZZ",
		Serial:       g.serialFor(fmt.Sprintf("leaf-%d", n)),
		NotBefore:    nb,
		NotAfter:     nb.Add(g.opts.Validity),
	}
	if e := uint64(g.opts.PrecertEvery); g.opts.PrecertEvery > 0 && n%e == e-1 {
		s.Precert = true
		s.ViaPrecertSigner = (n/e)%2 == 1
	}
	return s
}

// Next issues the next certificate of the sequence (see Spec).
func (g *Generator) Next() (*Issued, error) {
	return g.Issue(g.Spec(g.reserve(1)))
}

// reserve takes k numbers of the sequence and returns the first.
func (g *Generator) reserve(k uint64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := g.next
	g.next += k
	return n
}

// Issue issues a leaf as spec says.
func (g *Generator) Issue(spec LeafSpec) (*Issued, error) {
	if len(spec.DNSNames) == 0 {
		return nil, errors.New("issue leaf: no DNS names")
	}
	cn := spec.CommonName
	if cn == "" {
		cn = spec.DNSNames[0]
	}
	serial := spec.Serial
	if serial == nil {
		serial = g.serialFor("leaf-" + strings.Join(spec.DNSNames, ","))
	}
	nb, na := spec.NotBefore, spec.NotAfter
	if nb.IsZero() {
		nb = g.opts.NotBefore
	}
	if na.IsZero() {
		na = nb.Add(g.opts.Validity)
	}
	parent, parentKey := g.inter, g.interKey
	chain := []*x509.Certificate{g.inter, g.root}
	var finalIssuer *x509.Certificate // the issuer the final certificate will name
	if spec.Precert && spec.ViaPrecertSigner {
		parent, parentKey = g.preSigner, g.preSignerKey
		chain = []*x509.Certificate{g.preSigner, g.inter, g.root}
		finalIssuer = g.inter
	}
	chainDER := make([][]byte, len(chain))
	for i, c := range chain {
		chainDER[i] = c.Raw
	}
	// Validity has second precision in DER.
	nb, na = nb.UTC().Truncate(time.Second), na.UTC().Truncate(time.Second)
	der, _, loggedTBS, err := encodeLeaf(leafFields{
		serial:     serial,
		commonName: cn,
		org:        spec.Organization,
		c:          spec.Country,
		notBefore:  nb,
		notAfter:   na,
		dnsNames:   spec.DNSNames,
		precert:    spec.Precert,
	}, g.leafSPKI, parent, finalIssuer, parentKey)
	if err != nil {
		return nil, fmt.Errorf("issue leaf %s: %w", spec.DNSNames[0], err)
	}
	return &Issued{
		Cert: Cert{
			Precert:    spec.Precert,
			DNSNames:   append([]string(nil), spec.DNSNames...),
			CommonName: cn,
			Serial:     new(big.Int).Set(serial),
			NotBefore:  nb,
			NotAfter:   na,
			IssuerCN:   parent.Subject.CommonName,
			SHA256:     sha256.Sum256(der),
			DER:        der,
		},
		DER:           der,
		Chain:         chainDER,
		loggedTBS:     loggedTBS,
		issuerKeyHash: sha256.Sum256(g.inter.RawSubjectPublicKeyInfo),
		chainCerts:    chain,
	}, nil
}

// serialFor derives a positive 128-bit serial from the seed and a label.
func (g *Generator) serialFor(what string) *big.Int {
	h := sha256.Sum256([]byte("certlake serial\x00" + g.opts.Seed + "\x00" + what))
	h[0] &= 0x7f // positive, as RFC 5280 requires
	if h[0] == 0 {
		h[0] = 1 // keep it 16 bytes long, so lengths are stable too
	}
	return new(big.Int).SetBytes(h[:16])
}

// seededKey derives a P-256 key from seed and label; counter retries cover
// the negligible chance that a digest is not a valid scalar.
func seededKey(seed, label string) (*ecdsa.PrivateKey, error) {
	var ctr [8]byte
	for i := uint64(0); i < 16; i++ {
		binary.BigEndian.PutUint64(ctr[:], i)
		h := sha256.Sum256([]byte("certlake key\x00" + seed + "\x00" + label + "\x00" + string(ctr[:])))
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), h[:]); err == nil {
			return k, nil
		}
	}
	return nil, errors.New("no valid scalar")
}

func keyID(pub *ecdsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	h := sha256.Sum256(der)
	return h[:20]
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(nil, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// label turns a seed into a DNS label.
func label(seed string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(seed) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		return "seed"
	}
	return s
}
