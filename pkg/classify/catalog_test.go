package classify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/faceid-observability/faceid-exporter/internal/fixtures"
)

func TestOverridesValid(t *testing.T) {
	base := mustDefault(t)
	data, err := os.ReadFile("testdata/overrides/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := base.WithOverrides("valid.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := cat.Lookup("sdk", "66660099"); !ok || k.Category != "paas" || k.Billing != BillingOverride || k.Billable != BillableFalse {
		t.Errorf("added PaaS code: %+v", k)
	}
	if k, ok := cat.Lookup("wechat", "2019"); !ok || k.Billable != BillableTrue {
		t.Errorf("added code: %+v", k)
	}
	if k, _ := cat.Lookup("wechat", "4"); k.Meaning != "系统错误（已重写）" || k.Billing != BillingOverride {
		t.Errorf("overridden code: %+v", k)
	}
	if d, ok := cat.DeviceTag("9001"); !ok || d.Name != "screen_share" {
		t.Errorf("added tag: %+v", d)
	}
	if d, ok := cat.IdentityTag("21"); !ok || d.Type != IdentityAttack {
		t.Errorf("added identity tag: %+v", d)
	}
	if got, want := cat.PersonalFieldNames(), append(base.PersonalFieldNames(), "customer_name"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("personal fields:\n got %v\nwant %v", got, want)
	}
	if len(cat.Codes) != len(base.Codes)+2 {
		t.Errorf("codes: %d, want %d", len(cat.Codes), len(base.Codes)+2)
	}
	// The dated billing change survives overrides of other codes, and the base is untouched.
	if k, _ := cat.Lookup("wechat", "2007"); k.BillableAt(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)) != BillableTrue {
		t.Error("billing change lost")
	}
	if k, _ := base.Lookup("wechat", "4"); k.Meaning != "系统错误" {
		t.Error("overrides changed the base catalog")
	}
	// A classifier built on it knows the new code.
	c := New(cat, Options{})
	r := classifyOne(t, c, `{"channel":"pc_h5","code":66660099}`)
	if !r.Known() || r.Code.Category != "paas" {
		t.Error("classifier does not see the override")
	}
}

// TestOverridesInvalid: every invalid override has its own fixture and its exact error.
func TestOverridesInvalid(t *testing.T) {
	want := map[string]string{
		"unknown_top_field":       `unknown_top_field.yaml:2: field "codez": unknown field in catalog (known: version, codes, device_tags, identity_tags, personal_fields)`,
		"unknown_code_field":      `unknown_code_field.yaml:8: field "billabel": unknown field in code (known: family, code, category, billable, billing, meaning, action, note)`,
		"missing_version":         `missing_version.yaml:1: field "version": required in catalog`,
		"bad_version":             `bad_version.yaml:1: field "version": unsupported version 2 (this exporter reads version 1)`,
		"billable_not_bool":       `billable_not_bool.yaml:3: field "billable": must be true, false or unknown, got "maybe"`,
		"bad_family":              `bad_family.yaml:3: field "family": "alipay" is not one of wechat, sdk, willingness, nfc_server, nfc_terminal`,
		"bad_category":            `bad_category.yaml:3: field "category": "billing" is not one of system, wechat, liveness_common, liveness_digital, liveness_action, liveness_silent, compare, sdk, willingness, nfc_server, nfc_terminal, paas, custom`,
		"code_not_integer":        `code_not_integer.yaml:3: field "code": "E1" is not a valid return code (an integer, no leading zeros)`,
		"code_leading_zero":       `code_leading_zero.yaml:3: field "code": "007" is not a valid return code (an integer, no leading zeros)`,
		"missing_billable":        `missing_billable.yaml:3: field "billable": required in code`,
		"duplicate_code":          `duplicate_code.yaml:4: field "code": code "1" of family "sdk" is defined twice`,
		"duplicate_key":           `duplicate_key.yaml:3: field "code": duplicate field in code`,
		"codes_not_list":          `codes_not_list.yaml:2: field "codes": must be a list, got a mapping`,
		"families_not_allowed":    `families_not_allowed.yaml:2: field "families": unknown field in catalog (known: version, codes, device_tags, identity_tags, personal_fields)`,
		"tag_bad_platform":        `tag_bad_platform.yaml:3: field "platforms": "windows" is not one of android, ios`,
		"tag_bad_name":            `tag_bad_name.yaml:3: field "name": "Screen-Share" is not a lower-case identifier`,
		"identity_bad_type":       `identity_bad_type.yaml:3: field "type": "fraud" is not one of attack, business`,
		"not_in_seed_billed":      `not_in_seed_billed.yaml:3: field "billable": a code with billing not_in_seed must have billable unknown`,
		"empty":                   `empty.yaml:1: file is empty`,
		"not_yaml":                `not_yaml.yaml: invalid YAML: yaml: line 2: did not find expected node content`,
		"two_documents":           `two_documents.yaml:2: a catalog file holds one YAML document`,
		"personal_field_bad_name": `personal_field_bad_name.yaml:4: field "fields": "Customer Name" is not a field name (a letter, then letters, digits, '_' or '-'; at most 64)`,
		"personal_field_twice":    `personal_field_twice.yaml:4: field "fields": "Customer-Name" is listed twice (names are compared without case, '_' and '-')`,
		"personal_field_bad_kind": `personal_field_bad_kind.yaml:3: field "kind": "secret" is not one of id_number, name, contact, address, birth, document_text, biometric_media, encrypted_identity, speech, other`,
		"personal_field_empty":    `personal_field_empty.yaml:4: field "fields": the contact group lists no fields`,
	}
	base := mustDefault(t)
	fixtures.Each(t, "testdata/overrides/invalid", ".yaml", want, func(t *testing.T, path, exp string) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = base.WithOverrides(filepath.Base(path), data)
		if err == nil {
			t.Fatal("accepted")
		}
		if err.Error() != exp {
			t.Fatalf("error:\n got: %s\nwant: %s", err, exp)
		}
	})
}

