package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/certlake/certlake/internal/delta"
)

// checkView is what table check prints; with --json, exactly this object.
type checkView struct {
	Path     string   `json:"path"`
	OK       bool     `json:"ok"`
	Problems []string `json:"problems"` // at most 50, each a rule of the Delta protocol broken
}

// tableCheckCommand lints a table's log against the Delta protocol rules a
// writer must follow (delta.Validate): the check to run on a table another
// tool wrote before certlake commits to it, or after a crash or a restore
// from backup. It reads the log only, never data files, and writes nothing.
func tableCheckCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("check PATH", "check a Delta table's log against the protocol rules a writer must follow (exit 1 when broken)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError("table check takes one PATH, got %d arguments", len(args))
		}
		path := args[0]
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		err = delta.ValidateOptions(cmd.Context(), path, delta.Options{Storage: opener(cfg)})
		v := checkView{Path: path, OK: err == nil, Problems: []string{}}
		var joined interface{ Unwrap() []error }
		switch {
		case err == nil:
		case errors.Is(err, delta.ErrCorrupt) && errors.As(err, &joined):
			for _, p := range joined.Unwrap() {
				v.Problems = append(v.Problems, p.Error())
			}
		case errors.Is(err, delta.ErrCorrupt):
			v.Problems = append(v.Problems, err.Error())
		default: // not a table, unreachable, unsupported: not a verdict on the log
			return tableErr(path, err)
		}
		if *asJSON {
			if err := writeJSON(c.stdout, v); err != nil {
				return err
			}
		} else {
			printCheck(c.stdout, v)
		}
		if !v.OK {
			return &exitError{Code: 1}
		}
		return nil
	}
	return cmd
}

func printCheck(w io.Writer, v checkView) {
	if v.OK {
		fmt.Fprintf(w, "%s: the Delta log follows the protocol rules certlake checks\n", v.Path)
		return
	}
	fmt.Fprintf(w, "%s: %d problems in the Delta log:\n", v.Path, len(v.Problems))
	for _, p := range v.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
