package natsproc_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natsproc"
)

// TestStartJetStreamStop builds the pinned nats-server, runs it as a process,
// stores a message in a stream through it and stops it cleanly.
func TestStartJetStreamStop(t *testing.T) {
	bin, err := natsproc.Build("../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := natsproc.Start(natsproc.Options{Bin: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Kill()
	if s.Pid() == os.Getpid() || !strings.HasPrefix(s.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("pid %d, url %q", s.Pid(), s.ClientURL())
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "t.x", []byte("x"))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("publish: %v %+v", err, ack)
	}
	nc.Close()
	if err := s.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if tail := s.LogTail(4000); !strings.Contains(tail, "Server is ready") {
		t.Errorf("log tail has no \"Server is ready\":\n%s", tail)
	}
}
