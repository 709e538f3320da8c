package helm_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	tableStart = "<!-- values-table:start (generated from values.yaml by go test ./deploy/helm -update) -->"
	tableEnd   = "<!-- values-table:end -->"
)

type valueDoc struct {
	key, typ, def, desc string
}

// documentedValues walks values.yaml: every key whose comment starts with
// "# --" is a documented value; a key without one must be a mapping whose
// keys are documented.
func documentedValues(t *testing.T) []valueDoc {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var out []valueDoc
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := prefix + k.Value
			desc, ok := description(k.HeadComment)
			if !ok {
				if v.Kind == yaml.MappingNode && len(v.Content) > 0 {
					walk(v, key+".")
					continue
				}
				t.Errorf("values.yaml: %s (line %d) has no \"# --\" description", key, k.Line)
				continue
			}
			var val any
			if err := v.Decode(&val); err != nil {
				t.Fatal(err)
			}
			def, err := json.Marshal(val)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, valueDoc{key: key, typ: typeName(v), def: string(def), desc: desc})
		}
	}
	walk(doc.Content[0], "")
	return out
}

// description returns the text of a "# --" comment and its continuation lines.
func description(comment string) (string, bool) {
	lines := strings.Split(comment, "\n")
	for i, l := range lines {
		if text, ok := strings.CutPrefix(strings.TrimSpace(l), "# --"); ok {
			parts := []string{strings.TrimSpace(text)}
			for _, c := range lines[i+1:] {
				c = strings.TrimSpace(c)
				if !strings.HasPrefix(c, "# ") {
					break
				}
				parts = append(parts, strings.TrimSpace(strings.TrimPrefix(c, "#")))
			}
			return strings.Join(parts, " "), true
		}
	}
	return "", false
}

func typeName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "object"
	case yaml.SequenceNode:
		return "list"
	}
	switch n.Tag {
	case "!!int":
		return "int"
	case "!!float":
		return "float"
	case "!!bool":
		return "bool"
	}
	return "string"
}

func valuesTable(docs []valueDoc) string {
	var b strings.Builder
	b.WriteString(tableStart + "\n| Key | Type | Default | Description |\n| --- | --- | --- | --- |\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, d := range docs {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", d.key, d.typ, cell(d.def), cell(d.desc))
	}
	b.WriteString(tableEnd)
	return b.String()
}

// TestReadmeValues keeps the README's values table equal to values.yaml, so
// every value is documented with its default.
func TestReadmeValues(t *testing.T) {
	docs := documentedValues(t)
	if len(docs) < 50 {
		t.Fatalf("only %d documented values found in values.yaml", len(docs))
	}
	path := filepath.Join(chart, "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, tableStart), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s ... %s section", path, tableStart, tableEnd)
	}
	want := s[:i] + valuesTable(docs) + s[j+len(tableEnd):]
	if *update && want != s {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		s = want
	}
	if want != s {
		t.Errorf("the values table of %s is out of date: run go test ./deploy/helm -update", path)
	}
	for _, d := range docs {
		if !strings.Contains(s, "| `"+d.key+"` |") {
			t.Errorf("README lacks value %s", d.key)
		}
	}
}

