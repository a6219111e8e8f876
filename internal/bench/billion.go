package main

import (
	"context"
	"slices"
)

// billionItem is item 6: main's exact key index (package keyindex) at 1x,
// 2x, 4x and 20x main (a billion keys at -size full), narrow rows.
func (b *bench) billionItem(ctx context.Context) error {
	top := slices.Max(b.size.narrowX)
	s := b.spec(top)
	pool, err := b.narrowPool(ctx, s)
	if err != nil {
		return err
	}
	for _, x := range b.size.narrowX {
		if _, err := b.linkNarrowMain(ctx, s, pool, len(pool)*x/top); err != nil {
			return err
		}
	}
	return nil
}
