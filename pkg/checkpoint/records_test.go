package checkpoint_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/checkpoint"
)

// TestRecordsWhileCommitting: every partition's record is read while the
// owners commit (a KV key listing can end before it has shown every key
// while the bucket is written to, nats-server#4824; a ledger read through
// it would silently miss a partition's days).
func TestRecordsWhileCommitting(t *testing.T) {
	s := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: "ckpt", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	const partitions = 3
	st := checkpoint.NewStore(kv, "FACEID", "g")
	revs := make([]uint64, partitions)
	recs := make([]checkpoint.Record, partitions)
	for p := range partitions {
		recs[p] = checkpoint.Record{Version: checkpoint.Version, Stream: "FACEID", Group: "g", Partition: p, Partitions: partitions, Owner: "a", Epoch: 1}
		if revs[p], err = st.Create(t.Context(), &recs[p]); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for p := range partitions {
		wg.Add(1)
		go func() { // an owner committing as fast as it can
			defer wg.Done()
			for ctx.Err() == nil {
				recs[p].Seq++
				rev, err := st.Commit(ctx, &recs[p], revs[p])
				if err != nil {
					return
				}
				revs[p] = rev
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		got, err := st.Records(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != partitions {
			t.Fatalf("read %d: %d of %d partition records (%v)", i, len(got), partitions, keys(got))
		}
	}
}

func keys(m map[int]*checkpoint.Record) []int {
	var out []int
	for p := range m {
		out = append(out, p)
	}
	return out
}

// TestRecordsWithoutPartitionZero: a group whose partition 0 was never
// acquired still has its other records read.
func TestRecordsWithoutPartitionZero(t *testing.T) {
	s := natstest.RunServer(t)
	js, err := jetstream.New(natstest.Connect(t, s.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := checkpoint.OpenBucket(t.Context(), js, checkpoint.BucketOptions{Bucket: "ckpt", Create: true})
	if err != nil {
		t.Fatal(err)
	}
	st := checkpoint.NewStore(kv, "FACEID", "g")
	for _, p := range []int{1, 2} {
		rec := checkpoint.Record{Version: checkpoint.Version, Stream: "FACEID", Group: "g", Partition: p, Partitions: 3, Owner: "a", Epoch: 1}
		if _, err := st.Create(t.Context(), &rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1] == nil || got[2] == nil {
		t.Fatalf("records of partitions %v, want 1 and 2", keys(got))
	}
}
