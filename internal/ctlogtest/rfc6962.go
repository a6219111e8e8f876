package ctlogtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/google/certificate-transparency-go/trillian/ctfe"
	"github.com/google/certificate-transparency-go/trillian/ctfe/configpb"
	"github.com/google/trillian"
	tclient "github.com/google/trillian/client"
	"github.com/google/trillian/crypto/keys"
	"github.com/google/trillian/crypto/keys/der"
	"github.com/google/trillian/crypto/keyspb"
	"github.com/google/trillian/extension"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/monitoring"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/server/interceptor"
	tstorage "github.com/google/trillian/storage"
	"github.com/google/trillian/storage/memory"
	"github.com/google/trillian/types"
	"github.com/google/trillian/util/clock"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// registerDERKeys lets CTFE load its key from a keyspb.PrivateKey, the
// Trillian key registry's only handler this package needs. The registry is
// Trillian's process-wide map; registering the same handler twice is harmless.
var registerDERKeys = sync.OnceFunc(func() {
	keys.RegisterHandler(&keyspb.PrivateKey{}, der.FromProto)
})

// rfcLog is what an RFC 6962 log keeps besides the HTTP server.
type rfcLog struct {
	treeID     int64
	prefix     string
	client     trillian.TrillianLogClient
	conn       *grpc.ClientConn
	grpcServer *grpc.Server
	grpcDone   chan struct{}
	seqCancel  context.CancelFunc
	seqDone    chan struct{}
	tmpDir     string
}

// StartRFC6962 starts a Trillian log (in-memory storage, one sequencer) with
// the CTFE personality in front, connected over an in-process gRPC
// connection, and serves CTFE on Options.Addr. The returned Log's URL is the
// log's base URL (URL+"ct/v1/get-sth").
//
// ctx bounds start-up only; the log runs until Close. Its entries live in
// memory and go away with it.
func StartRFC6962(ctx context.Context, opts Options) (*Log, error) {
	if err := opts.defaults("rfc6962"); err != nil {
		return nil, err
	}
	registerDERKeys()
	rl := &rfcLog{prefix: opts.Name}
	ok := false
	defer func() {
		if !ok {
			rl.close()
		}
	}()

	// Trillian: admin and log servers over one in-memory store.
	ts := memory.NewTreeStorage()
	registry := extension.Registry{
		AdminStorage:  memory.NewAdminStorage(ts),
		LogStorage:    queueCopies{serialReads{LogStorage: memory.NewLogStorage(ts, monitoring.InertMetricFactory{}), mu: new(sync.Mutex)}},
		QuotaManager:  quota.Noop(),
		MetricFactory: monitoring.InertMetricFactory{},
	}
	rl.grpcServer = grpc.NewServer(grpc.UnaryInterceptor(interceptor.ErrorWrapper))
	trillian.RegisterTrillianLogServer(rl.grpcServer, server.NewTrillianLogRPCServer(registry, clock.System))
	lis := bufconn.Listen(1 << 20)
	rl.grpcDone = make(chan struct{})
	go func() {
		defer close(rl.grpcDone)
		_ = rl.grpcServer.Serve(lis) // returns when Stop closes lis
	}()
	var err error
	rl.conn, err = grpc.NewClient("passthrough:///ctlogtest-trillian",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		return nil, fmt.Errorf("dial trillian: %w", err)
	}
	rl.client = trillian.NewTrillianLogClient(rl.conn)

	// The tree is created in admin storage directly: Trillian's admin gRPC
	// server needs a module (genproto) this repository does not carry, and
	// nothing here needs the admin API.
	tree, err := tstorage.CreateTree(ctx, registry.AdminStorage, &trillian.Tree{
		TreeState:       trillian.TreeState_ACTIVE,
		TreeType:        trillian.TreeType_LOG,
		DisplayName:     opts.Name,
		MaxRootDuration: durationpb.New(0),
	})
	if err != nil {
		return nil, fmt.Errorf("create trillian tree %s: %w", opts.Name, err)
	}
	if err := tclient.InitLog(ctx, tree, rl.client); err != nil {
		return nil, fmt.Errorf("init trillian log %s: %w", opts.Name, err)
	}
	rl.treeID = tree.TreeId

	// The sequencer integrates queued leaves into the tree, as a Trillian
	// log signer process would.
	seqCtx, seqCancel := context.WithCancel(context.WithoutCancel(ctx))
	rl.seqCancel, rl.seqDone = seqCancel, make(chan struct{})
	om := tlog.NewOperationManager(tlog.OperationInfo{
		Registry:    registry,
		BatchSize:   opts.SequencerBatchSize,
		NumWorkers:  1,
		RunInterval: opts.SequencerInterval,
		TimeSource:  clock.System,
	}, tlog.NewSequencerManager(registry, 0))
	go func() {
		defer close(rl.seqDone)
		om.OperationLoop(seqCtx)
	}()

	// CTFE reads its roots from a file.
	if rl.tmpDir, err = os.MkdirTemp("", "ctlogtest-"+opts.Name+"-"); err != nil {
		return nil, fmt.Errorf("temp dir for ctfe roots: %w", err)
	}
	rootsFile := filepath.Join(rl.tmpDir, "roots.pem")
	if err := writeRoots(rootsFile, opts.Roots); err != nil {
		return nil, err
	}
	key := opts.Key
	if key == nil {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("generate ctfe key: %w", err)
		}
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal ctfe key: %w", err)
	}
	keyAny, err := anypb.New(&keyspb.PrivateKey{Der: keyDER})
	if err != nil {
		return nil, fmt.Errorf("wrap ctfe key: %w", err)
	}
	vcfg, err := ctfe.ValidateLogConfig(&configpb.LogConfig{
		LogId:                 tree.TreeId,
		Prefix:                opts.Name,
		RootsPemFile:          []string{rootsFile},
		PrivateKey:            keyAny,
		MaxMergeDelaySec:      86400,
		ExpectedMergeDelaySec: 120,
	})
	if err != nil {
		return nil, fmt.Errorf("ctfe config %s: %w", opts.Name, err)
	}
	inst, err := ctfe.SetUpInstance(ctx, ctfe.InstanceOptions{
		Validated:     vcfg,
		Client:        rl.client,
		Deadline:      30 * time.Second,
		MetricFactory: monitoring.InertMetricFactory{},
		RequestLog:    new(ctfe.DefaultRequestLog),
	})
	if err != nil {
		return nil, fmt.Errorf("ctfe instance %s: %w", opts.Name, err)
	}

	mux := http.NewServeMux()
	getEntries := "/" + opts.Name + "/ct/v1/get-entries"
	for path, h := range inst.Handlers {
		if path == getEntries && opts.MaxGetEntries > 0 {
			mux.Handle(path, capGetEntries(h, int64(opts.MaxGetEntries)))
			continue
		}
		mux.Handle(path, h)
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen for rfc6962 log %s: %w", opts.Name, err)
	}
	base := "http://" + ln.Addr().String() + "/" + opts.Name + "/"
	l := &Log{
		Name:          opts.Name,
		URL:           base,
		SubmissionURL: base,
		PublicKey:     inst.GetPublicKey(),
		signer:        key,
		opts:          opts,
		log:           opts.Logger.With("log", opts.Name),
	}
	l.sizeBefore = rl.root
	l.waitIndexed = func(ctx context.Context, start uint64, subs []submission) error {
		return rl.waitIndexed(ctx, l, start, subs)
	}
	l.bulk = func(ctx context.Context, issued []*Issued) ([]uint64, error) { return rl.bulk(ctx, l, issued) }
	l.closeKind = func(context.Context) error { return rl.close() }
	l.serve(ln, mux)
	ok = true
	l.log.InfoContext(ctx, "rfc6962 log started", "url", base, "tree_id", tree.TreeId)
	return l, nil
}

