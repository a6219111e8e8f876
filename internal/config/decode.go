package config

// Decoding of raw values (from YAML, JSON, TOML, the environment or flags)
// into Config by mapstructure, the decoder viper itself uses. The decode
// hooks below do what mapstructure's weak typing would do differently: they
// refuse a bare number as a duration, take lists and sections from the
// environment as JSON, fold map keys to lower case, and say what each key
// wants; decodeErrors turns mapstructure's errors back into messages that
// name the key.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// decode sets the fields of cfg whose keys are in raw (a nested map of the
// set keys) and returns one error per bad value, each naming its key.
func decode(raw map[string]any, cfg *Config, source func(key string) string) []error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:     "key",
		DecodeHook:  decodeHook,
		ErrorUnused: true,
		Result:      cfg,
	})
	if err != nil {
		return []error{fmt.Errorf("config decoder: %w", err)}
	}
	errs := decodeErrors(d.Decode(raw), source)
	// mapstructure walks maps in random order: sort for stable messages.
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// decodeHook converts one raw value for its target field, or says what the
// field wants. Values it passes through are already of the target's type.
func decodeHook(from, to reflect.Value) (any, error) {
	raw := from.Interface()
	if to.Type() == reflect.TypeFor[time.Duration]() {
		d, err := toDuration(raw)
		if err != nil {
			return nil, fmt.Errorf("want a duration such as \"30s\" or \"5m\", got %s", show(raw))
		}
		if d < 0 {
			return nil, fmt.Errorf("want a duration of 0 or more, got %s", show(raw))
		}
		return d, nil
	}
	switch to.Kind() {
	case reflect.String:
		if _, ok := raw.(string); !ok {
			return nil, fmt.Errorf("want a string, got %s", show(raw))
		}
	case reflect.Bool:
		b, err := toBool(raw)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %s", show(raw))
		}
		return b, nil
	case reflect.Int, reflect.Int64:
		n, err := toInt(raw)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %s", show(raw))
		}
		return n, nil
	case reflect.Uint64:
		n, err := toInt(raw)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("want an integer of 0 or more, got %s", show(raw))
		}
		return uint64(n), nil
	case reflect.Float64:
		f, err := toFloat(raw)
		if err != nil {
			return nil, fmt.Errorf("want a number, got %s", show(raw))
		}
		return f, nil
	case reflect.Slice:
		return toList(raw, to.Type().Elem().Kind() == reflect.String)
	case reflect.Map:
		return toSection(raw, true)
	case reflect.Struct:
		return toSection(raw, false)
	}
	return raw, nil
}

// toList accepts a list, or from the environment and --set a JSON list or,
// for a list of strings, comma-separated values. An empty list is nil, like
// the default.
func toList(raw any, ofStrings bool) (any, error) {
	if ss, ok := raw.([]string); ok {
		raw = trimmed(ss)
	}
	if s, ok := raw.(string); ok {
		if ofStrings && !strings.HasPrefix(strings.TrimSpace(s), "[") {
			raw = trimmed(strings.Split(s, ","))
		} else {
			var list []any
			if err := json.Unmarshal([]byte(s), &list); err != nil {
				return nil, fmt.Errorf("want a list such as [{\"name\": ..., \"url\": ...}], got %s", show(raw))
			}
			raw = list
		}
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list, got %s", show(raw))
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

func trimmed(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// toSection accepts a section of keys (or, from the environment, its JSON).
// The keys of a map (ct.operators, ct.logs) are folded to lower case, as
// viper folds the file's; an empty map is nil, like the default.
func toSection(raw any, isMap bool) (any, error) {
	if s, ok := raw.(string); ok && isMap {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("want a mapping such as {\"name\": {\"rate_limit\": 1}}, got %s", show(raw))
		}
		raw = m
	}
	m, ok := asStringMap(raw)
	if !ok {
		if isMap {
			return nil, fmt.Errorf("want a mapping, got %s", show(raw))
		}
		return nil, fmt.Errorf("want a section of keys, got %s", show(raw))
	}
	if !isMap {
		return m, nil
	}
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out, nil
}

// decodeErrors flattens mapstructure's joined errors into one per bad
// value: "<key>: <what it wants> (<where the value came from>)".
func decodeErrors(err error, source func(key string) string) []error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, decodeErrors(e, source)...)
		}
		return out
	}
	de, ok := err.(*mapstructure.DecodeError)
	if !ok { // mapstructure's "decoding failed due to..." around the list
		if inner := errors.Unwrap(err); inner != nil {
			return decodeErrors(inner, source)
		}
		return []error{err}
	}
	if inner := de.Unwrap(); inner != nil {
		var nested *mapstructure.DecodeError
		if _, joined := inner.(interface{ Unwrap() []error }); joined || errors.As(inner, &nested) {
			return decodeErrors(inner, source)
		}
	}
	key := keyOf(de.Name())
	msg := de.Unwrap().Error()
	if unused, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
		if strings.HasPrefix(source(key), "in ") {
			return nil // the file's unknown keys are reported as it is read
		}
		var out []error
		for _, k := range strings.Split(unused, ", ") {
			out = append(out, fmt.Errorf("unknown key %s.%s (%s)", key, k, source(key)))
		}
		return out
	}
	return []error{fmt.Errorf("%s: %s (%s)", key, msg, source(key))}
}

// keyOf turns mapstructure's name of a value into its key: map entries are
// written name[key] there and name.key here (list items keep name[i]).
func keyOf(name string) string {
	for _, m := range mapKeys() {
		if rest, ok := strings.CutPrefix(name, m+"["); ok {
			if i := strings.LastIndex(rest, "]"); i >= 0 {
				return m + "." + rest[:i] + rest[i+1:]
			}
		}
	}
	return name
}

// mapKeys lists the keys whose values are maps of sections (ct.logs).
func mapKeys() []string {
	var out []string
	forEachKey(func(path []string, t reflect.Type) {
		if t.Kind() == reflect.Map {
			out = append(out, dotted(path))
		}
	})
	return out
}

func asStringMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case map[any]any:
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[fmt.Sprint(k)] = v
		}
		return out, true
	}
	return nil, false
}

func toInt(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int8:
		return int64(n), nil
	case int16:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	case uint:
		if uint64(n) > math.MaxInt64 {
			return 0, errors.New("too large")
		}
		return int64(n), nil
	case uint32:
		return int64(n), nil
	case uint64:
		if n > math.MaxInt64 {
			return 0, errors.New("too large")
		}
		return int64(n), nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, errors.New("not an integer")
		}
		return int64(n), nil
	case string:
		s := strings.ReplaceAll(strings.TrimSpace(n), "_", "")
		return strconv.ParseInt(s, 10, 64)
	}
	return 0, errors.New("not an integer")
}

func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case string:
		return strconv.ParseFloat(strings.TrimSpace(n), 64)
	}
	i, err := toInt(v)
	return float64(i), err
}

func toBool(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		return strconv.ParseBool(strings.TrimSpace(b))
	}
	return false, errors.New("not a boolean")
}

// toDuration accepts Go duration strings ("30s", "1m30s"). Bare numbers are
// refused: seconds or nanoseconds would be a guess.
func toDuration(v any) (time.Duration, error) {
	switch d := v.(type) {
	case time.Duration:
		return d, nil
	case string:
		return time.ParseDuration(strings.TrimSpace(d))
	}
	return 0, errors.New("not a duration")
}

// show renders a bad value for a message: strings quoted.
func show(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a section"
	}
	return fmt.Sprint(v)
}
