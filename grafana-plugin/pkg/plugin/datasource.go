// Package plugin is the FaceID verification datasource for Grafana: it turns
// the FaceID exporter's HTTP API into data frames, health checks, resources
// for the query editor and a Grafana Live stream of classified events.
package plugin

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/exporterapi"
)

// ID is the plugin id; plugin.json, the provisioning files and the
// dashboards use the same value.
const ID = "faceid-verification-datasource"

// catalogTTL is how long a fetched catalog is reused for dropdowns, filters
// and stream path checks.
const catalogTTL = time.Minute

// errDisposed ends streams of an instance whose settings were replaced.
var errDisposed = errors.New("datasource settings changed; the stream restarts with the new settings")

// Datasource is one configured instance of the plugin.
type Datasource struct {
	uid      string
	settings Settings
	// configErr is set when the settings are unusable; every call reports it.
	configErr error
	client    *exporterapi.Client
	logger    log.Logger
	now       func() time.Time

	// ctx is cancelled by Dispose, ending the instance's streams.
	ctx    context.Context
	cancel context.CancelFunc

	// openStreams counts connections to the exporter's event stream.
	openStreams atomic.Int64

	mu          sync.Mutex
	catalog     *exporterapi.Catalog
	catalogTime time.Time
}

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ backend.CallResourceHandler   = (*Datasource)(nil)
	_ backend.StreamHandler         = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// NewDatasource is the instance factory for datasource.Manage. Invalid
// settings do not fail the factory: the instance reports them from
// CheckHealth and from every query, where the user can read them.
func NewDatasource(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Datasource{
		uid:    s.UID,
		logger: log.DefaultLogger.With("datasource_uid", s.UID),
		now:    time.Now,
		ctx:    ctx,
		cancel: cancel,
	}
	var err error
	d.settings, err = LoadSettings(s)
	if err == nil {
		d.client, err = d.settings.NewClient()
	}
	if err != nil {
		d.configErr = &settingsError{err: err}
	}
	return d, nil
}

// settingsError is a datasource configuration the user has to fix.
type settingsError struct{ err error }

func (e *settingsError) Error() string { return e.err.Error() }
func (e *settingsError) Unwrap() error { return e.err }

// Dispose ends the instance's streams and closes its idle connections; the
// SDK calls it when the datasource settings change.
func (d *Datasource) Dispose() {
	d.cancel()
	if d.client != nil {
		d.client.Close()
	}
}

// ready returns the client, or the settings error.
func (d *Datasource) ready() (*exporterapi.Client, error) {
	if d.configErr != nil {
		return nil, d.configErr
	}
	return d.client, nil
}

// getCatalog returns the exporter's catalog, cached for catalogTTL.
func (d *Datasource) getCatalog(ctx context.Context) (*exporterapi.Catalog, error) {
	c, err := d.ready()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.catalog != nil && d.now().Sub(d.catalogTime) < catalogTTL {
		cat := d.catalog
		d.mu.Unlock()
		return cat, nil
	}
	d.mu.Unlock()
	cat, err := c.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.catalog, d.catalogTime = cat, d.now()
	d.mu.Unlock()
	return cat, nil
}