// capGetEntries applies a per-log get-entries limit in front of CTFE.
// ctfe.MaxGetEntriesAllowed would do the same, but it is one variable for the
// whole process, so two logs with different limits (or a test changing it
// while another log serves) would race. The cut is CTFE's own: at most max
// entries, and a maximal request ends at a multiple of max.
func capGetEntries(h http.Handler, maxN int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		start, err1 := strconv.ParseInt(q.Get("start"), 10, 64)
		end, err2 := strconv.ParseInt(q.Get("end"), 10, 64)
		if err1 == nil && err2 == nil && start >= 0 && end >= start {
			if end-start+1 >= maxN {
				end = start + maxN - 1
				end -= (end + 1) % maxN
			}
			q.Set("end", strconv.FormatInt(end, 10))
			r2 := r.Clone(r.Context())
			r2.URL.RawQuery = q.Encode()
			r2.Form = nil
			r = r2
		}
		h.ServeHTTP(w, r)
	})
}

// root returns the tree size Trillian has integrated.
func (rl *rfcLog) root(ctx context.Context) (uint64, error) {
	resp, err := rl.client.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: rl.treeID})
	if err != nil {
		return 0, fmt.Errorf("get latest root of %s: %w", rl.prefix, err)
	}
	var root types.LogRootV1
	if err := root.UnmarshalBinary(resp.GetSignedLogRoot().GetLogRoot()); err != nil {
		return 0, fmt.Errorf("decode root of %s: %w", rl.prefix, err)
	}
	return root.TreeSize, nil
}

