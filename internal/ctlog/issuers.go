package ctlog

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// issuerCache keeps the DER of recently used static-ct-api issuers, by
// fingerprint, evicting the least recently used beyond max. Concurrent
// lookups of the same fingerprint share one fetch, so each issuer is
// fetched once however many workers need it. Transient failures are not
// cached; an issuer the log does not have (errIssuerUnavailable) is, since
// a static-ct-api log stores issuers before it sequences the entries
// that need them.
type issuerCache struct {
	max int

	mu    sync.Mutex
	items map[[32]byte]*list.Element // value: *issuerItem; guarded by mu
	lru   *list.List                 // front: most recently used; guarded by mu
}

type issuerItem struct {
	fp   [32]byte
	done chan struct{} // closed when der and err are set
	der  []byte
	err  error
}

func newIssuerCache(max int) *issuerCache {
	return &issuerCache{max: max, items: map[[32]byte]*list.Element{}, lru: list.New()}
}

// get returns the issuer with fingerprint fp, calling fetch if it is
// neither cached nor being fetched.
func (c *issuerCache) get(ctx context.Context, fp [32]byte, fetch func(context.Context, [32]byte) ([]byte, error)) ([]byte, error) {
	for {
		c.mu.Lock()
		if el, ok := c.items[fp]; ok {
			c.lru.MoveToFront(el)
			it := el.Value.(*issuerItem)
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
		for c.lru.Len() > c.max {
			old := c.lru.Remove(c.lru.Back()).(*issuerItem)
			delete(c.items, old.fp)
		}
		c.mu.Unlock()

		it.der, it.err = fetch(ctx, fp)
		if it.err != nil && !errors.Is(it.err, errIssuerUnavailable) {
			c.mu.Lock()
			if el, ok := c.items[fp]; ok && el.Value == it {
				c.lru.Remove(el)
				delete(c.items, fp)
			}
			c.mu.Unlock()
		}
		close(it.done)
		return it.der, it.err
	}
}

// len returns the number of cached or in-flight issuers.
func (c *issuerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
