package exactly

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ackCutter is a TCP proxy in front of a NATS server that, once, lets a
// client's publish to trigger reach the server and drops the server's reply:
// the write is applied, the writer never hears of it (its connection is cut
// and it reconnects through the proxy). That is a KV update whose
// acknowledgement is lost, as a server restart or a leader change can lose
// it.
type ackCutter struct {
	t       testing.TB
	l       net.Listener
	target  string
	trigger []byte
	// after is how many publishes to trigger pass before the one cut.
	after int32
	seen  atomic.Int32
	cut   chan struct{} // closed once the cut is done
	once  sync.Once
}

func newAckCutter(t testing.TB, target, trigger string, after int) *ackCutter {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &ackCutter{t: t, l: l, target: target, trigger: []byte(trigger), after: int32(after), cut: make(chan struct{})}
	t.Cleanup(func() { l.Close() })
	go c.serve()
	return c
}

func (c *ackCutter) url() string { return "nats://" + c.l.Addr().String() }

func (c *ackCutter) serve() {
	for {
		client, err := c.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", c.target)
		if err != nil {
			client.Close()
			continue
		}
		c.t.Cleanup(func() { client.Close(); server.Close() })
		go c.pipe(client, server)
	}
}

// pipe copies both ways; when the client's bytes complete the chosen
// publish, the server's replies stop being forwarded and the connection is
// closed soon after.
func (c *ackCutter) pipe(client, server net.Conn) {
	var drop atomic.Bool
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 && !drop.Load() {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := client.Read(buf)
		if n > 0 {
			window := append(tail, buf[:n]...)
			hits := bytes.Count(window, c.trigger) - bytes.Count(tail, c.trigger)
			for range hits {
				if c.seen.Add(1) == c.after+1 {
					drop.Store(true)
					go func() {
						// Time for the server to apply the write, then
						// the writer loses its connection.
						<-time.After(200 * time.Millisecond)
						client.Close()
						server.Close()
						c.once.Do(func() { close(c.cut) })
					}()
				}
			}
			if len(window) > len(c.trigger) {
				tail = append([]byte(nil), window[len(window)-len(c.trigger):]...)
			} else {
				tail = window
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				server.Close()
			}
			return
		}
	}
}

// adoptedLine is what an owner logs when it finds that a commit whose answer
// it never got had been applied (partition.resolve).
const adoptedLine = "a commit whose answer was lost had been applied: adopting it"

// TestLostCommitAck: a checkpoint commit that the KV applied but whose
// acknowledgement the owner never got (connection cut right after the
// update) is found applied and adopted by the owner, which carries on (it is
// not fenced by its own commit), and whoever takes the partition next
// restores the checkpoint and counts every message exactly once.
func TestLostCommitAck(t *testing.T) {
	bin := exporterBinary(t)
	cat := loadCatalog(t, bin)
	srv := newSingle(t)
	_, js := connect(t, srv.clientURL())
	createStream(t, js, streamConfig(1))
	const group = "lostack"
	cutter := newAckCutter(t, srv.server().Addr().String(), "$KV.faceid-checkpoints."+streamName+"."+group+".p0 ", 10)

	fx := newFixture(fixtureOptions{Seed: 5, N: 20000, Now: time.Now(), Cat: cat})
	owner := newGroup(t, t.TempDir(), bin, cutter.url(), group, 1, 1, chaosFlags...)
	owner.start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- publish(ctx, js, fx.Msgs, 8*time.Second) }()
	select {
	case <-cutter.cut:
	case <-time.After(time.Minute):
		t.Fatalf("no commit of partition 0 went through the proxy (%d seen)", cutter.seen.Load())
	}
	t.Logf("cut the connection after commit %d of partition 0 reached the server", cutter.seen.Load())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The owner (reconnected through the proxy) goes on or is fenced and
	// takes the partition again; then a replacement connected straight to
	// the server must restore whatever was committed last.
	st := streamState(t, js, streamName)
	owner.waitSettled(len(fx.Msgs), st.LastSeq, time.Minute)
	logs := owner.procs[0].logText()
	if !strings.Contains(logs, adoptedLine) {
		owner.procs[0].printLogs()
		t.Fatalf("the owner never logged %q: the commit whose answer was cut was not found applied and adopted", adoptedLine)
	}
	if strings.Contains(logs, "partition lost to another owner") {
		owner.procs[0].printLogs()
		t.Errorf("the owner was fenced although nobody else committed: its own applied commit was taken for another owner's")
	}
	owner.procs[0].kill()
	next := newGroup(t, t.TempDir(), bin, srv.clientURL(), group, 1, 1, chaosFlags...)
	next.start()
	scrapes := next.waitSettled(len(fx.Msgs), st.LastSeq, time.Minute)
	checkExpectation(t, scrapes, fx.Expect)
}