func TestEmbeddedCatalogIsStrict(t *testing.T) {
	// The embedded catalog is parsed by the same strict parser: a typo in it fails.
	data := strings.Replace(string(EmbeddedCatalogYAML()), "billing_changes:", "billing_change:", 1)
	_, err := Load("catalog.yaml", []byte(data))
	if err == nil || !strings.Contains(err.Error(), `field "billing_change": unknown field in catalog`) {
		t.Fatalf("err = %v", err)
	}
	bad := strings.Replace(string(EmbeddedCatalogYAML()), `codes: ["2007",`, `codes: ["2099",`, 1)
	if _, err := Load("catalog.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), `code "2099" is not a code of family "wechat"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestOverridesNode: an override read from a node of a larger document goes
// through the same parser as a file, and its errors name the outer file's lines.
func TestOverridesNode(t *testing.T) {
	base := mustDefault(t)
	data, err := os.ReadFile("testdata/overrides/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := base.WithOverrides("valid.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	fromNode, err := base.WithOverridesNode("valid.yaml", root.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(fromNode.Codes) != len(fromFile.Codes) || len(fromNode.DeviceTags) != len(fromFile.DeviceTags) || len(fromNode.IdentityTags) != len(fromFile.IdentityTags) {
		t.Errorf("node: %d codes, %d device tags, %d identity tags; file: %d, %d, %d",
			len(fromNode.Codes), len(fromNode.DeviceTags), len(fromNode.IdentityTags), len(fromFile.Codes), len(fromFile.DeviceTags), len(fromFile.IdentityTags))
	}
	for _, k := range fromFile.Codes {
		if n, ok := fromNode.Lookup(k.Family, k.Code); !ok || *n != *k {
			t.Errorf("code %s/%s: node %+v, file %+v", k.Family, k.Code, n, k)
		}
	}

	outer := "other: 1\nsection: {version: 1, codes: [\n  {family: sdk, code: 1, category: sdk, billable: true, meaning: m,\n   colour: red}]}\n"
	if err := yaml.Unmarshal([]byte(outer), &root); err != nil {
		t.Fatal(err)
	}
	_, err = base.WithOverridesNode("outer.yaml", root.Content[0].Content[3])
	want := `outer.yaml:4: field "colour": unknown field in code (known: family, code, category, billable, billing, meaning, action, note)`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n got: %v\nwant: %s", err, want)
	}
}

// TestPersonalFieldsCoverTencentModels: the embedded list holds the fields
// of Tencent's FaceID response models the privacy contract names (docs/
// service.md#privacy), so an edit of catalog.yaml cannot drop one unseen.
func TestPersonalFieldsCoverTencentModels(t *testing.T) {
	cat := mustDefault(t)
	have := map[string]bool{}
	for _, f := range cat.PersonalFields {
		have[FieldKey(f.Field)] = true
	}
	for _, f := range []string{
		"IdCard", "Idcard", "IdNum", "OcrIdCard", "OtherIdNum", "PassNo", "BankCard", // ID numbers (Idcard is IdCard)
		"Name", "OcrName", "EnName", "Mobile", "Phone", "Address", "OcrAddress", "Birth", "BirthDate", "OcrBirth",
		"OcrNation", "OcrGender", "OcrAuthority", "OcrValidDate", "Nation", "Sex", // OCR and document text
		"BestFrame", "BestFrameBase64", "BestFrames", "BestFrameList", "VideoBase64", "LivenessVideo", "Video", "IdCardData",
		"ImageBase64", "ImageA", "ImageB", "OcrFront", "OcrBack", "Portrait", "Avatar", "Picture", "ProcessedFrontImage",
		"ProcessedBackImage", "IntentionVerifyVideo", "IntentionVerifyBestFrame", "IntentionVerifyAudio", "Audios", "ScreenShot",
		"EidInfo", "Encryption", "EncryptedBody", "CiphertextBlob", "DetectInfo", // encrypted identity, whole results
	} {
		if !have[FieldKey(f)] {
			t.Errorf("personal_fields does not list %s", f)
		}
	}
	// And none of the input contract's own fields.
	for _, f := range []string{"id", "ts", "channel", "code", "req_id", "risk", "app_id", "rule_id"} {
		if have[FieldKey(f)] {
			t.Errorf("personal_fields lists the contract field %s", f)
		}
	}
}
