package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// LedgerReader returns the committed rows of Beijing days from..to (both
// included) of the whole group.
type LedgerReader func(ctx context.Context, from, to ledger.Day) ([]ledger.Row, error)

// LedgerSource is the books GET /api/v1/ledger serves.
type LedgerSource struct {
	Stream, Group string // named in the JSON document
	// Read is nil when there are no books (core NATS mode): the endpoint
	// then answers 501.
	Read LedgerReader
}

// MaxLedgerDays is the longest range of days one request may ask for (the
// default retention; a longer --ledger.retention-days is read in several
// requests).
const MaxLedgerDays = ledger.DefaultRetentionDays

// ledgerParams are the query parameters GET /api/v1/ledger takes.
var ledgerParams = []string{"from", "to", "format"}

// NewLedgerHandler returns the handler of GET
// /api/v1/ledger?from=YYYY-MM-DD&to=YYYY-MM-DD&format=json|csv (json by
// default): the rows of src in the format `exporter ledger` prints.
func NewLedgerHandler(src LedgerSource, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if src.Read == nil {
			apiError(w, http.StatusNotImplemented, "the ledger needs --jetstream.stream")
			return
		}
		q := r.URL.Query()
		if !onlyParams(w, q, ledgerParams, "from, to and format") {
			return
		}
		var days [2]ledger.Day
		for i, name := range []string{"from", "to"} {
			s := q.Get(name)
			if s == "" {
				apiError(w, http.StatusBadRequest, name+" is required: a Beijing day, YYYY-MM-DD")
				return
			}
			d, err := ledger.ParseDay(s)
			if err != nil {
				apiError(w, http.StatusBadRequest, name+": "+err.Error())
				return
			}
			days[i] = d
		}
		from, to := days[0], days[1]
		if to < from {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("to %s is before from %s", to, from))
			return
		}
		if n := int(to-from) + 1; n > MaxLedgerDays {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("from %s to %s is %d days: ask for at most %d at a time", from, to, n, MaxLedgerDays))
			return
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
		rows, err := src.Read(r.Context(), from, to)
		if errors.Is(err, ledger.ErrNoBooks) { // before the group's first commit
			apiError(w, http.StatusServiceUnavailable, "no books committed yet: "+err.Error())
			return
		}
		if err != nil {
			logger.Error("ledger read failed", "from", from.String(), "to", to.String(), "err", err)
			apiError(w, http.StatusInternalServerError, "read the ledger: "+err.Error())
			return
		}
		ledger.SortRows(rows)
		var body bytes.Buffer
		if format == "csv" {
			err = ledger.WriteCSV(&body, rows)
		} else {
			err = ledger.WriteJSON(&body, ledger.Meta{Stream: src.Stream, Group: src.Group, From: from, To: to}, rows)
		}
		if err != nil {
			logger.Error("ledger write failed", "format", format, "err", err)
			apiError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ledger-%s-%s.csv"`, from, to))
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = w.Write(body.Bytes())
	})
}

// onlyParams answers 400 and reports false when q holds a parameter not in
// allowed (want names them for the error) or one given more than once.
func onlyParams(w http.ResponseWriter, q url.Values, allowed []string, want string) bool {
	for name, values := range q {
		if !slices.Contains(allowed, name) {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q: want %s", name, want))
			return false
		}
		if len(values) > 1 {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("parameter %q is given %d times", name, len(values)))
			return false
		}
	}
	return true
}
