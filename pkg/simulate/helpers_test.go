package simulate

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/books"
	"github.com/faceid-observability/faceid-exporter/pkg/classify"
)

func defaultCatalog(t testing.TB) *classify.Catalog {
	t.Helper()
	cat, err := classify.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// counter classifies the messages it receives with a classifier of its own
// and counts them the way a Report does. It runs the same code on the same
// catalog as the generator's truth, so agreeing with a Report shows that
// every message arrived once and was tallied right; it says nothing about
// whether the classifier is right.
type counter struct {
	mu       sync.Mutex
	cls      *classify.Classifier
	rules    *books.Rules // duplicates and the reqId rule, as a partition applies them
	res      classify.Result
	received int64
	by       map[[3]string]int64 // channel, code, billable
	risk     map[[2]string]int64
	rejected map[string]int64
}

func newCounter(cat *classify.Catalog) *counter {
	return &counter{
		cls:      classify.New(cat, classify.Options{}),
		rules:    books.NewRules(cat, books.RulesOptions{DedupeWindow: 10 * time.Minute, DedupeCapacity: 100000}),
		by:       map[[3]string]int64{},
		risk:     map[[2]string]int64{},
		rejected: map[string]int64{},
	}
}

func lastToken(subject string) string { return subject[strings.LastIndexByte(subject, '.')+1:] }

// add classifies msg received on subject and returns the result (valid until
// the next add) or the rejection reason.
func (c *counter) add(msg []byte, subject string, received time.Time) (*classify.Result, classify.Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received++
	if err := c.cls.Classify(msg, []byte(lastToken(subject)), received, &c.res); err != nil {
		var re *classify.RejectError
		if !errors.As(err, &re) {
			panic(err)
		}
		c.rejected[re.Reason.String()]++
		return nil, re.Reason
	}
	c.rules.Apply(&c.res)
	code := "unknown"
	if c.res.Code != nil {
		code = c.res.Code.Code
	}
	c.by[[3]string{c.res.Channel.Name, code, c.res.Billable.String()}]++
	c.risk[[2]string{c.res.Channel.Name, c.res.Risk.String()}]++
	return &c.res, classify.ReasonNone
}

func (c *counter) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received
}

// compare fails t unless rep counts exactly what c counted.
func (c *counter) compare(t *testing.T, rep Report) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.received != rep.Sent {
		t.Errorf("subscriber received %d messages, report says %d sent", c.received, rep.Sent)
	}
	got := map[[3]string]int64{}
	for _, r := range rep.By {
		got[[3]string{r.Channel, r.Code, r.Billable}] += r.Count
	}
	for k, v := range c.by {
		if got[k] != v {
			t.Errorf("by %v: report %d, subscriber %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if c.by[k] != v {
			t.Errorf("by %v: report %d, subscriber %d", k, v, c.by[k])
		}
	}
	gotRisk := map[[2]string]int64{}
	for _, r := range rep.Risk {
		gotRisk[[2]string{r.Channel, r.Risk}] += r.Count
	}
	for k, v := range c.risk {
		if gotRisk[k] != v {
			t.Errorf("risk %v: report %d, subscriber %d", k, gotRisk[k], v)
		}
	}
	if len(gotRisk) != len(c.risk) {
		t.Errorf("risk rows: report %d, subscriber %d", len(gotRisk), len(c.risk))
	}
	for _, reason := range classify.Reasons() {
		if rep.Malformed[reason.String()] != c.rejected[reason.String()] {
			t.Errorf("malformed %s: report %d, subscriber %d", reason, rep.Malformed[reason.String()], c.rejected[reason.String()])
		}
	}
	if rep.Accepted()+rep.MalformedTotal() != rep.Sent {
		t.Errorf("accepted %d + malformed %d != sent %d", rep.Accepted(), rep.MalformedTotal(), rep.Sent)
	}
}
