package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
	l.errs = append(l.errs, decode(l.setKeys(), &cfg, l.sourceOf)...)
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

// setKeys is every key that is set (by the file, the environment or a
// flag), as the nested map mapstructure decodes: the defaults stay for the
// others.
func (l *loader) setKeys() map[string]any {
	raw := map[string]any{}
	forEachKey(func(path []string, _ reflect.Type) {
		vk := strings.Join(path, sep)
		if !l.v.IsSet(vk) {
			return
		}
		m := raw
		for _, k := range path[:len(path)-1] {
			sub, ok := m[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[k] = sub
			}
			m = sub
		}
		m[path[len(path)-1]] = l.v.Get(vk)
	})
	return raw
}

// sourceOf says where the value of key (or of the list or map holding it,
// e.g. ct.custom_logs for ct.custom_logs[0].url) came from.
func (l *loader) sourceOf(key string) string {
	best := ""
	for k := range knownKeys() {
		if (key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[")) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		best = key
	}
	return l.source(strings.Split(best, "."))
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

// forEachKey calls fn with every settable key's path and type: the leaves
// and the list and map keys (ct.custom_logs, ct.logs), not the sections.
func forEachKey(fn func(path []string, t reflect.Type)) {
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
			fn(p, f.Type)
		}
	}
	walk(reflect.TypeFor[Config](), nil)
}

// knownKeys lists every settable key in dotted form.
func knownKeys() map[string]bool {
	keys := map[string]bool{}
	forEachKey(func(path []string, _ reflect.Type) { keys[dotted(path)] = true })
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
