// Command gpx_faceid is the backend of the FaceID verification datasource
// plugin; Grafana starts it and talks to it over gRPC.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/plugin"
)

func main() {
	if err := datasource.Manage(plugin.ID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("Plugin stopped", "error", err)
		os.Exit(1)
	}
}
