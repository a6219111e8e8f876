package main

import (
	"context"
	"fmt"
)

// scalingItem is item 5: gap detection and merge with the same staging
// against main at 2x and 4x.
func (b *bench) scalingItem(ctx context.Context) error {
	if b.gaps1x == nil || b.merge1x == nil {
		// The 1x figures are the baseline; measure them if not done.
		d, err := b.ensure(ctx, 1)
		if err != nil {
			return err
		}
		if b.gaps1x == nil {
			g, err := b.measureGaps(ctx, d, true)
			if err != nil {
				return err
			}
			b.gaps1x = &g
		}
		if b.index1x == nil {
			ix, err := b.runMergeChild(ctx, d, modeIndex)
			if err != nil {
				return err
			}
			b.index1x = &ix
		}
		if b.merge1x == nil {
			m, err := b.runMergeChild(ctx, d, modeWarm)
			if err != nil {
				return err
			}
			b.merge1x = &m
		}
	}
	for _, x := range b.size.scaling {
		d, err := b.ensure(ctx, x)
		if err != nil {
			return err
		}
		g, err := b.measureGaps(ctx, d, true)
		if err != nil {
			return err
		}
		b.table.add(row{
			what:      fmt.Sprintf("scaling: gap detection, main %dx (%s) + same staging", x, count(d.mainRows)),
			certlake:  fmt.Sprintf("%s (%.1fx of 1x)", secs(g.detect), g.detect.Seconds()/b.gaps1x.detect.Seconds()),
			reference: fmt.Sprintf("%s (%.1fx of 1x)", secs(g.reference), g.reference.Seconds()/b.gaps1x.reference.Seconds()),
			ratio:     times(g.reference.Seconds() / g.detect.Seconds()),
		})
		ix, err := b.runMergeChild(ctx, d, modeIndex)
		if err != nil {
			return err
		}
		m, err := b.runMergeChild(ctx, d, modeWarm)
		if err != nil {
			return err
		}
		r := row{
			what: fmt.Sprintf("scaling: merge, main %dx (%s) + same staging, key index current", x, count(d.mainRows)),
			certlake: fmt.Sprintf("%s (%.1fx of 1x; CPU %.1fx), %s", secs(m.wall()), m.Seconds/b.merge1x.Seconds,
				m.CPU/b.merge1x.CPU, mib(m.MaxRSS)),
		}
		if b.size.refScaling {
			ref, err := b.runMergeChild(ctx, d, modeReference)
			if err != nil {
				return err
			}
			if ref.Main != m.Main || ref.Totals != m.Totals {
				return fmt.Errorf("%w: main %dx: certlake main %+v, reference main %+v", errAssertion, x, m.Main, ref.Main)
			}
			r.reference = fmt.Sprintf("%s, %s", secs(ref.wall()), mib(ref.MaxRSS))
			r.ratio = times(ref.Seconds / m.Seconds)
		} else {
			r.reference = "not run at this size"
		}
		b.table.add(r)
		b.table.add(row{
			what:     fmt.Sprintf("scaling: key index build, main %dx (%d files; once per file)", x, ix.Index.Indexed),
			certlake: fmt.Sprintf("%s (%.1fx of 1x), %s", secs(ix.wall()), ix.Seconds/b.index1x.Seconds, mib(ix.MaxRSS)),
		})
	}
	return nil
}
