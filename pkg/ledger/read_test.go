package ledger_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// owner commits a partition's ledger days the way a partition's owner does:
// each day's value to the other slot of its epoch, then the record with a
// compare-and-set, so that the second commit after a record reuses the slots
// that record names.
type owner struct {
	st     *checkpoint.Store
	rec    checkpoint.Record
	rev    uint64
	days   []string
	commit uint64
}

func newOwner(t *testing.T, st *checkpoint.Store, p, partitions int, days []string) *owner {
	o := &owner{st: st, days: days, rec: checkpoint.Record{Version: checkpoint.Version, Stream: "FACEID", Group: "g",
		Partition: p, Partitions: partitions, Owner: "a", Epoch: 1, Days: map[string]checkpoint.Ref{}}}
	var err error
	if o.rev, err = st.Create(t.Context(), &o.rec); err != nil {
		t.Fatal(err)
	}
	return o
}

// commitOnce writes every day with the count of this commit.
func (o *owner) commitOnce(ctx context.Context) error {
	o.commit++
	epoch := o.st.EpochPrefix(o.rec.Partition, o.rec.Epoch)
	for _, d := range o.days {
		data, err := json.Marshal(ledger.DayFile{Day: d, Rows: []ledger.Row{{Day: d, Channel: "wechat_h5", Code: "0", Billable: "true", Count: o.commit}}})
		if err != nil {
			return err
		}
		key := o.st.DataKey(o.rec.Partition, o.rec.Epoch, checkpoint.DayKind(d), checkpoint.NextSlot(o.rec.Days[d], epoch))
		if o.rec.Days[d], _, err = o.st.Put(ctx, key, data); err != nil {
			return err
		}
	}
	o.rec.Commit = o.commit
	rev, err := o.st.Commit(ctx, &o.rec, o.rev)
	o.rev = rev
	return err
}

// hookKV calls before ahead of every read of a value (not of a record).
type hookKV struct {
	jetstream.KeyValue
	before func()
}

func (k hookKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if strings.Contains(key, ".d.") {
		k.before()
	}
	return k.KeyValue.Get(ctx, key)
}

// TestReadWhileCommitting (issue 15, defect 8): owners commit twice, from
// their own goroutine, while a ledger read is between reading the records
// and reading the values they name, so the values the read wants are
// replaced under it. The read starts again and returns the books of the
// newest commits, exact; when the commits never stop, it gives up after
// checkpoint.ReadAttempts reads with an error that says why.
func TestReadWhileCommitting(t *testing.T) {
	s := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		provoked int // reads of a value that commits interrupt
		wantErr  bool
	}{
		{"one_interrupted_read", 1, false},
		{"interrupted_reads_below_the_bound", checkpoint.ReadAttempts - 1, false},
		{"commits_never_stop", 1 << 30, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: "ckpt_" + tc.name, Create: true})
			if err != nil {
				t.Fatal(err)
			}
			st := checkpoint.NewStore(kv, "FACEID", "g")
			days := []string{"2026-12-01", "2026-12-02", "2026-12-03"}
			owners := []*owner{newOwner(t, st, 0, 2, days), newOwner(t, st, 1, 2, days)}
			for _, o := range owners {
				if err := o.commitOnce(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			// The owners' goroutine: two commits of each per request.
			requests, done := make(chan struct{}), make(chan error)
			go func() {
				for range requests {
					var err error
					for range 2 {
						for _, o := range owners {
							err = errors.Join(err, o.commitOnce(context.Background()))
						}
					}
					done <- err
				}
			}()
			defer close(requests)
			var interrupted atomic.Int64
			before := func() {
				if interrupted.Add(1) > int64(tc.provoked) {
					return
				}
				requests <- struct{}{}
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
			from, to, err := ledger.ParseRange(days[0], days[2])
			if err != nil {
				t.Fatal(err)
			}
			rows, err := ledger.Read(t.Context(), hookKV{kv, before}, "FACEID", "g", from, to)
			if tc.wantErr {
				if !errors.Is(err, checkpoint.ErrChanged) || !strings.Contains(err.Error(), "changed during each of 5 reads") {
					t.Fatalf("error %v, want checkpoint.ErrChanged after 5 reads", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("read with %d interrupted: %v", tc.provoked, err)
			}
			if got := interrupted.Load(); got <= int64(tc.provoked) {
				t.Fatalf("only %d value reads, %d interrupted: the commits did not land mid-read", got, tc.provoked)
			}
			// Independent of Read: the newest commit of each owner, per day.
			var want []ledger.Row
			for _, d := range days {
				want = append(want, ledger.Row{Day: d, Channel: "wechat_h5", Code: "0", Billable: "true", Count: owners[0].commit + owners[1].commit})
			}
			if wantCommit := uint64(1 + 2*tc.provoked); owners[0].commit != wantCommit {
				t.Fatalf("owner at commit %d, want %d", owners[0].commit, wantCommit)
			}
			if !reflect.DeepEqual(rows, want) {
				t.Fatalf("rows\n got %+v\nwant %+v", rows, want)
			}
		})
	}
}
