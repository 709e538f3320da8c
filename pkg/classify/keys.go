package classify

import "encoding/binary"

// fieldKey names a field the decoder reads.
type fieldKey uint8

const (
	keyNone fieldKey = iota
	keyOther
	keyID
	keyTS
	keyChannel
	keyCode
	keyReqID
	keyRisk
	keyAppID
	keyRuleID
	keyDeviceLevel
	keyRiskLevel
	keyDeviceTags
	keyRiskTags
	keyPlatform
)

// keyPattern is a field name with its closing quote, as two masked
// little-endian words, so that a name is matched with two compares.
type keyPattern struct {
	w0, w1, m0, m1 uint64
	n              int // bytes, closing quote included
	key            fieldKey
}

func makeKeyPattern(name string, key fieldKey) keyPattern {
	var buf [16]byte
	q := name + `"`
	copy(buf[:], q)
	p := keyPattern{n: len(q), key: key}
	p.w0, p.w1 = binary.LittleEndian.Uint64(buf[:8]), binary.LittleEndian.Uint64(buf[8:])
	for i := 0; i < len(q); i++ {
		if i < 8 {
			p.m0 |= 0xff << (8 * i)
		} else {
			p.m1 |= 0xff << (8 * (i - 8))
		}
	}
	return p
}

var (
	topKeys = []keyPattern{
		makeKeyPattern("id", keyID), makeKeyPattern("ts", keyTS), makeKeyPattern("channel", keyChannel),
		makeKeyPattern("code", keyCode), makeKeyPattern("req_id", keyReqID), makeKeyPattern("risk", keyRisk),
		makeKeyPattern("app_id", keyAppID), makeKeyPattern("rule_id", keyRuleID),
	}
	riskKeys = []keyPattern{
		makeKeyPattern("device_level", keyDeviceLevel), makeKeyPattern("risk_level", keyRiskLevel),
		makeKeyPattern("device_tags", keyDeviceTags), makeKeyPattern("risk_tags", keyRiskTags),
		makeKeyPattern("platform", keyPlatform),
	}
)

// matchKey recognises the field name that opens at b[i] == '"' when it is one
// the decoder reads and at least 16 bytes follow; otherwise it returns keyNone
// and the caller scans the name.
func matchKey(b []byte, i int, risk bool) (fieldKey, int) {
	if len(b)-i < 17 {
		return keyNone, 0
	}
	w0 := binary.LittleEndian.Uint64(b[i+1:])
	w1 := binary.LittleEndian.Uint64(b[i+9:])
	// The first letter picks the candidates; each is two masked compares.
	var p *keyPattern
	if risk {
		switch b[i+1] {
		case 'd':
			if p = &riskKeys[0]; !p.match(w0, w1) {
				p = &riskKeys[2]
			}
		case 'r':
			if p = &riskKeys[1]; !p.match(w0, w1) {
				p = &riskKeys[3]
			}
		case 'p':
			p = &riskKeys[4]
		default:
			return keyNone, 0
		}
	} else {
		switch b[i+1] {
		case 'i':
			p = &topKeys[0]
		case 't':
			p = &topKeys[1]
		case 'c':
			if p = &topKeys[2]; !p.match(w0, w1) {
				p = &topKeys[3]
			}
		case 'r':
			if p = &topKeys[4]; !p.match(w0, w1) {
				if p = &topKeys[5]; !p.match(w0, w1) {
					p = &topKeys[7]
				}
			}
		case 'a':
			p = &topKeys[6]
		default:
			return keyNone, 0
		}
	}
	if p.match(w0, w1) {
		return p.key, i + 1 + p.n
	}
	return keyNone, 0
}

func (p *keyPattern) match(w0, w1 uint64) bool { return w0&p.m0 == p.w0 && w1&p.m1 == p.w1 }

// keyByName maps a scanned field name to its key.
func keyByName(name []byte, risk bool) fieldKey {
	keys := topKeys
	if risk {
		keys = riskKeys
	}
	var buf [16]byte
	if len(name) >= 16 {
		return keyOther
	}
	copy(buf[:], name)
	buf[len(name)] = '"'
	w0, w1 := binary.LittleEndian.Uint64(buf[:8]), binary.LittleEndian.Uint64(buf[8:])
	for k := range keys {
		p := &keys[k]
		if p.n == len(name)+1 && w0&p.m0 == p.w0 && w1&p.m1 == p.w1 {
			return p.key
		}
	}
	return keyOther
}
