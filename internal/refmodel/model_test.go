package refmodel

import (
	"os"
	"testing"
	"time"
)

func testCatalog(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../pkg/classify/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newModel(t testing.TB, cfg Config) *Model {
	t.Helper()
	cfg.CatalogYAML = testCatalog(t)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSmoke(t *testing.T) {
	m := newModel(t, Config{})
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, beijing)
	m.Apply(Msg{Seq: 1, Subject: "faceid.results.wechat_h5", Data: []byte(`{"id":"a","code":"0"}`), Stamp: now})
	e := m.Expect()
	if e.Counters[`faceid_verifications_total{billable="true",channel="wechat_h5",code="0",outcome="success"}`] != 1 {
		t.Fatalf("%v", e.Counters)
	}
	if e.Ledger[LedgerKey{Day: "2026-11-25", Channel: "wechat_h5", Code: "0", Billable: "true"}] != 1 {
		t.Fatalf("%v", e.Ledger)
	}
}
