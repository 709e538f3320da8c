package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
)

// DayFile is the stored form of one ledger day of one partition.
type DayFile struct {
	Day  string `json:"day"`
	Rows []Row  `json:"rows"`
}

// ErrNoBooks: the group has no committed checkpoint on this bucket.
var ErrNoBooks = errors.New("no checkpoint")

// Read returns the committed rows of days from..to of every partition of a
// stream's consumer group, summed, from its checkpoint bucket. A commit that
// replaces a day's value while it is read makes it read the records and
// values again (checkpoint.Store.View), a bounded number of times.
func Read(ctx context.Context, kv jetstream.KeyValue, stream, group string, from, to Day) ([]Row, error) {
	st := checkpoint.NewStore(kv, stream, group)
	var rows []Row
	err := st.View(ctx, func(recs map[int]*checkpoint.Record) error {
		if len(recs) == 0 {
			return fmt.Errorf("%w for stream %s and group %s in bucket %s", ErrNoBooks, stream, group, kv.Bucket())
		}
		sum := Books{}
		for p, rec := range recs {
			// A day's stored value with the changed rows of the deltas
			// after it (each delta replaces the counts it names).
			var changes []map[Day][]Row
			if rec.Deltas != nil {
				deltas, _, err := st.Deltas(ctx, rec)
				if err != nil {
					return fmt.Errorf("partition %d: %w", p, err)
				}
				for _, d := range deltas {
					c, err := DecodeDaysDelta(d.Days)
					if err != nil {
						return fmt.Errorf("partition %d: %w", p, err)
					}
					changes = append(changes, c)
				}
			}
			dayRefs, err := st.DayRefs(ctx, rec)
			if err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			for d, ref := range dayRefs {
				day, err := ParseDay(d)
				if err != nil {
					return fmt.Errorf("partition %d: %w", p, err)
				}
				if day < from || day > to {
					continue
				}
				data, err := st.Get(ctx, ref)
				if err != nil {
					return fmt.Errorf("partition %d: %w", p, err)
				}
				f, err := MergeDay(day, data, changes...)
				if err != nil {
					return fmt.Errorf("partition %d: %w", p, err)
				}
				for _, r := range f.Rows {
					sum.Add(Key{Day: day, Channel: r.Channel, Code: r.Code, Billable: r.Billable, RuleID: r.RuleID}, r.Count)
				}
			}
		}
		rows = sum.Rows(from, to)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = []Row{}
	}
	return rows, nil
}
