package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
)

// TLSConfig returns the TLS settings for dialing the Temporal frontend, or
// nil, nil when TLS is off. An API key turns TLS on, as Temporal Cloud
// requires. It reads the certificate files, so a missing file is reported at
// start rather than at the first connection.
func (t Temporal) TLSConfig() (*tls.Config, error) {
	if !t.TLS.Active() && t.APIKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.TLS.ServerName,
		InsecureSkipVerify: t.TLS.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests
	}
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(t.Address); err == nil {
			cfg.ServerName = host
		}
	}
	if t.TLS.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.TLS.CertFile, t.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls: load client certificate %s and key %s: %w", t.TLS.CertFile, t.TLS.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if t.TLS.CAFile != "" {
		pem, err := os.ReadFile(t.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal.tls.ca_file %s: no PEM certificate in it", t.TLS.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