// TestSchemaRejects checks values.schema.json turns typos and wrong values
// into install-time errors.
func TestSchemaRejects(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"typo-top-level", []string{"--set", "replicaCont=2"}, "replicaCont"},
		{"typo-nested", []string{"--set", "nats.ulrs[0]=nats://x:4222"}, "ulrs"},
		{"typo-deep", []string{"--set", "serviceMonitor.intreval=10s"}, "intreval"},
		{"wrong-type", []string{"--set-string", "replicaCount=two"}, "replicaCount"},
		{"bad-enum-log-level", []string{"--set", "log.level=verbose"}, "log/level"},
		{"bad-auth-method", []string{"--set", "nats.auth.method=jwt"}, "nats/auth/method"},
		{"bad-otlp-protocol", []string{"--set", "otlp.protocol=thrift"}, "otlp/protocol"},
		{"credentials-in-url", []string{"--set", "nats.urls[0]=nats://user:pw@nats:4222"}, "nats/urls/0"},
		{"bad-port", []string{"--set", "web.port=70000"}, "web/port"},
		{"bad-duration", []string{"--set", "jetstream.takeoverTimeout=soon"}, "jetstream/takeoverTimeout"},
		{"too-many-partitions", []string{"--set", "jetstream.partitions=10"}, "jetstream/partitions"},
		{"no-partitions", []string{"--set", "jetstream.partitions=0"}, "jetstream/partitions"},
		{"bad-bytes", []string{"--set", "jetstream.streamMaxBytes=lots"}, "jetstream/streamMaxBytes"},
		{"removed-ack-wait", []string{"--set", "jetstream.ackWait=30s"}, "ackWait"},
		{"removed-max-ack-pending", []string{"--set", "jetstream.maxAckPending=500"}, "maxAckPending"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, c.args...)
			if err == nil {
				t.Fatalf("%v rendered; the schema should reject it", c.args)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not name %q as a schema error:\n%v", c.want, err)
			}
		})
	}
}

// TestRenderRefuses checks the combinations of values the chart refuses
// with a clear message.
func TestRenderRefuses(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no-nats-urls", []string{"--set", "nats.urls=null"}, "nats.urls: set at least one NATS server URL"},
		{"password-without-user", []string{"--set", "nats.auth.method=password", "--set", "nats.auth.password=x"}, "needs nats.auth.user"},
		{"creds-without-value", []string{"--set", "nats.auth.method=creds"}, "Secret key nats.creds"},
		{"tls-without-ca", []string{"--set", "nats.tls.enabled=true"}, "Secret key nats-ca.crt"},
		{"client-cert-without-key", []string{"--set", "nats.tls.clientCert=true", "--set", "nats.tls.cert=x"}, "Secret key nats-tls.key"},
		{"web-tls-without-cert", []string{"--set", "web.tls.enabled=true"}, "Secret key web-tls.crt"},
		{"basic-auth-without-users", []string{"--set", "web.basicAuth.enabled=true"}, "web.basicAuth.users"},
		{"otlp-headers-from-missing-secret", []string{"--set", "otlp.headersFromSecret=true"}, "Secret key otlp-headers"},
		{"grace-not-above-shutdown", []string{"--set", "terminationGracePeriodSeconds=10"}, "terminationGracePeriodSeconds must be greater"},
		{"dedupe-store", []string{"--set", "config.dedupe.store=jetstream"}, "config.dedupe.store and config.dedupe.bucket are gone"},
		{"dedupe-bucket", []string{"--set", "config.dedupe.bucket=faceid-dedupe"}, "config.dedupe.store and config.dedupe.bucket are gone"},
		{"hpa-without-target", []string{"--set", "autoscaling.enabled=true", "--set", "autoscaling.targetCPUUtilizationPercentage=0"}, "autoscaling.enabled needs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := render(t, c.args...)
			if err == nil {
				t.Fatalf("%v rendered; the chart should refuse it", c.args)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error lacks %q:\n%v", c.want, err)
			}
		})
	}
}

// readmeBlocks returns the fenced code blocks of the chart's README with the
// given language.
func readmeBlocks(t *testing.T, lang string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chart, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	parts := strings.Split(string(data), "```")
	for i := 1; i < len(parts); i += 2 {
		if body, ok := strings.CutPrefix(parts[i], lang+"\n"); ok {
			blocks = append(blocks, body)
		}
	}
	return blocks
}

