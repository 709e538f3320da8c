package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/faceid-observability/faceid-exporter/internal/natstest"
)

// handEvents are verification results written by hand, each with what
// Tencent's table of SaaS return codes (document 1007/47912,
// /work/shared/seed/faceid-saas-return-codes.md in the session that wrote
// them) says about it. Nothing here is computed by the classifier.
var handEvents = []struct {
	msg  string
	note string // the row of the table, or the rule, that decides
}{
	{`{"id":"e01","ts":"2026-11-26T10:00:00+08:00","channel":"wechat_h5","code":"0"}`, "微信 系统返回码 0 成功: 是"},
	{`{"id":"e02","ts":"2026-11-26T10:00:01+08:00","channel":"wechat_h5","code":0}`, "the same code as an integer"},
	{`{"id":"e01","ts":"2026-11-26T10:00:00+08:00","channel":"wechat_h5","code":"0"}`, "e01 again: a redelivery, not counted"},
	{`{"id":"e03","ts":"2026-11-26T10:00:02+08:00","channel":"wechat_h5","code":"2006"}`, "证件图像比对 2006 姓名和身份证号不一致: 是"},
	{`{"id":"e04","ts":"2026-11-26T10:00:03+08:00","channel":"wechat_h5","code":"007"}`, "系统返回码 7 数据更新异常: 否 (\"007\" is 7)"},
	{`{"id":"e05","ts":"2026-11-26T10:00:04+08:00","channel":"wechat_miniprogram","code":"2016"}`, "2016 比对相似度未达到通过标准: 是"},
	{`{"id":"e06","ts":"2026-11-26T10:00:05+08:00","channel":"wechat_miniprogram","code":"1001"}`, "活体通用 1001 调用活体引擎接口出错: 否"},
	{`{"id":"e07","ts":"2026-11-26T10:00:06+08:00","channel":"eid","code":"2007"}`, "2007 库中无此用户照片: 否 (since 2021-07-19)"},
	{`{"id":"e08","ts":"2021-07-18T12:00:00+08:00","channel":"eid","code":"2007"}`, "2007 before 2021-07-19 (Beijing): 计费"},
	{`{"id":"e09","ts":"2021-07-19T00:00:01+08:00","channel":"eid","code":2015}`, "2015 from 2021-07-19 on: 不计费"},
	{`{"id":"e10","ts":"2026-11-26T10:00:07+08:00","channel":"app_sdk","code":"0"}`, "App SDK 0 认证通过: 是"},
	{`{"id":"e11","ts":"2026-11-26T10:00:08+08:00","channel":"app_sdk","code":"66660004"}`, "66660004 无法确认为同一人: 是"},
	{`{"id":"e12","ts":"2026-11-26T10:00:09+08:00","channel":"app_sdk","code":"-5008"}`, "-5008 声音未能识别: 否"},
	{`{"id":"e13","ts":"2026-11-26T10:00:10+08:00","channel":"standalone_h5","code":"999999"}`, "999999 网络不给力: 否"},
	{`{"id":"e14","ts":"2026-11-26T10:00:11+08:00","channel":"pc_h5","code":"66660010"}`, "66660010 姓名和身份证不一致: 是"},
	{`{"id":"e15","ts":"2026-11-26T10:00:12+08:00","channel":"willingness","code":"66666006"}`, "意愿核身 66666006 意愿表达结果不正确: 是"},
	{`{"id":"e16","ts":"2026-11-26T10:00:13+08:00","channel":"willingness","code":"66666004"}`, "意愿核身 66666004 音频文件下载失败: 否"},
	{`{"id":"e17","ts":"2026-11-26T10:00:00+08:00","channel":"nfc_server","code":"0","req_id":"r-1"}`, "NFC 服务端 0: the first success of reqId r-1 is billed"},
	{`{"id":"e18","ts":"2026-11-26T10:01:00+08:00","channel":"nfc_server","code":"0","req_id":"r-1"}`, "r-1 again within 5 minutes: 不重复计费"},
	{`{"id":"e19","ts":"2026-11-26T10:06:00+08:00","channel":"nfc_server","code":"0","req_id":"r-1"}`, "r-1 6 minutes after the billed one: billed again"},
	{`{"id":"e20","ts":"2026-11-26T10:00:14+08:00","channel":"wechat_h5","code":"424242"}`, "not in the table: unknown"},
	{`{"id":"e21","ts":"2026-11-26T10:00:15+08:00","channel":"app_sdk","code":"2006"}`, "a WeChat code is not in the SDK table: unknown"},
	{`{"id":"e22","ts":"2026-11-26T10:00:16+08:00","channel":"wechat_h5"}`, "no code: rejected"},
}

