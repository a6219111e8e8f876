package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/certlake/certlake/internal/config"
)

// Command groups of the root's help.
const (
	groupWorkflows = "workflows"
	groupLocal     = "local"
)

// rootCommand is the starter's command tree. Help, usage and shell
// completion ("starter completion bash|zsh|fish|powershell") come from
// cobra; every command also takes --config FILE and --set KEY=VALUE.
func rootCommand(c *cli) *cobra.Command {
	root := parentCommand(c, "starter", "certlake's operator CLI: backfill and merge workflows, the nightly merge schedule, and local tools")
	root.Long = "certlake's operator CLI. Every command reads the same configuration as the worker\n" +
		"(certlake.yaml, CERTLAKE_* environment variables, --config, --set KEY=VALUE; see\n" +
		"certlake.example.yaml); flags given on the command line win for that run."
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SilenceErrors = true // run prints them, as one line
	root.SilenceUsage = true
	// A command holding subcommands runs only to report a missing or
	// unknown one: its usage shows the subcommands, not "starter X [flags]".
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &exitError{Code: 2, Err: fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath())}
	})
	root.AddGroup(
		&cobra.Group{ID: groupWorkflows, Title: "Workflows (need a Temporal server and a certlake worker):"},
		&cobra.Group{ID: groupLocal, Title: "Local tools (no Temporal):"},
	)
	config.AddFlags(root.PersistentFlags())
	root.AddCommand(
		backfillCommand(c), mergeCommand(c), scheduleCommand(c),
		gapsCommand(c), coverageCommand(c), fetchCommand(c), tableCommand(c),
	)
	completeFlagValues(root)
	return root
}

// flagValues are the values shell completion offers for flags of one
// fixed set, whichever command has them.
var flagValues = map[string][]string{
	"ceiling": {config.CeilingStateFile, config.CeilingTreeSize},
}

func completeFlagValues(cmd *cobra.Command) {
	for name, values := range flagValues {
		if cmd.Flags().Lookup(name) != nil {
			_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	for _, sub := range cmd.Commands() {
		completeFlagValues(sub)
	}
}

// newCommand returns a leaf command and its flag set, flags listed in the
// order they are added. Arguments are checked by the command itself, so
// that its usage errors say what to fix.
func newCommand(use, short string) (*cobra.Command, *pflag.FlagSet) {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs}
	cmd.Flags().SortFlags = false
	return cmd, cmd.Flags()
}

// parentCommand returns a command that only holds subcommands: without one,
// or with an unknown one, it prints its usage and exits 2.
func parentCommand(c *cli, use, short string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.ArbitraryArgs, SuggestionsMinimumDistance: 2}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			fmt.Fprint(c.stderr, cmd.UsageString())
			return &exitError{Code: 2}
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		return usageError("%s (commands: %s; see %s --help)", msg, strings.Join(names, ", "), cmd.CommandPath())
	}
	return cmd
}

// keyFlag adds the string flag name overriding config key: the one way a
// flag is bound to configuration (config.Load applies it when given). A
// wrong key is a programming error caught by the tests.
func keyFlag(fs *pflag.FlagSet, name, key, usage string) {
	fs.String(name, "", usage)
	if err := config.BindFlag(fs, name, key); err != nil {
		panic(err)
	}
}
