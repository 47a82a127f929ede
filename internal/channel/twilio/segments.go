package twilio

import "unicode/utf16"

// GSM 03.38 default alphabet (one septet each) and extension table (escape + char: two septets).
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExt = "\f^{}\\[~]|€"
)

// Encodings reported by Segments.
const (
	EncodingGSM7 = "GSM-7"
	EncodingUCS2 = "UCS-2"
)

// gsmTable maps each GSM-7 character to its septet cost (read-only after init).
var gsmTable = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, c := range gsmBasic {
		m[c] = 1
	}
	for _, c := range gsmExt {
		m[c] = 2
	}
	return m
}()

func gsmCost(r rune) int {
	if r < 0x80 && r >= ' ' && r <= 'z' && r != '`' && r != '@' && r != '$' && r != '[' && r != ']' && r != '\\' && r != '^' && r != '_' {
		return 1 // fast path: printable ASCII that is in the basic table at its own position
	}
	return gsmTable[r]
}

// Segments counts the SMS parts text needs. GSM-7 when every character is in
// the GSM alphabet (extension characters {}[]~\|^€ cost two septets): 160 in a
// single message, 153 per part; otherwise the whole message is UCS-2 counted
// in UTF-16 code units: 70 single, 67 per part. An escape pair or a surrogate
// pair is never split across parts. chars is septets (GSM-7) or UTF-16 units
// (UCS-2). Empty text is 0 segments.
func Segments(text string) (encoding string, segments int, chars int) {
	costs := make([]int, 0, len(text))
	encoding = EncodingGSM7
	for _, r := range text {
		c := gsmCost(r)
		if c == 0 {
			encoding = EncodingUCS2
			break
		}
		costs = append(costs, c)
	}
	single, part := 160, 153
	if encoding == EncodingUCS2 {
		single, part = 70, 67
		costs = costs[:0]
		for _, r := range text {
			n := utf16.RuneLen(r)
			if n < 1 {
				n = 1
			}
			costs = append(costs, n)
		}
	}
	for _, c := range costs {
		chars += c
	}
	switch {
	case chars == 0:
		return encoding, 0, 0
	case chars <= single:
		return encoding, 1, chars
	}
	used := 0
	segments = 1
	for _, c := range costs {
		if used+c > part {
			segments++
			used = 0
		}
		used += c
	}
	return encoding, segments, chars
}
