package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultFile is read when no file is named and it exists in the working
// directory.
const DefaultFile = "certlake.yaml"

// EnvPrefix starts every environment variable Load reads:
// CERTLAKE_<SECTION>_<KEY>, e.g. CERTLAKE_LAKE_MAIN_PATH for lake.main_path.
const EnvPrefix = "CERTLAKE"

// EnvFile names the configuration file when neither Load's path nor the
// --config flag does.
const EnvFile = EnvPrefix + "_CONFIG"

// FlagConfig is the name of the flag that names the configuration file.
const FlagConfig = "config"

// FlagSet is the name of the repeatable key=value override flag.
const FlagSet = "set"

// annotationKey marks a flag as an override of a config key (BindFlag).
const annotationKey = "certlake_config_key"

// sep is viper's key delimiter here. Not ".": keys of ct.logs are log URLs,
// which contain dots, and viper would split them into nested maps.
const sep = "\x1f"

// AddFlags registers the flags every certlake command shares: --config FILE
// and --set KEY=VALUE (repeatable; wins over everything else).
func AddFlags(fs *pflag.FlagSet) {
	fs.String(FlagConfig, "", "configuration file (default ./"+DefaultFile+" if present, or $"+EnvFile+")")
	fs.StringArray(FlagSet, nil, "override a config key, e.g. --set lake.main_path=/data/ct (repeatable)")
}

// BindFlag makes the flag name of fs override the config key (dotted, e.g.
// "lake.main_path") when it is given on the command line. Flags whose name is
// a dotted key ("--lake.main_path") are bound without it.
func BindFlag(fs *pflag.FlagSet, name, key string) error {
	if !knownKeys()[key] {
		return fmt.Errorf("bind flag --%s: unknown config key %s", name, key)
	}
	if err := fs.SetAnnotation(name, annotationKey, []string{key}); err != nil {
		return fmt.Errorf("bind flag --%s to %s: %w", name, key, err)
	}
	return nil
}

// Load reads the configuration. Sources, lowest precedence first: the
// defaults; the file path (or the --config flag of flags, or $CERTLAKE_CONFIG,
// or ./certlake.yaml when it exists); the environment CERTLAKE_<SECTION>_<KEY>
// (nested sections joined by "_", e.g. CERTLAKE_LAKE_DUCKDB_THREADS; list and
// map keys such as ct.custom_logs take JSON); flags of flags that were given
// (see BindFlag) and --set KEY=VALUE. flags may be nil.
//
// Unknown keys in the file, unknown CERTLAKE_<SECTION>_ variables, values of
// the wrong type and values out of range are errors that name the key and
// where the value came from; all problems are reported at once.
func Load(path string, flags *pflag.FlagSet) (*Config, error) {
	file, err := configFile(path, flags)
	if err != nil {
		return nil, err
	}
	l := &loader{v: viper.NewWithOptions(viper.KeyDelimiter(sep)), file: file, flagOf: map[string]string{}}
	if file != "" {
		if err := l.read(); err != nil {
			return nil, err
		}
	}
	// Env is switched on only now, so that the unknown-key walk in read
	// sees the file alone.
	l.v.SetEnvPrefix(EnvPrefix)
	l.v.SetEnvKeyReplacer(strings.NewReplacer(sep, "_"))
	l.v.AutomaticEnv()
	l.checkEnv()
	if flags != nil {
		l.bindFlags(flags)
	}
	cfg := Defaults()
	cfg.File = file
	l.decodeStruct(reflect.ValueOf(&cfg).Elem(), nil)
	if len(l.errs) == 0 {
		cfg.derive()
		l.errs = append(l.errs, cfg.validate()...)
	}
	if len(l.errs) > 0 {
		// Each problem names its key and where the value came from.
		return nil, fmt.Errorf("config: %w", errors.Join(l.errs...))
	}
	return &cfg, nil
}

