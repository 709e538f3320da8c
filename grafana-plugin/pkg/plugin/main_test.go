package plugin

import (
	"testing"

	"github.com/faceid-observability/faceid-exporter/grafana-plugin/pkg/internal/exportertest"
)

func TestMain(m *testing.M) { exportertest.Main(m) }
