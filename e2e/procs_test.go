package e2e

// Helpers of the reliability suite: the worker binary run as a process (so
// that it can be killed with SIGKILL), its configuration file, a second dev
// server, a guard over the files outside the lake, and the outcome lines
// the suite writes for docs/reliability.md.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/certlake/certlake/e2e/devserver"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/scenario"
)

// fullMode runs the scenarios at the full size and durations (2M
// entries, a minute of 429s) instead of the default small ones.
func fullMode() bool { return os.Getenv("CERTLAKE_RELIABILITY_FULL") == "1" }

// newProcEnv is newEnv without the in-process worker: the test starts
// worker processes (startWorkerProc) or an in-process worker (startWorker)
// itself, after adjusting e.cfg.
func newProcEnv(t *testing.T, opts scenario.Options) *env {
	t.Helper()
	return newWorld(t, opts, "certlake-rel")
}

var workerBin struct {
	once sync.Once
	path string
	err  error
}

// workerBinary builds ./worker once per package run.
func workerBinary(t *testing.T) string {
	t.Helper()
	workerBin.once.Do(func() {
		// One fixed place, rebuilt (from the build cache) by every run, so
		// runs do not leave a binary each behind; built under a temporary
		// name and renamed, so a concurrent run never sees half a file.
		dir := filepath.Join(os.TempDir(), "certlake-e2e-worker")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			workerBin.err = err
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("worker.%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", tmp, "github.com/certlake/certlake/worker")
		if out, err := cmd.CombinedOutput(); err != nil {
			workerBin.err = fmt.Errorf("go build ./worker: %v\n%s", err, out)
			return
		}
		workerBin.path = filepath.Join(dir, "worker")
		workerBin.err = os.Rename(tmp, workerBin.path)
	})
	if workerBin.err != nil {
		t.Fatalf("worker binary: %v", workerBin.err)
	}
	return workerBin.path
}

// writeConfig writes cfg as the file a user would pass with --config (JSON,
// which viper reads like YAML) and returns its path.
func writeConfig(t *testing.T, cfg *config.Config) string {
	t.Helper()
	c := *cfg
	// testConfig asks ctlog for "unlimited" with -1, which the config file
	// does not accept. A high rate means the same, whether or not this
	// version of activities.New maps ct.rate_limit 0 to "unlimited".
	if c.CT.RateLimit < 0 {
		c.CT.RateLimit = 10000
	}
	c.Worker.MetricsAddress = ""
	c.Worker.LogFormat = "json"
	c.Worker.LogLevel = "info"
	b, err := json.MarshalIndent(configMap(reflect.ValueOf(c)), "", "  ")
	if err != nil {
		t.Fatalf("encode config: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "certlake-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// configMap turns a config struct into the map of its `key` tags.
func configMap(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			k := v.Type().Field(i).Tag.Get("key")
			if k == "" || k == "-" {
				continue
			}
			m[k] = configMap(v.Field(i))
		}
		return m
	case reflect.Slice:
		out := []any{}
		for i := 0; i < v.Len(); i++ {
			out = append(out, configMap(v.Index(i)))
		}
		return out
	case reflect.Map:
		m := map[string]any{}
		for _, k := range v.MapKeys() {
			m[k.String()] = configMap(v.MapIndex(k))
		}
		return m
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	return v.Interface()
}

// workerProc is a worker running as a child process.
type workerProc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	mu      sync.Mutex
	peakKiB int64 // highest VmHWM seen
}

// startWorkerProc starts the worker binary with cfgPath.
func startWorkerProc(t *testing.T, name, cfgPath string) *workerProc {
	t.Helper()
	return startWorkerProcWith(t, name, cfgPath, procOptions{})
}

// procOptions place a worker process as if on a host of its own.
type procOptions struct {
	dir string   // working directory; "" = the test's
	env []string // added to the test's environment
}

// startWorkerProcWith starts the worker binary with cfgPath and o.
func startWorkerProcWith(t *testing.T, name, cfgPath string, o procOptions) *workerProc {
	t.Helper()
	bin := workerBinary(t)
	logPath := filepath.Join(t.TempDir(), name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(append(os.Environ(), "GOTRACEBACK=all"), o.env...)
	cmd.Dir = o.dir
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start worker %s: %v", name, err)
	}
	w := &workerProc{t: t, name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(w.done)
	}()
	go w.watchRSS()
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			t.Logf("worker %s log (tail):\n%s", name, tail(logPath, 40))
		}
	})
	return w
}

