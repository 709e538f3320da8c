// Package tencentbill reads Tencent Cloud FaceID's per-attempt charge details
// (GetWeChatBillDetails, API version 2018-03-01: WeChat H5, mini program and
// E证通), live from the API or from saved responses, without the masked
// personal fields Idcard and Name.
package tencentbill

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/faceid-observability/faceid-exporter/pkg/ledger"
)

// The API this package calls.
const (
	Service         = "faceid"
	Version         = "2018-03-01"
	Action          = "GetWeChatBillDetails"
	DefaultEndpoint = "faceid.tencentcloudapi.com"
	// RateLimit is Tencent's documented limit for the action, requests per second.
	RateLimit = 20
	// MaxDaysBack is how far back Tencent serves charge details.
	MaxDaysBack = 365
	// CompleteAfter is how long after a Beijing day ends Tencent's details of
	// that day are complete (06:00 Beijing the next day).
	CompleteAfter = 6 * time.Hour
)

// ChargeTypes are the documented values of ChargeDetail.ChargeType.
var chargeTypes = []string{"比对", "核身", "混合部署"}

// ChargeTypes returns the documented values of ChargeType.
func ChargeTypes() []string { return append([]string(nil), chargeTypes...) }

// Request is GetWeChatBillDetails' input.
type Request struct {
	Date   string // YYYY-MM-DD, Beijing
	Cursor uint64 // 0 for the first page, then the previous page's NextCursor
	RuleID string // empty: every rule
}

// params returns the request as the API's JSON parameters.
func (r Request) params() map[string]any {
	p := map[string]any{"Date": r.Date, "Cursor": r.Cursor}
	if r.RuleID != "" {
		p["RuleId"] = r.RuleID
	}
	return p
}

// Page is one GetWeChatBillDetails response. The masked Idcard and Name of
// each charge detail are dropped when it is decoded and never held.
type Page struct {
	HasNextPage bool
	NextCursor  uint64
	RequestID   string
	Bills       []Bill // WeChatBillDetails
}

// Bill is the charge details of one BizToken.
type Bill struct {
	BizToken    string
	ChargeCount uint64
	RuleID      string
	Details     []ChargeDetail // ChargeDetails
}

// ChargeDetail is one liveness 1:1 attempt as Tencent bills it.
type ChargeDetail struct {
	ReqTimeMs    int64 // the attempt's time, Unix milliseconds
	Seq          string
	Sim          string
	IsNeedCharge bool
	ChargeType   string
	ErrorCode    string // canonical integer text
	ErrorMessage string
}

// ReqTime returns the attempt's time in Beijing time.
func (d ChargeDetail) ReqTime() time.Time { return time.UnixMilli(d.ReqTimeMs).In(ledger.Beijing) }

// Day returns the Beijing day of the attempt.
func (d ChargeDetail) Day() ledger.Day {
	return ledger.DayOfUnixNano(d.ReqTimeMs * int64(time.Millisecond))
}

// Source gives Tencent's charge details by requested date.
type Source interface {
	// Day returns every page Tencent returns for the requested date; ok is
	// false when there is no bill data for it.
	Day(ctx context.Context, day ledger.Day) (pages []Page, ok bool, err error)
}

// Complete reports whether Tencent's details of day are complete at now.
func Complete(day ledger.Day, now time.Time) bool {
	return !now.Before(CompletesAt(day))
}

// CompletesAt returns when Tencent's details of day are complete.
func CompletesAt(day ledger.Day) time.Time { return (day + 1).Start().Add(CompleteAfter) }

// wire types: the response as saved, with the API's field names and without
// Idcard and Name.
type wireBody struct {
	Response wireResponse `json:"Response"`
}

type wireResponse struct {
	HasNextPage       bool       `json:"HasNextPage"`
	NextCursor        uint64     `json:"NextCursor"`
	RequestID         string     `json:"RequestId"`
	WeChatBillDetails []wireBill `json:"WeChatBillDetails"`
}

type wireBill struct {
	BizToken      string       `json:"BizToken"`
	ChargeCount   uint64       `json:"ChargeCount"`
	RuleID        string       `json:"RuleId"`
	ChargeDetails []wireDetail `json:"ChargeDetails"`
}

type wireDetail struct {
	ReqTime      string `json:"ReqTime"`
	Seq          string `json:"Seq"`
	Sim          string `json:"Sim"`
	IsNeedCharge bool   `json:"IsNeedCharge"`
	ChargeType   string `json:"ChargeType"`
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// Encode returns the page as the API's response body, {"Response": {...}},
// without Idcard and Name: the form the offline reader takes.
func (p Page) Encode() ([]byte, error) {
	w := wireBody{Response: wireResponse{HasNextPage: p.HasNextPage, NextCursor: p.NextCursor, RequestID: p.RequestID,
		WeChatBillDetails: make([]wireBill, 0, len(p.Bills))}}
	for _, b := range p.Bills {
		wb := wireBill{BizToken: b.BizToken, ChargeCount: b.ChargeCount, RuleID: b.RuleID, ChargeDetails: make([]wireDetail, 0, len(b.Details))}
		for _, d := range b.Details {
			wb.ChargeDetails = append(wb.ChargeDetails, wireDetail{
				ReqTime: strconv.FormatInt(d.ReqTimeMs, 10), Seq: d.Seq, Sim: d.Sim, IsNeedCharge: d.IsNeedCharge,
				ChargeType: d.ChargeType, ErrorCode: d.ErrorCode, ErrorMessage: d.ErrorMessage,
			})
		}
		w.Response.WeChatBillDetails = append(w.Response.WeChatBillDetails, wb)
	}
	out, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode page: %w", err)
	}
	return append(out, '\n'), nil
}
