// Command benchconsumer is the no-op reference of e2e/throughput: a JetStream
// consumer in its own process that reads a stream and does nothing with the
// messages, so that the exporter's throughput and CPU can be compared with
// the cost of reading alone.
//
// Modes: ordered (an ordered, ack-free consumer: jetstream OrderedConsumer +
// Consume, as the exporter's partitions read) and explicit-ack (a durable
// pull consumer with AckExplicit that acks every message).
//
// Protocol, so that the parent can read this process's CPU accounting at the
// start and the end of the reading window: once the consumer exists it
// prints "ready"; it starts reading when a line arrives on stdin; after the
// last of --events messages (for explicit-ack: acked and flushed to the
// server) it stops reading and prints
//
//	done <messages> <start unix ns> <first message unix ns> <last message unix ns>
//
// then exits 0 when stdin closes. Any failure, or --timeout passing, exits 1
// with the reason on stderr.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	app := kingpin.New("benchconsumer", "No-op JetStream consumer for e2e/throughput.")
	url := app.Flag("nats.url", "NATS server URL.").Required().String()
	streamName := app.Flag("stream", "Stream to read.").Required().String()
	subject := app.Flag("subject", "Filter subject.").Default("faceid.results.>").String()
	mode := app.Flag("mode", "ordered or explicit-ack.").Required().Enum("ordered", "explicit-ack")
	durable := app.Flag("durable", "Name of the explicit-ack consumer (created, deleted at the end).").Default("bench-acker").String()
	events := app.Flag("events", "Messages to read before stopping.").Required().Int64()
	pullMax := app.Flag("pull-max-messages", "PullMaxMessages of Consume (0: 1000 ordered, 500 explicit-ack, as pkg/stream's BenchmarkJetStream).").Int()
	maxAckPending := app.Flag("max-ack-pending", "MaxAckPending of the explicit-ack consumer.").Default("1000").Int()
	timeout := app.Flag("timeout", "Longest time from start to the last message.").Default("5m").Duration()
	kingpin.MustParse(app.Parse(os.Args[1:]))
	if err := run(*url, *streamName, *subject, *mode, *durable, *events, *pullMax, *maxAckPending, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "benchconsumer:", err)
		os.Exit(1)
	}
}

func run(url, streamName, subject, mode, durable string, n int64, pullMax, maxAckPending int, timeout time.Duration) error {
	if n <= 0 {
		return fmt.Errorf("--events %d: want at least 1", n)
	}
	nc, err := nats.Connect(url, nats.Name("benchconsumer-"+mode))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cons jetstream.Consumer
	var ack bool
	switch mode {
	case "ordered":
		if pullMax == 0 {
			pullMax = 1000
		}
		cons, err = js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	default:
		if pullMax == 0 {
			pullMax = 500
		}
		ack = true
		cons, err = js.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{
			Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: maxAckPending,
			FilterSubject: subject, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		defer func() {
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			_ = js.DeleteConsumer(dctx, streamName, durable)
		}()
	}
	if err != nil {
		return fmt.Errorf("%s consumer on %s: %w", mode, streamName, err)
	}
	stdin := bufio.NewReader(os.Stdin)
	fmt.Println("ready")
	if _, err := stdin.ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the start line: %w", err)
	}

	var count atomic.Int64 // read by the timeout's message
	var first, last time.Time
	done := make(chan struct{})
	var ackErr error
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) {
		c := count.Load()
		if c >= n {
			return
		}
		if ack {
			if err := m.Ack(); err != nil && ackErr == nil {
				ackErr = err
			}
		}
		c++
		count.Store(c)
		if c == 1 {
			first = time.Now()
		}
		if c == n {
			last = time.Now()
			close(done)
		}
	}, jetstream.PullMaxMessages(pullMax))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	select {
	case <-done:
	case <-time.After(timeout):
		cc.Stop()
		return fmt.Errorf("read %d of %d messages within %s", count.Load(), n, timeout)
	}
	if ack {
		// The acks are published asynchronously: the window ends once the
		// server has them.
		if err := nc.FlushTimeout(30 * time.Second); err != nil {
			return fmt.Errorf("flush the acks: %w", err)
		}
		last = time.Now()
	}
	cc.Stop()
	if ackErr != nil {
		return fmt.Errorf("ack: %w", ackErr)
	}
	fmt.Printf("done %d %d %d %d\n", n, start.UnixNano(), first.UnixNano(), last.UnixNano())
	if _, err := io.Copy(io.Discard, stdin); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