// watchRSS samples the process's VmHWM until it exits: the kernel's peak
// resident set, read before the process is gone.
func (w *workerProc) watchRSS() {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if kib := vmHWM(w.cmd.Process.Pid); kib > 0 {
			w.mu.Lock()
			w.peakKiB = max(w.peakKiB, kib)
			w.mu.Unlock()
		}
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
	}
}

// peakRSS returns the highest VmHWM seen, in MiB.
func (w *workerProc) peakRSS() float64 {
	if kib := vmHWM(w.cmd.Process.Pid); kib > 0 {
		w.mu.Lock()
		w.peakKiB = max(w.peakKiB, kib)
		w.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return float64(w.peakKiB) / 1024
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// kill sends SIGKILL and waits for the process to be gone.
func (w *workerProc) kill() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
}

// stop sends SIGTERM, as a supervisor stopping the worker does, and waits
// for the process to be gone (SIGKILL after 30 s).
func (w *workerProc) stop() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		w.t.Errorf("worker %s still running 30 s after SIGTERM", w.name)
		w.kill()
	}
}

// countLog counts the worker's log lines whose msg is msg.
func (w *workerProc) countLog(msg string) int {
	f, err := os.Open(w.logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg {
			n++
		}
	}
	return n
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stagedRows counts the rows of a table, 0 when it does not exist or cannot
// be read at this instant (a commit in progress is not an error).
func stagedRows(t *testing.T, path string) int {
	k, err := scenario.Keys(t.Context(), path)
	if err != nil {
		return 0
	}
	return k.Total()
}

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDevServer starts a dev server of the test's own, persisting to db,
// listening on hostPort.
func startDevServer(t *testing.T, hostPort, db string) *testsuite.DevServer {
	t.Helper()
	s, err := devserver.Start(t.Context(), devserver.Options{HostPort: hostPort, DB: db})
	if err != nil {
		t.Fatalf("dev server on %s: %v", hostPort, err)
	}
	return s
}

// maxHistory returns the longest history of any run on the queue (parents,
// children, continued-as-new runs, merges) and the number of runs.
func maxHistory(t *testing.T, c client.Client, queue string) (longest int64, runs int) {
	t.Helper()
	var token []byte
	for {
		resp, err := c.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("TaskQueue = '%s'", queue), NextPageToken: token})
		if err != nil {
			t.Fatalf("list workflows of %s: %v", queue, err)
		}
		for _, ex := range resp.Executions {
			runs++
			longest = max(longest, ex.HistoryLength)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			return longest, runs
		}
	}
}

// activityRetries counts the activity attempts beyond the first in the
// histories of the runs on the queue, and the heartbeat timeouts among the
// failures that caused them.
func activityRetries(t *testing.T, c client.Client, queue string) (retries, heartbeatTimeouts int) {
	t.Helper()
	resp, err := c.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("TaskQueue = '%s'", queue), PageSize: 1000})
	if err != nil {
		t.Fatalf("list workflows of %s: %v", queue, err)
	}
	for _, ex := range resp.Executions {
		it := c.GetWorkflowHistory(t.Context(), ex.Execution.WorkflowId, ex.Execution.RunId, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s: %v", ex.Execution.WorkflowId, err)
			}
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.Attempt > 1 {
				retries++
				if f := a.LastFailure; f != nil && f.GetTimeoutFailureInfo() != nil &&
					f.GetTimeoutFailureInfo().TimeoutType == enumspb.TIMEOUT_TYPE_HEARTBEAT {
					heartbeatTimeouts++
				}
			}
		}
	}
	return retries, heartbeatTimeouts
}

