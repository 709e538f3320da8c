package plugin

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite the frontend's recorded backend answers in src/testdata")

// frontendTestdata is where the frontend's tests read what this backend answers.
const frontendTestdata = "../../src/testdata"

// golden compares got with the file, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(frontendTestdata, name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/plugin -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the backend answers now; run go test ./pkg/plugin -run %s -update and check the frontend tests\ngot:\n%s", path, t.Name(), got)
	}
}

// TestFrontendResources records the resources the editors and variables
// fetch, as the backend serves them from the recorded catalog, so that the
// frontend's component tests run on the backend's real answers.
func TestFrontendResources(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	out := map[string]json.RawMessage{}
	for _, path := range []string{
		"channels", "families", "categories", "kinds", "billable", "codes",
		"codes?channel=app_sdk", "codes?channel=eid", "codes?channel=app_sdk,eid", "codes?family=willingness",
	} {
		status, body := callResourceURL(t, d, path)
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
		out[path] = body
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "resources.json", append(b, '\n'))
}

// TestFrontendAnnotationFrame records the frame of an annotations query in
// Grafana's data frame JSON, for the frontend's annotation mapping test.
func TestFrontendAnnotationFrame(t *testing.T) {
	srv := fixture.New(fixture.Options{})
	defer srv.Close()
	d := newDS(t, backend.DataSourceInstanceSettings{URL: srv.URL})
	day := backend.TimeRange{From: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	r := query(t, d, map[string]any{"queryType": "annotations"}, day)
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	b, err := data.FrameToJSON(r.Frames[0], data.IncludeAll)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, b, "", " "); err != nil {
		t.Fatal(err)
	}
	golden(t, "annotations_frame.json", append(pretty.Bytes(), '\n'))
}
