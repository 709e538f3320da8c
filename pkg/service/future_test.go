package service_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
	"github.com/faceid-observability/faceid-exporter/pkg/config"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
	"github.com/faceid-observability/faceid-exporter/pkg/service"
	"github.com/faceid-observability/faceid-exporter/pkg/stream"
)

// TestFutureTimestampDoesNotMoveLedger (issue 15, defect 1): two events
// stamped 2199, a wechat_h5 one and an NFC success, come ahead of three days
// of normal traffic. They are rejected as future_ts and dead-lettered; every
// later event is booked on its own day (no day dropped, nothing too old),
// each redelivery is still caught with a dedupe capacity of 10, and each NFC
// reqId repeat inside 5 minutes is still unbilled. Expected figures are hand
// counted from the traffic below, in core NATS and in JetStream mode.
func TestFutureTimestampDoesNotMoveLedger(t *testing.T) {
	for _, mode := range []string{"core", "jetstream"} {
		t.Run(mode, func(t *testing.T) {
			s := natstest.RunServer(t)
			file := config.Default(catalog(t))
			file.Dedupe.Capacity = 10 // the default 10m window
			cfg := service.Config{NATS: stream.ConnOptions{URLs: s.ClientURL()}, File: file}
			if mode == "jetstream" {
				cfg.JetStream = jsConfig()
			}
			st, _ := started(t, cfg)
			natstest.WaitFor(t, 10*time.Second, "ready", func() bool {
				resp, err := http.Get("http://" + st.HTTP[0].String() + "/-/ready")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
			nc, err := nats.Connect(s.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			sent := 0
			publish := func(channel, msg string) {
				t.Helper()
				subject := "faceid.results." + channel
				if mode == "jetstream" {
					_, err = js.Publish(t.Context(), subject, []byte(msg))
				} else {
					err = nc.Publish(subject, []byte(msg))
				}
				if err != nil {
					t.Fatal(err)
				}
				sent++
			}

			publish("wechat_h5", `{"id":"future","channel":"wechat_h5","code":"0","ts":"2199-01-01T00:00:00Z"}`)
			publish("nfc_server", `{"id":"future-nfc","channel":"nfc_server","code":"0","req_id":"q","ts":"2199-01-01T00:00:00Z"}`)
			today := ledger.DayOf(time.Now())
			want := ledger.Books{}
			for _, day := range []ledger.Day{today - 3, today - 2, today - 1} {
				noon := day.Start().Add(12 * time.Hour)
				for i := range 20 {
					msg := fmt.Sprintf(`{"id":"e%d-%d","channel":"wechat_h5","code":"0","ts":%q}`, day, i, noon.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano))
					publish("wechat_h5", msg)
					if i%3 == 0 { // a redelivery: 7 a day
						publish("wechat_h5", msg)
					}
				}
				want.Add(ledger.Key{Day: day, Channel: "wechat_h5", Code: "0", Billable: "true"}, 20)
				// reqId q: billed at 12:00, a repeat at 12:01 is not, 12:06 opens a new window.
				for i, at := range []time.Duration{0, time.Minute, 6 * time.Minute} {
					publish("nfc_server", fmt.Sprintf(`{"id":"n%d-%d","channel":"nfc_server","code":"0","req_id":"q","ts":%q}`, day, i, noon.Add(at).Format(time.RFC3339Nano)))
				}
				want.Add(ledger.Key{Day: day, Channel: "nfc_server", Code: "0", Billable: "true"}, 2)
				want.Add(ledger.Key{Day: day, Channel: "nfc_server", Code: "0", Billable: "false"}, 1)
			}
			natstest.WaitFor(t, 20*time.Second, "every message received", func() bool {
				return total(scrape(t, st, "faceid_exporter_events_received_total")) == float64(sent)
			})

			sum := func(name string, match ...string) float64 {
				n := 0.0
			series:
				for k, v := range scrape(t, st, name) {
					for _, m := range match {
						if !strings.Contains(","+k+",", ","+m+",") {
							continue series
						}
					}
					n += v
				}
				return n
			}
			for _, c := range []struct {
				name  string
				match []string
				want  float64
			}{
				{"faceid_exporter_events_rejected_total", []string{"reason=future_ts"}, 2},
				{"faceid_exporter_events_rejected_total", nil, 2},
				{"faceid_exporter_dead_letters_total", []string{"reason=future_ts"}, 2},
				{"faceid_exporter_duplicates_total", nil, 21},
				{"faceid_exporter_ledger_too_old_events_total", nil, 0},
				{"faceid_verifications_total", []string{"channel=wechat_h5"}, 60},
				{"faceid_verifications_total", []string{"channel=nfc_server", "billable=true"}, 6},
				{"faceid_verifications_total", []string{"channel=nfc_server", "billable=false"}, 3},
			} {
				if got := sum(c.name, c.match...); got != c.want {
					t.Errorf("%s%v = %v, want %v", c.name, c.match, got, c.want)
				}
			}
			if mode != "jetstream" {
				return
			}
			wantRows := want.Rows(today-4, today)
			var got []ledger.Row
			url := fmt.Sprintf("http://%s/api/v1/ledger?from=%s&to=%s&format=json", st.HTTP[0], today-4, today)
			read := func() bool {
				resp, err := http.Get(url)
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				var doc struct {
					Rows []ledger.Row `json:"rows"`
				}
				if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&doc) != nil {
					return false
				}
				got = doc.Rows
				return reflect.DeepEqual(got, wantRows)
			}
			deadline := time.Now().Add(20 * time.Second)
			for !read() && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if !reflect.DeepEqual(got, wantRows) {
				t.Errorf("committed ledger:\n got %+v\nwant %+v", got, wantRows)
			}
		})
	}
}

// TestFutureToleranceUsesTheMessageStamp: the future-timestamp rule compares
// an event's ts with its message's JetStream timestamp, not with the clock
// when the message is read, so a replay decides as the first read did. Two
// events are stored before any exporter runs, one 3 s and one 1 s ahead of
// their stamps, and read more than 4 s later with a tolerance of 2 s: by
// the clock both would pass; by the stamp the first is future_ts.
func TestFutureToleranceUsesTheMessageStamp(t *testing.T) {
	s := natstest.RunServer(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "FACEID", Subjects: []string{"faceid.results.>"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, ahead := range []time.Duration{3 * time.Second, time.Second} {
		msg := fmt.Sprintf(`{"id":"a%d","channel":"wechat_h5","code":"0","ts":%q}`, i, now.Add(ahead).Format(time.RFC3339Nano))
		if _, err := js.Publish(t.Context(), "faceid.results.wechat_h5", []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Until(now.Add(4500 * time.Millisecond)))
	file := config.Default(catalog(t))
	file.Events.FutureTolerance = 2 * time.Second
	st, _ := started(t, service.Config{NATS: stream.ConnOptions{URLs: s.ClientURL()}, File: file, JetStream: jsConfig()})
	natstest.WaitFor(t, 20*time.Second, "both messages received", func() bool {
		return total(scrape(t, st, "faceid_exporter_events_received_total")) == 2
	})
	if got := byReason(scrape(t, st, "faceid_exporter_events_rejected_total"))["reason=future_ts"]; got != 1 {
		t.Errorf("future_ts rejections %v, want 1 (the event 3 s ahead of its stamp)", got)
	}
	if got := total(scrape(t, st, "faceid_verifications_total")); got != 1 {
		t.Errorf("verifications %v, want 1 (the event 1 s ahead of its stamp)", got)
	}
}