// configFile picks the file to read: "" when there is none.
func configFile(path string, flags *pflag.FlagSet) (string, error) {
	if path != "" {
		return path, nil
	}
	if flags != nil {
		if f := flags.Lookup(FlagConfig); f != nil && f.Value.String() != "" {
			return f.Value.String(), nil
		}
	}
	if p := os.Getenv(EnvFile); p != "" {
		return p, nil
	}
	switch _, err := os.Stat(DefaultFile); {
	case err == nil:
		return DefaultFile, nil
	case errors.Is(err, os.ErrNotExist):
		return "", nil
	default:
		return "", fmt.Errorf("config: look for %s: %w", DefaultFile, err)
	}
}

// loader holds one Load's state: the viper instance, where flags came from,
// and the problems found so far.
type loader struct {
	v      *viper.Viper
	file   string
	flagOf map[string]string // key -> "--flag" that set it
	envSet map[string]bool   // env variable names that were read
	errs   []error
}

func (l *loader) read() error {
	if _, err := os.Stat(l.file); err != nil {
		return fmt.Errorf("config %s: %w", l.file, err)
	}
	l.v.SetConfigFile(l.file)
	switch strings.TrimPrefix(filepath.Ext(l.file), ".") {
	case "yaml", "yml", "json", "toml":
	default:
		l.v.SetConfigType("yaml")
	}
	if err := l.v.ReadInConfig(); err != nil {
		return fmt.Errorf("config %s: %w", l.file, err)
	}
	l.checkUnknown(l.v.AllSettings(), reflect.TypeFor[Config](), nil)
	return nil
}

// checkUnknown reports every key of raw that typ does not have.
func (l *loader) checkUnknown(raw map[string]any, typ reflect.Type, path []string) {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		val := raw[k]
		p := append(slices.Clip(path), k)
		f, ok := fieldByKey(typ, k)
		if !ok {
			l.errs = append(l.errs, fmt.Errorf("unknown key %s in %s", dotted(p), l.file))
			continue
		}
		if val == nil {
			continue
		}
		switch ft := f.Type; {
		case ft.Kind() == reflect.Struct:
			m, ok := val.(map[string]any)
			if !ok {
				l.errs = append(l.errs, fmt.Errorf("%s: want a section of keys, got %s (in %s)", dotted(p), show(val), l.file))
				continue
			}
			l.checkUnknown(m, ft, p)
		case ft.Kind() == reflect.Map:
			m, ok := val.(map[string]any)
			if !ok {
				continue // decode reports the type
			}
			for mk, mv := range m {
				if sub, ok := mv.(map[string]any); ok {
					l.checkUnknown(sub, ft.Elem(), append(slices.Clip(p), mk))
				}
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			list, ok := val.([]any)
			if !ok {
				continue
			}
			for i, e := range list {
				if sub, ok := asStringMap(e); ok {
					l.checkUnknown(sub, ft.Elem(), append(slices.Clip(p[:len(p)-1]), fmt.Sprintf("%s[%d]", k, i)))
				}
			}
		}
	}
}

// checkEnv reports CERTLAKE_<SECTION>_... variables that set no key: a typo
// there would otherwise be ignored silently.
func (l *loader) checkEnv() {
	known := map[string]bool{EnvFile: true}
	for k := range knownKeys() {
		known[envName(strings.Split(k, "."))] = true
	}
	sections := sectionNames()
	l.envSet = map[string]bool{}
	var unknown []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix+"_") {
			continue
		}
		if known[name] {
			l.envSet[name] = true
			continue
		}
		rest := strings.TrimPrefix(name, EnvPrefix+"_")
		for _, s := range sections {
			if strings.HasPrefix(rest, strings.ToUpper(s)+"_") {
				unknown = append(unknown, name)
				break
			}
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		l.errs = append(l.errs, fmt.Errorf("unknown environment variable %s (no such config key)", name))
	}
}

