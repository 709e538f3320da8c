package throughput

import (
	"encoding/json"
	"testing"
)

// TestWorkload: every message of the workload is a JSON object of the
// requested size with its own id, and the copies of a distinct event differ
// in the id alone.
func TestWorkload(t *testing.T) {
	w, err := newWorkload(7, 50, 350, 42)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	var buf []byte
	for i := range w.events() {
		msg, subject := w.message(buf, i)
		buf = msg
		var ev struct {
			ID      string         `json:"id"`
			Channel string         `json:"channel"`
			Extra   map[string]any `json:"extra"`
		}
		if err := json.Unmarshal(msg, &ev); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, msg)
		}
		if len(msg) < 350 {
			t.Errorf("event %d: %d bytes, want at least 350", i, len(msg))
		}
		if ids[ev.ID] {
			t.Fatalf("event %d: id %s again", i, ev.ID)
		}
		ids[ev.ID] = true
		if ev.Channel != "" && subject != "faceid.results."+ev.Channel {
			t.Errorf("event %d: channel %s on subject %s", i, ev.Channel, subject)
		}
		tpl := w.templates[i%len(w.templates)]
		for j := range tpl {
			if tpl[j] != msg[j] {
				if j < w.idAt || j >= w.idAt+12 {
					t.Fatalf("event %d differs from its template at byte %d, outside the id", i, j)
				}
			}
		}
	}
	if len(ids) != 7*50 {
		t.Errorf("%d ids, want %d", len(ids), 7*50)
	}
}
