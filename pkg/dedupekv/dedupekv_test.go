package dedupekv_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupe"
	"github.com/faceid-observability/faceid-exporter/pkg/dedupekv"
)

func open(t testing.TB, url string, timeout time.Duration) (*dedupekv.Store, *nats.Conn) {
	t.Helper()
	nc := natstest.Connect(t, url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := dedupekv.New(t.Context(), js, dedupekv.Options{Bucket: "faceid-dedupe", Window: time.Minute, Capacity: 1000, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return st, nc
}

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// TestShared checks that an id recorded by one store (one process) is a
// duplicate for another on the same bucket, that repeats inside one process
// are answered locally, and that the bucket's TTL is the window.
func TestShared(t *testing.T) {
	s := natstest.RunServer(t)
	a, nc := open(t, s.ClientURL(), 0)
	b, _ := open(t, s.ClientURL(), 0)
	for i, step := range []struct {
		name  string
		store *dedupekv.Store
		key   uint64
		want  bool
	}{
		{"a_new", a, 1, false},
		{"a_repeat_local", a, 1, true},
		{"b_recorded_by_a", b, 1, true},
		{"b_new", b, 2, false},
		{"a_recorded_by_b", a, 2, true},
		{"a_new_2", a, 3, false},
		{"key_zero", b, 0, false},
		{"key_zero_repeat", a, 0, true},
	} {
		if got := step.store.Seen(step.key, t0.Add(time.Duration(i)*time.Second)); got != step.want {
			t.Fatalf("step %s: Seen(%d) = %v, want %v", step.name, step.key, got, step.want)
		}
	}
	if a.Writes() != 4 || b.Writes() != 3 {
		t.Errorf("writes a=%d b=%d, want 4 and 3: local repeats must not reach the bucket", a.Writes(), b.Writes())
	}
	if a.RemoteDuplicates() != 2 || b.RemoteDuplicates() != 1 {
		t.Errorf("remote duplicates a=%d b=%d, want 2 and 1", a.RemoteDuplicates(), b.RemoteDuplicates())
	}
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(t.Context(), "faceid-dedupe")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Values() != 4 || st.TTL() != time.Minute || st.History() != 1 {
		t.Errorf("bucket: %d values, ttl %s, history %d; want 4, 1m, 1", st.Values(), st.TTL(), st.History())
	}
	if _, err := kv.Get(t.Context(), dedupekv.Key(2)); err != nil {
		t.Errorf("key of id 2: %v", err)
	}
}

// TestUnreachable checks that a store whose server is gone counts (answers
// "not seen"), reports the error, and still answers local repeats.
func TestUnreachable(t *testing.T) {
	s := natstest.RunServer(t)
	a, _ := open(t, s.ClientURL(), 200*time.Millisecond)
	if a.Seen(1, t0) {
		t.Fatal("new id seen")
	}
	s.Shutdown()
	s.WaitForShutdown()
	if a.Seen(2, t0) {
		t.Error("an unchecked id was taken for a duplicate: it would be lost")
	}
	if !a.Seen(1, t0) {
		t.Error("a local repeat was not recognised")
	}
	if a.Errors() != 1 {
		t.Errorf("errors = %d, want 1", a.Errors())
	}
}

// BenchmarkSeen compares, in one run, the cost of recording a new id in the
// in-memory window and in the JetStream KV store (one KV Create round trip to
// an in-process server, file storage), and of a repeat answered by the KV
// store's local front.
func BenchmarkSeen(b *testing.B) {
	b.Run("memory_window_new_id", func(b *testing.B) {
		w := dedupe.NewWindow(10*time.Minute, 100000)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			w.Seen(uint64(i)*0x9E3779B97F4A7C15+1, t0)
		}
	})
	b.Run("jetstream_kv_new_id", func(b *testing.B) {
		s := natstest.RunServer(b)
		st, _ := open(b, s.ClientURL(), 0)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if st.Seen(uint64(i)*0x9E3779B97F4A7C15+1, t0) {
				b.Fatal("new id seen")
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ids/s")
		if st.Errors() != 0 {
			b.Fatalf("%d errors", st.Errors())
		}
	})
	b.Run("jetstream_kv_local_repeat", func(b *testing.B) {
		s := natstest.RunServer(b)
		st, _ := open(b, s.ClientURL(), 0)
		st.Seen(42, t0)
		b.ReportAllocs()
		for b.Loop() {
			if !st.Seen(42, t0) {
				b.Fatal("repeat not seen")
			}
		}
	})
}