// bindFlags binds every flag given on the command line that overrides a key.
func (l *loader) bindFlags(fs *pflag.FlagSet) {
	known := knownKeys()
	fs.Visit(func(f *pflag.Flag) {
		if f.Name == FlagSet {
			l.setOverrides(f)
			return
		}
		key := ""
		if a := f.Annotations[annotationKey]; len(a) == 1 {
			key = a[0]
		} else if known[f.Name] {
			key = f.Name
		}
		if key == "" {
			return
		}
		if err := l.v.BindPFlag(strings.ReplaceAll(key, ".", sep), f); err != nil {
			l.errs = append(l.errs, fmt.Errorf("flag --%s: %w", f.Name, err))
			return
		}
		l.flagOf[key] = "--" + f.Name
	})
}

func (l *loader) setOverrides(f *pflag.Flag) {
	sv, ok := f.Value.(pflag.SliceValue)
	if !ok {
		return
	}
	known := knownKeys()
	for _, kv := range sv.GetSlice() {
		key, val, ok := strings.Cut(kv, "=")
		key = strings.TrimSpace(key)
		if !ok || !known[key] {
			l.errs = append(l.errs, fmt.Errorf("--%s %q: want KEY=VALUE with a known key such as lake.main_path", FlagSet, kv))
			continue
		}
		l.v.Set(strings.ReplaceAll(key, ".", sep), val)
		l.flagOf[key] = "--" + FlagSet + " " + key
	}
}

// source says where the value of key came from, for messages.
func (l *loader) source(path []string) string {
	key := dotted(path)
	if f, ok := l.flagOf[key]; ok {
		return "from flag " + f
	}
	if env := envName(path); l.envSet[env] {
		return "from env " + env
	}
	if l.file != "" {
		return "in " + l.file
	}
	return "default"
}

// decodeStruct fills the fields of rv (a struct) whose keys are set.
func (l *loader) decodeStruct(rv reflect.Value, path []string) {
	rt := rv.Type()
	for i := range rt.NumField() {
		sf := rt.Field(i)
		key := sf.Tag.Get("key")
		if key == "" || key == "-" {
			continue
		}
		p := append(slices.Clip(path), key)
		fv := rv.Field(i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[time.Duration]() {
			l.decodeStruct(fv, p)
			continue
		}
		vk := strings.Join(p, sep)
		if !l.v.IsSet(vk) {
			continue
		}
		raw := l.v.Get(vk)
		if err := setValue(fv, raw, p); err != nil {
			l.errs = append(l.errs, fmt.Errorf("%w (%s)", err, l.source(p)))
		}
	}
}

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

func dotted(path []string) string { return strings.Join(path, ".") }

// envName is the environment variable of a key path.
func envName(path []string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.Join(path, "_"))
}

// fieldByKey finds the field of typ tagged key.
func fieldByKey(typ reflect.Type, key string) (reflect.StructField, bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if k := f.Tag.Get("key"); k != "" && k != "-" && k == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// knownKeys lists every settable key in dotted form: the leaves and the
// list and map keys (ct.custom_logs, ct.logs).
func knownKeys() map[string]bool {
	keys := map[string]bool{}
	var walk func(t reflect.Type, path []string)
	walk = func(t reflect.Type, path []string) {
		for i := range t.NumField() {
			f := t.Field(i)
			k := f.Tag.Get("key")
			if k == "" || k == "-" {
				continue
			}
			p := append(slices.Clip(path), k)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, p)
				continue
			}
			keys[dotted(p)] = true
		}
	}
	walk(reflect.TypeFor[Config](), nil)
	return keys
}

// Keys returns every settable key in dotted form, sorted.
func Keys() []string {
	var out []string
	for k := range knownKeys() {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sectionNames() []string {
	var out []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if k := t.Field(i).Tag.Get("key"); k != "" && k != "-" {
			out = append(out, k)
		}
	}
	return out
}
