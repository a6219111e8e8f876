package storagetest

import (
	"github.com/certlake/certlake/internal/storage"

	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Fault decides the answer to one request: ok false passes it to the
// server, else the proxy answers status with an S3 error document of code.
type Fault func(r *http.Request) (status int, code string, ok bool)

// Proxy is an HTTP proxy in front of a Server that speaks the S3 protocol
// to the client and can answer some requests with errors instead of the
// server: the faults real stores produce under load (503 SlowDown) or on
// a bad link, which a healthy local server never does. Requests pass
// through unchanged (the Host header too, so SigV4 signatures still
// verify).
type Proxy struct {
	URL string

	mu       sync.Mutex
	fault    Fault
	modify   func(*http.Response)
	Requests atomic.Int64 // requests seen
	Injected atomic.Int64 // requests answered with a fault
}

// NewProxy starts a proxy to s, stopped when the test ends.
func NewProxy(t testing.TB, s *Server) *Proxy {
	t.Helper()
	target, _ := url.Parse(s.Endpoint())
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &Proxy{}
	rp.ModifyResponse = func(r *http.Response) error {
		p.mu.Lock()
		m := p.modify
		p.mu.Unlock()
		if m != nil {
			m(r)
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Requests.Add(1)
		p.mu.Lock()
		f := p.fault
		p.mu.Unlock()
		if f != nil {
			if status, code, ok := f(r); ok {
				p.Injected.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test proxy</Message><Resource>%s</Resource><RequestId>certlake-test</RequestId></Error>`, code, r.URL.Path)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// SetFault replaces the fault (nil passes everything).
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// SetModify rewrites the server's responses (nil leaves them alone): a
// store that misbehaves in its answers.
func (p *Proxy) SetModify(m func(*http.Response)) {
	p.mu.Lock()
	p.modify = m
	p.mu.Unlock()
}

// Config is s's configuration with the proxy as endpoint.
func (p *Proxy) Config(s *Server) (c storage.S3Config) {
	c = s.Config()
	c.Endpoint = p.URL
	return c
}

// SlowDownEvery answers every nth request (n >= 2) with 503 SlowDown, as S3
// does when a prefix is written faster than it scales.
func SlowDownEvery(n int64) Fault {
	var i atomic.Int64
	return func(*http.Request) (int, string, bool) {
		if i.Add(1)%n != 0 {
			return 0, "", false
		}
		return http.StatusServiceUnavailable, "SlowDown", true
	}
}

// SlowDownBurst answers bad of every period requests with 503 SlowDown, in
// a row: a storm a client must back off through, not merely retry once.
func SlowDownBurst(bad, period int64) Fault {
	var i atomic.Int64
	return func(*http.Request) (int, string, bool) {
		if (i.Add(1)-1)%period >= bad {
			return 0, "", false
		}
		return http.StatusServiceUnavailable, "SlowDown", true
	}
}
