package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/faceid-observability/faceid-exporter/pkg/classify"
	"github.com/faceid-observability/faceid-exporter/pkg/reconcile"
	"github.com/faceid-observability/faceid-exporter/pkg/tencentbill"
)

// tencentFlags choose Tencent's side of a reconciliation: saved responses,
// or the live API with credentials from files.
type tencentFlags struct {
	billDir, secretIDFile, secretKeyFile string
	region, endpoint, caFile, saveDir    string
}

func addTencentFlags(cmd *kingpin.CmdClause) *tencentFlags {
	f := &tencentFlags{}
	cmd.Flag("tencent.bill-dir", "Directory of saved GetWeChatBillDetails responses, one file per page named YYYY-MM-DD.N.json (the requested date, the page from 1), each the body as the API returns it; a date without files has no bill data. Instead of the live API.").PlaceHolder("DIR").StringVar(&f.billDir)
	cmd.Flag("tencent.secret-id-file", "File holding the Tencent Cloud SecretId for the live API (never on the command line).").PlaceHolder("FILE").StringVar(&f.secretIDFile)
	cmd.Flag("tencent.secret-key-file", "File holding the Tencent Cloud SecretKey for the live API.").PlaceHolder("FILE").StringVar(&f.secretKeyFile)
	cmd.Flag("tencent.region", "Region sent with the live API's requests (X-TC-Region); GetWeChatBillDetails needs none.").Default("").StringVar(&f.region)
	cmd.Flag("tencent.endpoint", "Host[:port] of the live API.").Default(tencentbill.DefaultEndpoint).StringVar(&f.endpoint)
	cmd.Flag("tencent.ca-file", "CA certificates (PEM) trusted for the live API's TLS certificate besides the system's (a TLS-inspecting proxy).").PlaceHolder("FILE").StringVar(&f.caFile)
	cmd.Flag("tencent.save-dir", "Keep every date fetched from the live API here in the --tencent.bill-dir layout (without the masked Idcard and Name).").PlaceHolder("DIR").StringVar(&f.saveDir)
	return f
}

// source returns the bill source the flags name.
func (f *tencentFlags) source(logger *slog.Logger) (tencentbill.Source, error) {
	live := f.secretIDFile != "" || f.secretKeyFile != ""
	switch {
	case f.billDir != "" && live:
		return nil, errors.New("give --tencent.bill-dir or the live API's --tencent.secret-id-file and --tencent.secret-key-file, not both")
	case f.billDir != "":
		if f.saveDir != "" {
			return nil, errors.New("--tencent.save-dir keeps what the live API returns: it needs --tencent.secret-id-file and --tencent.secret-key-file, not --tencent.bill-dir")
		}
		return tencentbill.OpenDir(f.billDir)
	case !live:
		return nil, errors.New("no bill source: give --tencent.bill-dir, or --tencent.secret-id-file and --tencent.secret-key-file for the live API")
	case f.secretIDFile == "" || f.secretKeyFile == "":
		return nil, errors.New("the live API needs both --tencent.secret-id-file and --tencent.secret-key-file")
	}
	id, err := tencentbill.ReadSecretFile(f.secretIDFile, "secret id")
	if err != nil {
		return nil, err
	}
	key, err := tencentbill.ReadSecretFile(f.secretKeyFile, "secret key")
	if err != nil {
		return nil, err
	}
	transport, err := tencentTransport(f.caFile)
	if err != nil {
		return nil, err
	}
	return tencentbill.NewClient(tencentbill.Config{SecretID: id, SecretKey: key, Region: f.region, Endpoint: f.endpoint,
		Transport: transport, SaveDir: f.saveDir, Logger: logger})
}

// tencentTransport trusts caFile's certificates besides the system's; nil
// without one.
func tencentTransport(caFile string) (http.RoundTripper, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read --tencent.ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tencent.ca-file %s holds no PEM certificate", caFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// addToleranceFlag registers --reconcile.tolerance.
func addToleranceFlag(cmd *kingpin.CmdClause) *float64 {
	return cmd.Flag("reconcile.tolerance", "Largest difference between our billable count and Tencent's charged count, as a fraction of Tencent's (0.01: 1%), that still matches; 0: exact.").Default("0").Float64()
}

// reconcileServeFlags are serve's periodic reconciliation: the last complete
// Beijing day, every --reconcile.interval, exported as faceid_reconcile_*.
type reconcileServeFlags struct {
	interval  time.Duration
	tolerance *float64
	tencent   *tencentFlags
}

// addReconcileServeFlags registers --reconcile.interval, --reconcile.tolerance
// and the --tencent.* flags on serve.
func addReconcileServeFlags(cmd *kingpin.CmdClause) *reconcileServeFlags {
	f := &reconcileServeFlags{}
	cmd.Flag("reconcile.interval", "Reconcile the last Beijing day complete at Tencent with its bill this often and export faceid_reconcile_* (docs/reconcile.md); 0 turns it off. Needs --tencent.bill-dir or the --tencent.secret-*-file flags.").Default("0").DurationVar(&f.interval)
	f.tolerance = addToleranceFlag(cmd)
	f.tencent = addTencentFlags(cmd)
	return f
}

// runner returns the Runner the flags configure, its metrics registered on
// reg; nil when --reconcile.interval is 0. books reads the group's committed
// ledger; ruleIDs is the config's business rule_id allowlist (nil: none).
func (f *reconcileServeFlags) runner(cat *classify.Catalog, books reconcile.Ledger, ruleIDs []string, reg prometheus.Registerer, now func() time.Time, logger *slog.Logger) (*reconcile.Runner, error) {
	if f.interval == 0 {
		if f.tencent.billDir != "" || f.tencent.secretIDFile != "" || f.tencent.secretKeyFile != "" {
			return nil, errors.New("the --tencent.* flags need --reconcile.interval")
		}
		return nil, nil
	}
	if f.interval < 0 {
		return nil, fmt.Errorf("--reconcile.interval %s is negative", f.interval)
	}
	src, err := f.tencent.source(logger)
	if err != nil {
		return nil, err
	}
	return reconcile.NewRunner(reconcile.RunnerConfig{Interval: f.interval, Ledger: books, Bills: src, Catalog: cat,
		Tolerance: *f.tolerance, RuleIDs: ruleIDs, Now: now, Logger: logger}, reg)
}