// handCounts is what faceid_verifications_total must hold for handEvents,
// by channel/code/billable, typed from the notes above.
var handCounts = map[string]float64{
	"wechat_h5/0/true":              2,
	"wechat_h5/2006/true":           1,
	"wechat_h5/7/false":             1,
	"wechat_h5/unknown/unknown":     1,
	"wechat_miniprogram/2016/true":  1,
	"wechat_miniprogram/1001/false": 1,
	"eid/2007/false":                1,
	"eid/2007/true":                 1,
	"eid/2015/false":                1,
	"app_sdk/0/true":                1,
	"app_sdk/66660004/true":         1,
	"app_sdk/-5008/false":           1,
	"app_sdk/unknown/unknown":       1,
	"standalone_h5/999999/false":    1,
	"pc_h5/66660010/true":           1,
	"willingness/66666006/true":     1,
	"willingness/66666004/false":    1,
	"nfc_server/0/true":             2,
	"nfc_server/0/false":            1,
}

// TestServeCountsHandWrittenEvents publishes handEvents to a NATS server,
// runs `exporter serve` on it and finds on /metrics the counts typed into
// handCounts: an end-to-end check of the whole path against counts nobody
// computed with the classifier.
func TestServeCountsHandWrittenEvents(t *testing.T) {
	s := natstest.RunServer(t, natstest.CoreOnly)
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- runContext(ctx, []string{"serve", "--nats.core", "--nats.url=" + s.ClientURL(), "--web.listen-address=" + addr, "--shutdown.timeout=2s"},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr})
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop within 10s of cancellation")
		}
	}()
	waitHTTP(t, "http://"+addr+"/-/ready", &stderr)

	nc := natstest.Connect(t, s.ClientURL())
	for _, ev := range handEvents {
		channel := ev.msg[strings.Index(ev.msg, `"channel":"`)+len(`"channel":"`):]
		channel = channel[:strings.IndexByte(channel, '"')]
		if err := nc.Publish("faceid.results."+channel, []byte(ev.msg)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	var got map[string]float64
	var rejected, duplicates float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, rejected, duplicates = scrapeHandCounts(t, "http://"+addr+"/metrics")
		if maps.Equal(got, handCounts) && rejected == 1 && duplicates == 1 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, k := range slices.Sorted(maps.Keys(handCounts)) {
		if got[k] != handCounts[k] {
			t.Errorf("%s: exporter %v, want %v", k, got[k], handCounts[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := handCounts[k]; !ok {
			t.Errorf("%s: exporter %v, want none", k, got[k])
		}
	}
	if rejected != 1 || duplicates != 1 {
		t.Errorf("rejected %v, duplicates %v; want 1 and 1", rejected, duplicates)
	}
}

// scrapeHandCounts returns the non-zero faceid_verifications_total series
// summed by channel/code/billable, and the rejected and duplicate totals.
func scrapeHandCounts(t *testing.T, url string) (map[string]float64, float64, float64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	if mf, ok := mfs["faceid_verifications_total"]; ok {
		for _, m := range mf.Metric {
			l := map[string]string{}
			for _, p := range m.Label {
				l[p.GetName()] = p.GetValue()
			}
			if v := m.GetCounter().GetValue(); v != 0 {
				counts[fmt.Sprintf("%s/%s/%s", l["channel"], l["code"], l["billable"])] += v
			}
		}
	}
	total := func(name string) float64 {
		var sum float64
		if mf, ok := mfs[name]; ok {
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
		}
		return sum
	}
	return counts, total("faceid_exporter_events_rejected_total"), total("faceid_exporter_duplicates_total")
}
