package record

// appendJSONString appends s as a JSON string escaped exactly as serde_json
// (the live ingester's encoder) escapes it (spec section 5.4): `"` and `\`
// backslash-escaped; \b \t \n \f \r short forms; other code points below
// U+0020 as \u00xx with lowercase hex; everything else, including '/', '<',
// '>', '&', DEL, U+2028 and U+2029, raw. encoding/json differs (it escapes
// U+2028, U+2029 and, by default, HTML characters).
//
// Strings reaching here are valid UTF-8 (names and SAN values are checked);
// an invalid byte would be copied as is, which serde_json never sees.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