// guard records the files of dir outside the lake's tables (the logs' data,
// the state file, user files placed around the lake) and checks at the end
// of the test that none was changed or removed.
func guard(t *testing.T, dir string, skip ...string) {
	t.Helper()
	// User files around the lake: beside the tables and one level up.
	for _, p := range []string{
		filepath.Join(dir, "lake", "NOTES-user.txt"),
		filepath.Join(dir, "user-files", "keep.csv"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("user data, must survive\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	skip = append(skip, filepath.Join(dir, "lake", "main"), filepath.Join(dir, "lake", "staging"),
		filepath.Join(dir, "lake", "plans"), filepath.Join(dir, "logs"))
	before := treeHashes(t, dir, skip)
	t.Cleanup(func() {
		after := treeHashes(t, dir, skip)
		for p, h := range before {
			if after[p] != h {
				t.Errorf("file outside the lake changed or removed: %s", p)
			}
		}
	})
}

// treeHashes hashes every regular file under dir, leaving out the skipped
// subtrees.
func treeHashes(t *testing.T, dir string, skip []string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking: reported as missing
		}
		for _, s := range skip {
			if p == s {
				return filepath.SkipDir
			}
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			s := sha256.Sum256(b)
			out[p] = hex.EncodeToString(s[:])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// outcome collects what a reliability scenario checked and measured, and
// appends one line to $CERTLAKE_RELIABILITY_REPORT when the test ends.
type outcome struct {
	t       *testing.T
	mu      sync.Mutex
	checked []string
	figures []string
	notes   []string
	start   time.Time
}

var reportMu sync.Mutex

// report starts the outcome of the running test.
func report(t *testing.T) *outcome {
	o := &outcome{t: t, start: time.Now()}
	t.Cleanup(o.write)
	return o
}

// check notes a property the scenario verified.
func (o *outcome) check(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checked = append(o.checked, fmt.Sprintf(format, args...))
}

// figure notes a measured value.
func (o *outcome) figure(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.figures = append(o.figures, fmt.Sprintf(format, args...))
	o.t.Logf("figure: "+format, args...)
}

// note records a finding for the reader (a behaviour worth knowing, a bug).
func (o *outcome) note(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notes = append(o.notes, fmt.Sprintf(format, args...))
	o.t.Logf("finding: "+format, args...)
}

// reportLine is one line of the report file (JSON Lines).
type reportLine struct {
	Test    string   `json:"test"`
	Outcome string   `json:"outcome"`
	Seconds float64  `json:"seconds"`
	Checked []string `json:"checked"`
	Figures []string `json:"figures"`
	Notes   []string `json:"notes"`
	Full    bool     `json:"full"`
}

func (o *outcome) write() {
	path := os.Getenv("CERTLAKE_RELIABILITY_REPORT")
	if path == "" {
		return
	}
	res := "PASS"
	switch {
	case o.t.Failed():
		res = "FAIL"
	case o.t.Skipped():
		res = "SKIP"
	}
	o.mu.Lock()
	l := reportLine{Test: o.t.Name(), Outcome: res, Seconds: time.Since(o.start).Seconds(),
		Checked: append([]string{}, o.checked...), Figures: append([]string{}, o.figures...),
		Notes: append([]string{}, o.notes...), Full: fullMode()}
	o.mu.Unlock()
	b, err := json.Marshal(l)
	if err != nil {
		o.t.Errorf("report: %v", err)
		return
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		o.t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		o.t.Errorf("report: %v", err)
	}
}

// firstLines shortens a multi-line message for a report.
func firstLines(s string, n int) string {
	ls := bytes.Split([]byte(s), []byte("\n"))
	if len(ls) > n {
		ls = ls[:n]
	}
	return string(bytes.Join(ls, []byte(" / ")))
}

// msgCounter is a slog handler that counts messages, so a test can see what
// an in-process worker logged (a merge batch redone, a range resumed).
type msgCounter struct {
	mu *sync.Mutex
	n  map[string]int
}

func newMsgCounter() msgCounter { return msgCounter{mu: &sync.Mutex{}, n: map[string]int{}} }

func (c msgCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c msgCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[r.Message]++
	return nil
}
func (c msgCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c msgCounter) WithGroup(string) slog.Handler      { return c }

// count returns how often msg was logged.
func (c msgCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[msg]
}

// startCountingWorker is startWorker with a logger that counts messages.
func (e *env) startCountingWorker() msgCounter {
	mc := newMsgCounter()
	e.startWorkerWith(slog.New(mc))
	return mc
}
