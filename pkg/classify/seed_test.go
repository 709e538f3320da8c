package classify

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// readTSV reads a tab-separated fixture, skipping comments, and returns its rows
// keyed by the header's column names.
func readTSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var header []string
	var rows []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if header == nil {
			header = cols
			continue
		}
		if len(cols) != len(header) {
			t.Fatalf("%s: %q has %d columns, want %d", path, line, len(cols), len(header))
		}
		row := map[string]string{}
		for i, h := range header {
			row[h] = cols[i]
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func mustDefault(t testing.TB) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCatalogMatchesSeed holds the embedded catalog against a transcription of
// Tencent's table made by hand, independently of catalog.yaml: every row of
// every SaaS table, its meaning, category and billing.
func TestCatalogMatchesSeed(t *testing.T) {
	cat := mustDefault(t)
	rows := readTSV(t, "testdata/seed_transcription.tsv")
	if len(rows) != 129 {
		t.Fatalf("transcription has %d rows, want the seed's 129", len(rows))
	}
	inSeed := map[string]bool{}
	for _, row := range rows {
		key := row["family"] + "/" + row["code"]
		inSeed[key] = true
		t.Run(key, func(t *testing.T) {
			k, ok := cat.Lookup(row["family"], row["code"])
			if !ok {
				t.Fatalf("code %s missing from the catalog", key)
			}
			if k.Meaning != row["meaning"] {
				t.Errorf("meaning = %q, seed says %q", k.Meaning, row["meaning"])
			}
			if k.Category != row["category"] {
				t.Errorf("category = %q, seed section is %q", k.Category, row["category"])
			}
			switch row["billable"] {
			case "yes":
				if k.Billable != BillableTrue || k.Billing != BillingSeed {
					t.Errorf("billable = %s (%s), seed says billed", k.Billable, k.Billing)
				}
			case "no":
				if k.Billable != BillableFalse || k.Billing != BillingSeed {
					t.Errorf("billable = %s (%s), seed says not billed", k.Billable, k.Billing)
				}
			case "none":
				if k.Billing != BillingNoColumn {
					t.Errorf("billing source = %q, the seed's table has no billing column", k.Billing)
				}
				if k.Note == "" {
					t.Errorf("a code whose billing the seed does not state must say why in its note")
				}
			default:
				t.Fatalf("bad fixture billable %q", row["billable"])
			}
		})
	}
	for _, k := range cat.Codes {
		if !inSeed[k.Family+"/"+k.Code] && k.Billing != BillingNotInSeed {
			t.Errorf("catalog code %s/%s is not in the seed and not marked not_in_seed", k.Family, k.Code)
		}
		if k.Billing == BillingNotInSeed && k.Billable != BillableUnknown {
			t.Errorf("code %s/%s is not in the seed but claims billable=%s", k.Family, k.Code, k.Billable)
		}
	}
}

func TestCatalogTagsMatchSeed(t *testing.T) {
	cat := mustDefault(t)
	rows := readTSV(t, "testdata/seed_tags.tsv")
	var nDevice, nIdentity int
	for _, row := range rows {
		t.Run(row["kind"]+"/"+row["tag"], func(t *testing.T) {
			switch row["kind"] {
			case "device":
				nDevice++
				d, ok := cat.DeviceTag(row["tag"])
				if !ok {
					t.Fatalf("device tag %s missing", row["tag"])
				}
				if d.Meaning != row["meaning_or_type"] {
					t.Errorf("meaning = %q, seed says %q", d.Meaning, row["meaning_or_type"])
				}
				if got := strings.Join(d.Platforms, ","); got != row["platforms"] {
					t.Errorf("platforms = %s, seed says %s", got, row["platforms"])
				}
			case "identity":
				nIdentity++
				d, ok := cat.IdentityTag(row["tag"])
				if !ok {
					t.Fatalf("identity tag %s missing", row["tag"])
				}
				if d.Type != row["meaning_or_type"] {
					t.Errorf("type = %q, seed says %q", d.Type, row["meaning_or_type"])
				}
			default:
				t.Fatalf("bad fixture kind %q", row["kind"])
			}
		})
	}
	if nDevice != len(cat.DeviceTags) || nIdentity != len(cat.IdentityTags) {
		t.Errorf("catalog has %d device and %d identity tags, seed %d and %d", len(cat.DeviceTags), len(cat.IdentityTags), nDevice, nIdentity)
	}
}

// TestDeviceTagNames pins the names the issue gives each device tag.
func TestDeviceTagNames(t *testing.T) {
	cat := mustDefault(t)
	want := map[string]string{
		"202": "root_jailbreak", "5001": "root_jailbreak", "203": "injection", "5004": "injection", "205": "hook",
		"206": "virtual_environment", "5007": "camera_hijack", "1005": "camera_hijack", "8000": "tampering",
		"5010": "modified_device", "5012": "emulator", "3": "emulator", "5016": "automation", "212": "risky_rom",
		"213": "system_hijack", "1001": "parameter_tampering",
	}
	for tag, name := range want {
		d, ok := cat.DeviceTag(tag)
		if !ok || d.Name != name {
			t.Errorf("device tag %s: got %+v, want name %s", tag, d, name)
		}
	}
}

func TestFamiliesAndChannels(t *testing.T) {
	cat := mustDefault(t)
	want := map[string]string{
		"wechat_h5": "wechat", "wechat_miniprogram": "wechat", "eid": "wechat",
		"app_sdk": "sdk", "standalone_h5": "sdk", "pc_h5": "sdk",
		"willingness": "willingness", "nfc_server": "nfc_server", "nfc_terminal": "nfc_terminal",
	}
	if len(cat.Channels) != len(want) {
		t.Fatalf("catalog has %d channels, want %d", len(cat.Channels), len(want))
	}
	for ch, fam := range want {
		c, ok := cat.Channel(ch)
		if !ok || c.Family.Name != fam {
			t.Errorf("channel %s: got %+v, want family %s", ch, c, fam)
		}
	}
}
