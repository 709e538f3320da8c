package api

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/faceid-observability/faceid-exporter/pkg/forecast"
	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// ForecastSource is what GET /api/v1/forecast forecasts from: the group's
// committed ledger and the forecast's options (time, calendar, pricing).
type ForecastSource struct {
	Read    LedgerReader            // nil: no ledger (core mode), 501
	Options func() forecast.Options // Days is set from the request
}

// forecastParams are the query parameters GET /api/v1/forecast takes.
var forecastParams = []string{"days", "format"}

// NewForecastHandler returns the handler of GET
// /api/v1/forecast?days=N&format=json|csv (json by default, days 35 by
// default): the forecast `exporter forecast` prints, from the ledger's last
// forecast.HistoryDays days, computed at each request.
func NewForecastHandler(src ForecastSource, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if src.Read == nil || src.Options == nil {
			apiError(w, http.StatusNotImplemented, "the forecast reads the ledger, which needs --jetstream.stream")
			return
		}
		q := r.URL.Query()
		if !onlyParams(w, q, forecastParams, "days and format") {
			return
		}
		opts := src.Options()
		opts.Days = forecast.DefaultDays
		if s := q.Get("days"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > forecast.MaxDays {
				apiError(w, http.StatusBadRequest, fmt.Sprintf("days %q: want an integer from 1 to %d", s, forecast.MaxDays))
				return
			}
			opts.Days = n
		}
		format := q.Get("format")
		switch format {
		case "":
			format = "json"
		case "json", "csv":
		default:
			apiError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want json or csv", format))
			return
		}
		today := ledger.DayOf(opts.Now)
		rows, err := src.Read(r.Context(), today-forecast.HistoryDays+1, today)
		if errors.Is(err, ledger.ErrNoBooks) {
			apiError(w, http.StatusServiceUnavailable, "no books committed yet: "+err.Error())
			return
		}
		if err != nil {
			logger.Error("ledger read failed", "err", err)
			apiError(w, http.StatusInternalServerError, "read the ledger: "+err.Error())
			return
		}
		res, err := forecast.FromRows(rows, opts)
		if errors.Is(err, forecast.ErrNoHistory) {
			apiError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		if err != nil {
			logger.Error("forecast failed", "err", err)
			apiError(w, http.StatusInternalServerError, "forecast: "+err.Error())
			return
		}
		var body bytes.Buffer
		if format == "csv" {
			err = forecast.WriteCSV(&body, res)
		} else {
			err = forecast.WriteJSON(&body, res)
		}
		if err != nil {
			logger.Error("forecast write failed", "format", format, "err", err)
			apiError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="forecast-%s.csv"`, res.Today))
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = w.Write(body.Bytes())
	})
}
