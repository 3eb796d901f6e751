// Command hotapp is a small service with one obvious hot path that profiles itself with
// profefe's Go agent and sends the profiles to a profefe-compatible collector.
//
//	cd examples/hotapp && go run . -collector http://127.0.0.1:10100
//
// Its CPU profile is dominated by handleBatch -> checksumRecords (SHA-256 over every record),
// with sortRecords and compressRecords beside it; its heap profile by buildRecords.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/profefe/profefe/agent"
)

type config struct {
	collector   string
	service     string
	labels      string
	tick        time.Duration
	cpuDuration time.Duration
	runFor      time.Duration
	batchSize   int
}

func main() {
	cfg := parseFlags()
	log.SetFlags(log.LstdFlags | log.LUTC)

	labels, err := splitLabels(cfg.labels)
	if err != nil {
		log.Fatalf("hotapp: %v", err)
	}

	// The agent takes a CPU profile of cpuDuration, then a heap profile, then sleeps for tick
	// (plus the 1-9 s of jitter it adds to every wait), and again.
	pa, err := agent.Start(cfg.collector, cfg.service,
		agent.WithCPUProfile(cfg.cpuDuration),
		agent.WithHeapProfile(),
		agent.WithTickInterval(cfg.tick),
		agent.WithLabels(labels...),
		agent.WithLogger(func(format string, v ...interface{}) { log.Printf("agent: "+format, v...) }),
	)
	if err != nil {
		log.Fatalf("hotapp: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.runFor)
		defer cancel()
	}

	log.Printf("hotapp: sending profiles of %q to %s every %s", cfg.service, cfg.collector, cfg.tick)
	batches := serve(ctx, cfg.batchSize)
	log.Printf("hotapp: stopping after %d batches", batches)

	if err := pa.Stop(); err != nil {
		log.Printf("hotapp: stopping the agent: %v", err)
	}
}

func parseFlags() config {
	var cfg config
	flag.StringVar(&cfg.collector, "collector", envOr("PROFEFE_COLLECTOR", "http://127.0.0.1:10100"),
		"profefe-compatible collector URL (env PROFEFE_COLLECTOR)")
	flag.StringVar(&cfg.service, "service", "hotapp", "service name the profiles are sent under")
	flag.StringVar(&cfg.labels, "labels", "", "labels sent with every profile, `k=v,k=v`")
	flag.DurationVar(&cfg.tick, "tick", time.Minute, "pause between two rounds of profiles")
	flag.DurationVar(&cfg.cpuDuration, "cpu-duration", 10*time.Second, "length of each CPU profile")
	flag.DurationVar(&cfg.runFor, "run-for", 0, "stop after this long (0: until SIGINT/SIGTERM)")
	flag.IntVar(&cfg.batchSize, "batch", 2000, "records per batch")
	flag.Parse()
	return cfg
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// splitLabels turns "k=v,k=v" into the key, value, key, value... list agent.WithLabels expects.
func splitLabels(raw string) ([]string, error) {
	var kv []string
	for _, pair := range strings.Split(raw, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("label %q is not k=v", pair)
		}
		kv = append(kv, strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return kv, nil
}

// serve handles batches until ctx is done; the number handled.
func serve(ctx context.Context, batchSize int) int {
	rng := rand.New(rand.NewSource(1))
	// Recent batches stay reachable so the heap profile has live memory to show.
	recent := make([][]record, 8)
	n := 0
	for ctx.Err() == nil {
		recs := buildRecords(rng, batchSize)
		handleBatch(recs)
		recent[n%len(recent)] = recs
		n++
	}
	return n
}

type record struct {
	key     uint64
	payload []byte
	sum     [sha256.Size]byte
}

func buildRecords(rng *rand.Rand, n int) []record {
	recs := make([]record, n)
	for i := range recs {
		recs[i].key = rng.Uint64()
		recs[i].payload = make([]byte, 256+rng.Intn(768))
		rng.Read(recs[i].payload)
	}
	return recs
}

// handleBatch is the hot path: most of the time goes to checksumRecords.
func handleBatch(recs []record) {
	checksumRecords(recs)
	sortRecords(recs)
	compressRecords(recs)
}

// checksumRecords hashes each payload, then re-hashes the digest a few rounds; it is meant to
// be the widest frame of the CPU profile.
func checksumRecords(recs []record) {
	for i := range recs {
		sum := sha256.Sum256(recs[i].payload)
		for round := 0; round < 16; round++ {
			sum = sha256.Sum256(sum[:])
		}
		recs[i].sum = sum
	}
}

func sortRecords(recs []record) {
	sort.Slice(recs, func(i, j int) bool {
		return bytes.Compare(recs[i].sum[:], recs[j].sum[:]) < 0
	})
}

func compressRecords(recs []record) int {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	var key [8]byte
	for i := range recs {
		binary.LittleEndian.PutUint64(key[:], recs[i].key)
		zw.Write(key[:])
		zw.Write(recs[i].payload[:64])
	}
	zw.Close()
	return buf.Len()
}
