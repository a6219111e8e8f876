package ctlogtest

import (
	"flag"
	"io"

	"k8s.io/klog/v2"
)

// QuietKlog stops klog, through which TesseraCT, Tessera, Trillian and CTFE
// log, from writing to stderr (they log every sequencer pass and many
// requests). klog is process-wide, so this is for a program's main or a
// package's TestMain, not for library code; this package never calls it.
func QuietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
