// Package provisioning holds Grafana's provisioning files for the FaceID
// dashboards and the test that they are well formed.
package provisioning

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestDatasources(t *testing.T) {
	files, _ := filepath.Glob("datasources/*.yaml")
	if len(files) == 0 {
		t.Fatal("no datasource provisioning files")
	}
	defaults, prom := 0, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			APIVersion  int `yaml:"apiVersion"`
			Datasources []struct {
				Name      string `yaml:"name"`
				UID       string `yaml:"uid"`
				Type      string `yaml:"type"`
				URL       string `yaml:"url"`
				IsDefault bool   `yaml:"isDefault"`
			} `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if doc.APIVersion != 1 {
			t.Errorf("%s: apiVersion %d, want 1", f, doc.APIVersion)
		}
		for _, d := range doc.Datasources {
			if d.Name == "" || d.Type == "" {
				t.Errorf("%s: datasource without name or type: %+v", f, d)
			}
			if d.IsDefault {
				defaults++
			}
			if d.Type == "prometheus" {
				prom++
				if d.URL == "" || d.UID == "" {
					t.Errorf("%s: prometheus datasource needs url and uid: %+v", f, d)
				}
			}
		}
	}
	if prom == 0 {
		t.Error("no prometheus datasource")
	}
	if defaults > 1 {
		t.Errorf("%d default datasources; Grafana accepts one", defaults)
	}
}

func TestDashboardProvider(t *testing.T) {
	data, err := os.ReadFile("dashboards/faceid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Folder  string `yaml:"folder"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.APIVersion != 1 || len(doc.Providers) != 1 {
		t.Fatalf("want apiVersion 1 and one provider: %+v", doc)
	}
	p := doc.Providers[0]
	if p.Type != "file" || p.Options.Path == "" || p.Folder == "" {
		t.Errorf("provider must load files from a path into a folder: %+v", p)
	}
}
