package accesslog

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"
)

// jsonField is one key of a compiled json_format.
type jsonField struct {
	key    []byte // `"key":`, escaped once at compile time
	parts  []part // a string template
	typed  bool   // the template is a single operator: its value keeps its type
	nested []jsonField
	isObj  bool
	fixed  []byte // a non-string literal value (number, bool, null, list), rendered once
}

// NewJSONFormatter compiles an Envoy json_format: each string value is a format template.
// A value that is exactly one command operator keeps the operator's type, so
// %RESPONSE_CODE% is a JSON number and an absent value is null, as in Envoy. Keys are written
// in sorted order, one object per line.
func NewJSONFormatter(s *structpb.Struct, omitEmpty bool) (*Formatter, error) {
	fields, err := compileObject(s)
	if err != nil {
		return nil, err
	}
	return &Formatter{json: fields, isJSON: true, omitEmpty: omitEmpty, hostname: hostname()}, nil
}

func compileObject(s *structpb.Struct) ([]jsonField, error) {
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]jsonField, 0, len(keys))
	for _, k := range keys {
		f := jsonField{key: append(appendJSONString(nil, k), ':')}
		switch v := s.GetFields()[k].GetKind().(type) {
		case *structpb.Value_StringValue:
			parts, err := parse(v.StringValue)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			f.parts = parts
			f.typed = len(parts) == 1 && parts[0].op != opLiteral
		case *structpb.Value_StructValue:
			nested, err := compileObject(v.StructValue)
			if err != nil {
				return nil, fmt.Errorf("%s.%w", k, err)
			}
			f.nested, f.isObj = nested, true
		default:
			b, err := json.Marshal(s.GetFields()[k].AsInterface())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			f.fixed = b
		}
		out = append(out, f)
	}
	return out, nil
}

func (f *Formatter) appendJSON(b []byte, e *env) []byte {
	b = f.appendObject(b, f.json, e)
	return append(b, '\n')
}

func (f *Formatter) appendObject(b []byte, fields []jsonField, e *env) []byte {
	b = append(b, '{')
	first := true
	for i := range fields {
		fl := &fields[i]
		mark := len(b)
		if !first {
			b = append(b, ',')
		}
		b = append(b, fl.key...)
		var empty bool
		b, empty = f.appendJSONValue(b, fl, e)
		if empty && f.omitEmpty {
			b = b[:mark]
			continue
		}
		first = false
	}
	return append(b, '}')
}

// appendJSONValue appends one field's value and reports whether it was empty (null or "").
func (f *Formatter) appendJSONValue(b []byte, fl *jsonField, e *env) ([]byte, bool) {
	switch {
	case fl.isObj:
		return f.appendObject(b, fl.nested, e), false
	case fl.fixed != nil:
		return append(b, fl.fixed...), false
	case fl.typed:
		p := &fl.parts[0]
		k, v, n := f.eval(p, e)
		switch k {
		case kindString:
			return appendJSONString(b, v), false
		case kindNumber:
			return strconv.AppendInt(b, n, 10), false
		case kindRaw:
			b = append(b, '"')
			b = f.appendRaw(b, p, e)
			return append(b, '"'), false
		}
		return append(b, "null"...), true
	}
	// A template mixing text and operators is a string; absent operators render as "-"
	// (nothing with omit_empty_values), as in text formats.
	start := len(b)
	b = append(b, '"')
	for i := range fl.parts {
		p := &fl.parts[i]
		if p.op == opLiteral {
			b = appendJSONEscaped(b, p.text)
			continue
		}
		k, v, n := f.eval(p, e)
		switch k {
		case kindAbsent:
			if !f.omitEmpty {
				b = append(b, '-')
			}
		case kindString:
			b = appendJSONEscaped(b, v)
		case kindNumber:
			b = strconv.AppendInt(b, n, 10)
		case kindRaw:
			b = f.appendRaw(b, p, e)
		}
	}
	b = append(b, '"')
	return b, len(b) == start+2
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONEscaped(b, s)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONEscaped appends s escaped for a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
