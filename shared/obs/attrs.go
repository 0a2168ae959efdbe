package obs

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"
)

// durationsAsStrings renders every time.Duration as its String ("1.5s"):
// the JSON handler would write nanoseconds, which nobody reads correctly.
func durationsAsStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// ConfigAttr returns cfg, a struct with envconfig tags (pass its redacted
// form), as one "config" group keyed by the environment variable names, so
// that the start-up line is searchable field by field in text and JSON.
// Durations are strings, lists are comma-joined, and a field whose name
// says it is a secret (SECRET, PASSWORD, TOKEN) is masked even if the
// caller forgot.
func ConfigAttr(cfg any) slog.Attr {
	return slog.Attr{Key: "config", Value: slog.GroupValue(configAttrs(reflect.ValueOf(cfg))...)}
}

func configAttrs(v reflect.Value) []slog.Attr {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []slog.Attr
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		switch {
		case !f.IsExported():
		case f.Anonymous && fv.Kind() == reflect.Struct:
			out = append(out, configAttrs(fv)...)
		case f.Tag.Get("envconfig") != "":
			name := f.Tag.Get("envconfig")
			out = append(out, slog.Attr{Key: name, Value: configValue(name, fv)})
		}
	}
	return out
}

func configValue(name string, v reflect.Value) slog.Value {
	if isSecretName(name) && !v.IsZero() {
		return slog.StringValue("xxxxx")
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return slog.StringValue(x.String())
	case []string:
		return slog.StringValue(strings.Join(x, ","))
	case fmt.Stringer:
		return slog.StringValue(x.String())
	}
	return slog.AnyValue(v.Interface())
}

func isSecretName(name string) bool {
	for _, s := range []string{"SECRET", "PASSWORD", "TOKEN"} {
		if strings.Contains(strings.ToUpper(name), s) {
			return true
		}
	}
	return false
}
