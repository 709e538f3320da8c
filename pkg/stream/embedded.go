// Package stream connects the exporter to NATS: an embedded server for
// single-binary use, the connection with its security options and reconnect
// policy, a core-NATS queue subscription, a JetStream durable pull consumer,
// and the dead-letter publisher for rejected messages.
package stream

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultEmbeddedListen is where the embedded server listens by default: the
// standard NATS port, on loopback only.
const DefaultEmbeddedListen = "127.0.0.1:4222"

// DefaultStoreDir returns the default JetStream store of the embedded server.
func DefaultStoreDir() string { return filepath.Join(os.TempDir(), "faceid-exporter-nats") }

// EmbeddedOptions configure the in-process NATS server.
type EmbeddedOptions struct {
	// Listen is host:port; port -1 or 0 picks a free port.
	Listen   string
	StoreDir string
	Logger   *slog.Logger
}

// StartEmbedded starts an in-process NATS server with JetStream and waits
// until it accepts connections. Call Shutdown on the result.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("embedded nats listen address %q: invalid port", o.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if o.StoreDir == "" {
		o.StoreDir = DefaultStoreDir()
	}
	if err := os.MkdirAll(o.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats store: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "faceid-exporter-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(&slogAdapter{l: o.Logger.With("component", "nats-server")}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats server on %s not ready after 10s", o.Listen)
	}
	return s, nil
}

// slogAdapter sends the server's log to slog; debug and trace are dropped.
type slogAdapter struct{ l *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(string, ...any)           {}
func (a *slogAdapter) Tracef(string, ...any)           {}
