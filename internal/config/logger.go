package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Logger builds the process's logger on stderr from worker.log_format and
// worker.log_level.
func (c *Config) Logger() *slog.Logger {
	return NewLogger(os.Stderr, c.Worker.LogFormat, c.Worker.LogLevel)
}

// NewLogger builds a logger writing to w. format is "text", "json", or "" for
// text when w is a terminal and JSON otherwise (log collectors want JSON,
// people want text). An unknown level means info; Load has already refused
// it.
func NewLogger(w io.Writer, format, level string) *slog.Logger {
	lvl, err := parseLevel(level)
	if err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(strings.ToUpper(strings.TrimSpace(s)))); err != nil {
		return 0, fmt.Errorf("log level %q: %w", s, err)
	}
	return l, nil
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// IsTerminal reports whether f is a terminal, for the starter's prompts.
func IsTerminal(f *os.File) bool { return isTerminal(f) }
