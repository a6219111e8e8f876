package config

// Conversion of raw values (from YAML, JSON, TOML, the environment or flags)
// into the typed fields of Config, with errors that name the key.

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
)

// setValue converts raw (from YAML, JSON, TOML, env or a flag) into fv,
// naming path in errors.
func setValue(fv reflect.Value, raw any, path []string) error {
	key := dotted(path)
	if fv.Type() == reflect.TypeFor[time.Duration]() {
		d, err := toDuration(raw)
		if err != nil {
			return fmt.Errorf("%s: want a duration such as \"30s\" or \"5m\", got %s", key, show(raw))
		}
		if d < 0 {
			return fmt.Errorf("%s: want a duration of 0 or more, got %s", key, show(raw))
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.Pointer: // an optional value: set means given
		v := reflect.New(fv.Type().Elem())
		if err := setValue(v.Elem(), raw, path); err != nil {
			return err
		}
		fv.Set(v)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", key, show(raw))
		}
		fv.SetString(s)
	case reflect.Bool:
		b, err := toBool(raw)
		if err != nil {
			return fmt.Errorf("%s: want true or false, got %s", key, show(raw))
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := toInt(raw)
		if err != nil {
			return fmt.Errorf("%s: want an integer, got %s", key, show(raw))
		}
		fv.SetInt(n)
	case reflect.Uint64:
		n, err := toInt(raw)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: want an integer of 0 or more, got %s", key, show(raw))
		}
		fv.SetUint(uint64(n))
	case reflect.Float64:
		f, err := toFloat(raw)
		if err != nil {
			return fmt.Errorf("%s: want a number, got %s", key, show(raw))
		}
		fv.SetFloat(f)
	case reflect.Slice:
		return setSlice(fv, raw, path)
	case reflect.Map:
		return setMap(fv, raw, path)
	default:
		return fmt.Errorf("%s: unsupported field kind %s", key, fv.Kind())
	}
	return nil
}

// setSlice decodes a list of sections (ct.custom_logs). From the environment
// it arrives as a JSON string.
func setSlice(fv reflect.Value, raw any, path []string) error {
	key := dotted(path)
	if ss, ok := raw.([]string); ok {
		raw = toAnys(ss)
	}
	if s, ok := raw.(string); ok && fv.Type().Elem().Kind() == reflect.String && !strings.HasPrefix(strings.TrimSpace(s), "[") {
		// A list of strings from the environment or --set: comma-separated.
		raw = toAnys(strings.Split(s, ","))
	}
	if s, ok := raw.(string); ok {
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return fmt.Errorf("%s: want a list such as [{\"name\": ..., \"url\": ...}], got %s", key, show(raw))
		}
		raw = list
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("%s: want a list, got %s", key, show(raw))
	}
	if fv.Type().Elem().Kind() == reflect.String {
		return setStrings(fv, list, key)
	}
	out := reflect.MakeSlice(fv.Type(), len(list), len(list))
	var errs []error
	for i, e := range list {
		p := append(slices.Clip(path[:len(path)-1]), fmt.Sprintf("%s[%d]", path[len(path)-1], i))
		if err := setSection(out.Index(i), e, p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(list) > 0 { // an empty list stays nil, like the default
		fv.Set(out)
	}
	return nil
}

func toAnys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// setStrings decodes a list of strings (lake.allowed_locations).
func setStrings(fv reflect.Value, list []any, key string) error {
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return fmt.Errorf("%s[%d]: want a string, got %s", key, i, show(e))
		}
		out = append(out, s)
	}
	if len(out) > 0 {
		fv.Set(reflect.ValueOf(out))
	}
	return nil
}

// setMap decodes a map of sections keyed by name or URL (ct.operators,
// ct.logs). Keys are folded to lower case, as viper folds the file's.
func setMap(fv reflect.Value, raw any, path []string) error {
	key := dotted(path)
	if s, ok := raw.(string); ok {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return fmt.Errorf("%s: want a mapping such as {\"name\": {\"rate_limit\": 1}}, got %s", key, show(raw))
		}
		raw = m
	}
	m, ok := asStringMap(raw)
	if !ok {
		return fmt.Errorf("%s: want a mapping, got %s", key, show(raw))
	}
	out := reflect.MakeMapWithSize(fv.Type(), len(m))
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ev := reflect.New(fv.Type().Elem()).Elem()
		if err := setSection(ev, m[k], append(slices.Clip(path), k)); err != nil {
			errs = append(errs, err)
			continue
		}
		out.SetMapIndex(reflect.ValueOf(strings.ToLower(k)), ev)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(m) > 0 { // an empty map stays nil, like the default
		fv.Set(out)
	}
	return nil
}

// setSection decodes one section (a struct) of a list or map.
func setSection(sv reflect.Value, raw any, path []string) error {
	if raw == nil {
		return nil
	}
	m, ok := asStringMap(raw)
	if !ok {
		return fmt.Errorf("%s: want a section of keys, got %s", dotted(path), show(raw))
	}
	var errs []error
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := append(slices.Clip(path), k)
		f, ok := fieldByKey(sv.Type(), strings.ToLower(k))
		if !ok {
			errs = append(errs, fmt.Errorf("unknown key %s", dotted(p)))
			continue
		}
		if m[k] == nil {
			continue
		}
		if err := setValue(sv.FieldByIndex(f.Index), m[k], p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
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