// installArgs turns a README "helm install NAME CHART ..." command into the
// args after the chart.
func installArgs(t *testing.T, cmd string) []string {
	t.Helper()
	fields := strings.Fields(strings.ReplaceAll(cmd, "\\\n", " "))
	for i, f := range fields {
		if f == "./deploy/helm/faceid-exporter" {
			var args []string
			for _, a := range fields[i+1:] {
				args = append(args, strings.Trim(a, "'"))
			}
			return args
		}
	}
	t.Fatalf("no chart path in %q", cmd)
	return nil
}

// TestReadmeExamples renders the README's install line for kube-prometheus
// and its NATS TLS and credentials values, and checks they do what the
// README says.
func TestReadmeExamples(t *testing.T) {
	var install string
	for _, b := range readmeBlocks(t, "sh") {
		if strings.Contains(b, "helm install") && strings.Contains(b, "serviceMonitor.enabled=true") {
			install = b
		}
	}
	if install == "" {
		t.Fatal("README has no helm install line with serviceMonitor.enabled=true")
	}
	t.Run("kube-prometheus-install", func(t *testing.T) {
		args := installArgs(t, install)
		for i := range args { // the README's files are the user's; the flags are what matter
			if args[i] == "--namespace" || args[i] == "-n" {
				args[i+1] = namespace
			}
		}
		args = slices.DeleteFunc(args, func(a string) bool { return a == "--create-namespace" })
		objs := mustRender(t, args...)
		sm := one(t, objs, "ServiceMonitor")
		if str(sm, "metadata", "labels", "release") != "kube-prometheus-stack" {
			t.Error("the ServiceMonitor lacks the release label kube-prometheus-stack selects on")
		}
		rules := ofKind(objs, "PrometheusRule")
		if len(rules) == 0 {
			t.Fatal("no PrometheusRule")
		}
		for _, r := range rules {
			if str(r, "metadata", "labels", "release") != "kube-prometheus-stack" {
				t.Errorf("PrometheusRule %s lacks the release label", str(r, "metadata", "name"))
			}
		}
		files, err := dashboardFiles()
		if err != nil {
			t.Fatal(err)
		}
		checkDashboards(t, objs, files, "monitoring", "grafana_dashboard", "1", "grafana_folder", "FaceID")
	})
	t.Run("nats-tls-and-creds", func(t *testing.T) {
		var values string
		for _, b := range readmeBlocks(t, "yaml") {
			if strings.Contains(b, "existingSecret:") && strings.Contains(b, "method: creds") {
				values = b
			}
		}
		if values == "" {
			t.Fatal("README has no values for a NATS with TLS and credentials")
		}
		file := filepath.Join(t.TempDir(), "values.yaml")
		writeFile(t, file, values)
		objs := mustRender(t, "-f", file)
		if n := len(ofKind(objs, "Secret")); n != 0 {
			t.Errorf("%d Secrets rendered with existingSecret", n)
		}
		args := strings.Join(containerArgs(t, one(t, objs, "Deployment")), " ")
		for _, want := range []string{"--nats.url=tls://", "--nats.creds-file=" + secretDir + "nats.creds",
			"--nats.tls.ca-file=" + secretDir + "nats-ca.crt", "--nats.tls.cert-file=" + secretDir + "nats-tls.crt",
			"--nats.tls.key-file=" + secretDir + "nats-tls.key"} {
			if !strings.Contains(args, want) {
				t.Errorf("args lack %s: %s", want, args)
			}
		}
		// The kubectl line creates exactly the keys the Deployment mounts.
		var kubectl string
		for _, b := range readmeBlocks(t, "sh") {
			if strings.Contains(b, "kubectl") && strings.Contains(b, "create secret generic") {
				kubectl = b
			}
		}
		vols, _ := dig(one(t, objs, "Deployment"), "spec", "template", "spec", "volumes").([]any)
		for _, v := range vols {
			items, _ := dig(v, "secret", "items").([]any)
			for _, it := range items {
				if !strings.Contains(kubectl, "--from-file="+str(it, "key")+"=") {
					t.Errorf("the README's kubectl create secret lacks key %s", str(it, "key"))
				}
			}
		}
	})
}