// waitIndexed finds where the sequencer put each submission. RFC 6962 SCTs
// carry no index, so it scans the leaves integrated since before the
// submissions and matches their identity hash (SHA-256 of the certificate or
// pre-certificate, as CTFE computes it) until every submission is found.
//
// start is the tree size before the first submission: nothing submitted
// after it can sit below it.
func (rl *rfcLog) waitIndexed(ctx context.Context, l *Log, start uint64, subs []submission) error {
	want := make(map[[32]byte][]int, len(subs))
	for i, s := range subs {
		want[s.issued.Cert.SHA256] = append(want[s.issued.Cert.SHA256], i)
	}
	next := start
	missing := len(want)
	err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		size, err := rl.root(ctx)
		if err != nil {
			return false, err
		}
		for next < size && missing > 0 {
			n := min(size-next, 1024)
			resp, err := rl.client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: rl.treeID, StartIndex: int64(next), Count: int64(n)})
			if err != nil {
				return false, fmt.Errorf("get leaves [%d, %d] of %s: %w", next, next+n-1, l.Name, err)
			}
			if len(resp.Leaves) == 0 {
				break
			}
			for _, leaf := range resp.Leaves {
				var h [32]byte
				copy(h[:], leaf.LeafIdentityHash)
				if idx, ok := want[h]; ok {
					for _, i := range idx {
						subs[i].index = uint64(leaf.LeafIndex)
					}
					delete(want, h)
					missing--
				}
			}
			next += uint64(len(resp.Leaves))
		}
		return missing == 0, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %d entries of %s: %w", missing, l.Name, err)
	}
	var maxIdx uint64
	for _, s := range subs {
		maxIdx = max(maxIdx, s.index)
	}
	// get-sth must show them too, not only Trillian.
	return l.waitTreeSize(ctx, maxIdx+1)
}

func (rl *rfcLog) close() error {
	if rl.seqCancel != nil {
		rl.seqCancel()
		<-rl.seqDone
	}
	var err error
	if rl.conn != nil {
		err = rl.conn.Close()
	}
	if rl.grpcServer != nil {
		rl.grpcServer.Stop()
		<-rl.grpcDone
	}
	if rl.tmpDir != "" {
		os.RemoveAll(rl.tmpDir)
	}
	return err
}

// queueCopies hands Trillian's in-memory storage copies of queued leaves.
// The memory storage keeps the very LogLeaf it is given and the sequencer
// later sets its index and timestamps in place, while the log server is
// still marshalling the same object into the QueueLeaf response: a data race
// in Trillian (its memory storage is meant for tests). With a copy queued,
// the response marshals a leaf nobody else touches.
type queueCopies struct {
	tstorage.LogStorage
}

func (q queueCopies) QueueLeaves(ctx context.Context, tree *trillian.Tree, leaves []*trillian.LogLeaf, ts time.Time) ([]*trillian.QueuedLogLeaf, error) {
	copies := make([]*trillian.LogLeaf, len(leaves))
	for i, l := range leaves {
		copies[i] = proto.Clone(l).(*trillian.LogLeaf)
	}
	ret, err := q.LogStorage.QueueLeaves(ctx, tree, copies, ts)
	if err != nil {
		return nil, err
	}
	for i, r := range ret {
		if r == nil {
			continue
		}
		if r.Leaf == copies[i] {
			r.Leaf = leaves[i]
		} else if r.Leaf != nil {
			// A duplicate: the stored leaf, which only a tree lock guards.
			r.Leaf = proto.Clone(r.Leaf).(*trillian.LogLeaf)
		}
	}
	return ret, nil
}

// serialReads runs Trillian's in-memory read transactions one at a time. A
// read transaction clones the tree's B-tree under a read lock and its Commit
// stores the clone back as the tree's state, still under the read lock: two
// concurrent readers race (another data race of Trillian's test storage).
// Holding a mutex from SnapshotForTree to Commit or Close removes it; write
// transactions already hold the tree's exclusive lock.
type serialReads struct {
	tstorage.LogStorage
	mu *sync.Mutex
}

func (s serialReads) SnapshotForTree(ctx context.Context, tree *trillian.Tree) (tstorage.ReadOnlyLogTreeTX, error) {
	s.mu.Lock()
	tx, err := s.LogStorage.SnapshotForTree(ctx, tree)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return &lockedTX{ReadOnlyLogTreeTX: tx, unlock: sync.OnceFunc(s.mu.Unlock)}, nil
}

// lockedTX releases serialReads' mutex when the transaction ends.
type lockedTX struct {
	tstorage.ReadOnlyLogTreeTX
	unlock func()
}

func (t *lockedTX) Commit(ctx context.Context) error {
	defer t.unlock()
	return t.ReadOnlyLogTreeTX.Commit(ctx)
}

func (t *lockedTX) Close() error {
	defer t.unlock()
	return t.ReadOnlyLogTreeTX.Close()
}
