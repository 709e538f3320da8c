package exactly

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// node is one in-process NATS server with JetStream that can be shut down and
// started again on the same ports and store directory, as a restarted server
// pod would be.
type node struct {
	t           testing.TB
	name        string
	storeDir    string
	port        int // client port; -1 until the first start picked one
	clusterName string
	clusterPort int
	routes      []string // cluster URLs of every node, this one included

	mu  sync.Mutex
	srv *server.Server
}

func (n *node) options() *server.Options {
	o := &server.Options{
		ServerName: n.name, Host: "127.0.0.1", Port: n.port,
		JetStream: true, StoreDir: n.storeDir, NoLog: true, NoSigs: true,
	}
	if n.clusterName != "" {
		o.Cluster = server.ClusterOpts{Name: n.clusterName, Host: "127.0.0.1", Port: n.clusterPort}
		o.Routes = server.RoutesFromStr(strings.Join(n.routes, ","))
	}
	return o
}

// start starts the server and waits until it accepts clients.
func (n *node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return fmt.Errorf("nats %s already running", n.name)
	}
	s, err := server.NewServer(n.options())
	if err != nil {
		return fmt.Errorf("nats %s: %w", n.name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return fmt.Errorf("nats %s not ready within 30s", n.name)
	}
	n.port = s.Addr().(*net.TCPAddr).Port
	n.srv = s
	return nil
}

// stop shuts the server down and waits until it is gone.
func (n *node) stop() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// restart stops the server, keeps it down for down, and starts it again on
// the same port and store.
func (n *node) restart(down time.Duration) error {
	n.stop()
	pause(down)
	return n.start()
}

// server returns the running server, nil when it is down.
func (n *node) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

func (n *node) clientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// newSingle starts one server with its store under t.TempDir().
func newSingle(t testing.TB) *node {
	t.Helper()
	n := &node{t: t, name: "single", storeDir: t.TempDir(), port: server.RANDOM_PORT}
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

// cluster is three in-process servers routed on loopback, each with its own
// JetStream store.
type cluster struct {
	nodes []*node
}

// freePorts returns n TCP ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// newCluster starts a three-node cluster and waits until its JetStream meta
// group has a leader and every peer.
func newCluster(t testing.TB) *cluster {
	t.Helper()
	const size = 3
	ports := freePorts(t, size)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &cluster{}
	for i := range size {
		c.nodes = append(c.nodes, &node{
			t: t, name: fmt.Sprintf("n%d", i), storeDir: t.TempDir(), port: server.RANDOM_PORT,
			clusterName: "faceid-test", clusterPort: ports[i], routes: routes,
		})
	}
	errs := make(chan error, size)
	for _, n := range c.nodes {
		go func() { errs <- n.start() }()
	}
	for range size {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.stop()
		}
	})
	eventually(t, 60*time.Second, 50*time.Millisecond, "a JetStream meta leader with 3 peers", c.metaReady)
	return c
}

// metaReady reports whether a running node leads the meta group and sees
// every peer.
func (c *cluster) metaReady() (bool, string) {
	for _, n := range c.nodes {
		s := n.server()
		if s == nil || !s.JetStreamIsLeader() {
			continue
		}
		if p := len(s.JetStreamClusterPeers()); p != len(c.nodes) {
			return false, fmt.Sprintf("leader %s sees %d peers", n.name, p)
		}
		return true, ""
	}
	return false, "no meta leader"
}

// urls returns every node's client URL, comma-separated.
func (c *cluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.clientURL())
	}
	return strings.Join(u, ",")
}

// streamLeader returns the node leading stream (in the global account), nil
// when none does.
func (c *cluster) streamLeader(stream string) *node {
	for _, n := range c.nodes {
		if s := n.server(); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return n
		}
	}
	return nil
}
