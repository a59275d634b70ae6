// Command bench measures Berth against Debian's containerd on this host,
// side by side in one run: both daemons on temporary roots and sockets,
// the same image, the same ctr commands (ours against berthd, Debian's
// against containerd), rounds interleaved so drift hits both alike. It
// prints medians and the Berth/containerd ratio per benchmark, with
// `runc run` alone as the floor neither daemon can beat.
//
// Run it as root through `make bench` (contrib/bench.sh), which builds the
// binaries first. Rounds and sizes come from flags or BENCH_* variables.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/client"
)

const (
	benchNamespace = "bench"
	smallImage     = "docker.io/library/busybox:latest"
	bigImage       = "docker.io/library/bench-big:latest"
)

type config struct {
	bin           string // our binaries
	containerd    string
	containerdCtr string
	rounds        int
	importRounds  int
	pullRounds    int
	registry      string // Debian's docker-registry
	concurrent    int
	containers    int
	imageMB       int
	runs          int
	keep          bool
	jsonOut       string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// envCount is envInt that also takes 0 (skip the benchmark).
func envCount(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func main() {
	var cfg config
	wd, _ := os.Getwd()
	flag.StringVar(&cfg.bin, "bin", filepath.Join(wd, "bin"), "directory with berthd, ctr, containerd-shim-berth-v2 and berth-testimage")
	flag.StringVar(&cfg.containerd, "containerd", "/usr/bin/containerd", "Debian's containerd")
	flag.StringVar(&cfg.containerdCtr, "containerd-ctr", "/usr/bin/ctr", "Debian's ctr")
	flag.IntVar(&cfg.rounds, "rounds", envInt("BENCH_ROUNDS", 5), "rounds of the latency and concurrency benchmarks (BENCH_ROUNDS)")
	flag.IntVar(&cfg.importRounds, "import-rounds", envInt("BENCH_IMPORT_ROUNDS", 2), "rounds of the big image import (BENCH_IMPORT_ROUNDS)")
	flag.IntVar(&cfg.pullRounds, "pull-rounds", envCount("BENCH_PULL_ROUNDS", 2), "rounds of the big image pull from a loopback registry, 0 to skip (BENCH_PULL_ROUNDS)")
	flag.StringVar(&cfg.registry, "registry", "/usr/bin/docker-registry", "Debian's docker-registry, for the pull benchmark")
	flag.IntVar(&cfg.concurrent, "concurrent", envInt("BENCH_CONCURRENT", 20), "containers started at once (BENCH_CONCURRENT)")
	flag.IntVar(&cfg.containers, "containers", envInt("BENCH_CONTAINERS", 1000), "container records for the listing benchmark (BENCH_CONTAINERS)")
	flag.IntVar(&cfg.runs, "runs", envInt("BENCH_RUNS", 3), "timed `ctr run --rm` per daemon per round (BENCH_RUNS)")
	flag.IntVar(&cfg.imageMB, "image-mb", envInt("BENCH_IMAGE_MB", 200), "size of the big image in MB (BENCH_IMAGE_MB)")
	flag.BoolVar(&cfg.keep, "keep", os.Getenv("BENCH_KEEP") != "", "keep the temp dirs and daemon logs (BENCH_KEEP)")
	flag.StringVar(&cfg.jsonOut, "json", os.Getenv("BENCH_JSON"), "also write the raw samples as JSON to this file (BENCH_JSON)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// prerequisites says everything that is missing at once.
func prerequisites(cfg config) error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (containers need mounts, namespaces and cgroups)")
	}
	for _, b := range []string{"berthd", "ctr", "containerd-shim-berth-v2", "berth-testimage"} {
		if _, err := os.Stat(filepath.Join(cfg.bin, b)); err != nil {
			missing = append(missing, filepath.Join(cfg.bin, b)+" (make build)")
		}
	}
	for _, b := range []string{cfg.containerd, cfg.containerdCtr} {
		if _, err := os.Stat(b); err != nil {
			missing = append(missing, b+" (apt-get install containerd)")
		}
	}
	for _, b := range []string{"containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b+" on PATH (apt-get install containerd runc)")
		}
	}
	if _, err := os.Stat(cfg.registry); err != nil && cfg.pullRounds > 0 {
		missing = append(missing, cfg.registry+" (apt-get install docker-registry, or BENCH_PULL_ROUNDS=0)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "/bin/busybox (apt-get install busybox-static)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing prerequisites:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

type bench struct {
	cfg        config
	work       string // roots, images, bundles
	state      string // sockets, daemon state (short paths under /run)
	berth      *daemon
	containerd *daemon
	registry   *registry // for the pull benchmark, once started
	rows       []*Row
	byName     map[string]*Row
}

func (b *bench) row(name string, unit Unit) *Row {
	if r, ok := b.byName[name]; ok {
		return r
	}
	r := &Row{Name: name, Unit: unit}
	b.rows = append(b.rows, r)
	b.byName[name] = r
	return r
}

func (b *bench) add(name string, unit Unit, d *daemon, v float64) {
	r := b.row(name, unit)
	if d == b.berth {
		r.Berth = append(r.Berth, v)
	} else {
		r.Containerd = append(r.Containerd, v)
	}
}

// pair returns both daemons, in an order that alternates with the round so
// that neither always runs first (warm caches, CPU frequency).
func (b *bench) pair(round int) []*daemon {
	if round%2 == 0 {
		return []*daemon{b.berth, b.containerd}
	}
	return []*daemon{b.containerd, b.berth}
}

func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, cfg config) (retErr error) {
	if err := prerequisites(cfg); err != nil {
		return err
	}
	b := &bench{cfg: cfg, byName: map[string]*Row{}}
	var err error
	if b.work, err = os.MkdirTemp("/var/tmp", "berth-bench-"); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	if b.state, err = os.MkdirTemp("/run", "bb-"); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	defer b.cleanup(&retErr)
	start := time.Now()

	logf("building images (busybox, and %d MB in 5 layers)", cfg.imageMB)
	small := filepath.Join(b.work, "busybox.tar")
	big := filepath.Join(b.work, "big.tar")
	if err := b.testimage(ctx, "-o", small); err != nil {
		return err
	}
	// The busybox base layer plus four random ones: five layers.
	if err := b.testimage(ctx, "-name", bigImage, "-size-mb", strconv.Itoa(cfg.imageMB), "-random-layers", "4", "-o", big); err != nil {
		return err
	}

	// The big image is hundreds of MB of fresh dirty pages: write them
	// back now, or their writeback stalls the daemons' fsyncs during the
	// first timed rounds.
	unix.Sync()

	if err := b.startDaemons(ctx); err != nil {
		return err
	}
	for _, d := range []*daemon{b.berth, b.containerd} {
		if _, err := d.ctr(ctx, "images", "import", small); err != nil {
			return err
		}
	}
	bundle, err := b.runcBundle()
	if err != nil {
		return err
	}

	logf("idle memory")
	time.Sleep(2 * time.Second)
	for i := 0; i < 3; i++ {
		for _, d := range b.pair(i) {
			v, err := d.rss()
			if err != nil {
				return fmt.Errorf("%s rss: %w", d.name, err)
			}
			b.add("daemon RSS, idle", Bytes, d, v)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// One untimed run per daemon first: the first container pays for
	// cold caches (shim and runc binaries, the image's files, the daemons'
	// first-use setup) that no later run sees.
	logf("warm-up")
	for _, d := range []*daemon{b.berth, b.containerd} {
		if _, err := d.ctr(ctx, "run", "--rm", smallImage, "warm-up", "true"); err != nil {
			return err
		}
	}
	for round := 0; round < cfg.rounds; round++ {
		logf("round %d/%d", round+1, cfg.rounds)
		if err := b.latencyRound(ctx, round, bundle); err != nil {
			return err
		}
		if err := b.concurrentRound(ctx, round); err != nil {
			return err
		}
	}
	for round := 0; round < cfg.importRounds; round++ {
		logf("import round %d/%d", round+1, cfg.importRounds)
		if err := b.importRound(ctx, round, big); err != nil {
			return err
		}
	}
	if cfg.pullRounds > 0 {
		if err := b.pullBench(ctx, big); err != nil {
			return err
		}
	}
	logf("listing %d containers", cfg.containers)
	if err := b.listBench(ctx); err != nil {
		return err
	}

	fmt.Printf("\nBerth vs containerd %s on %s, %d CPUs, kernel %s; medians of %d rounds (%d for import, %d for pull); %s total\n\n",
		containerdVersion(cfg.containerd), hostname(), runtime.NumCPU(), kernel(), cfg.rounds, cfg.importRounds, cfg.pullRounds, time.Since(start).Round(time.Second))
	rows := make([]Row, 0, len(b.rows))
	for _, r := range b.rows {
		rows = append(rows, *r)
	}
	if err := WriteTable(os.Stdout, rows); err != nil {
		return err
	}
	fmt.Println("\nratio < 1: Berth is faster or smaller. Each daemon is driven by its own ctr (bin/ctr, /usr/bin/ctr).")
	if cfg.jsonOut != "" {
		data, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(cfg.jsonOut, data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", cfg.jsonOut, err)
		}
	}
	return nil
}

func (b *bench) testimage(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, filepath.Join(b.cfg.bin, "berth-testimage"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("berth-testimage %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *bench) startDaemons(ctx context.Context) error {
	ours := filepath.Join(b.work, "berth")
	theirs := filepath.Join(b.work, "containerd")
	for _, dir := range []string{ours, theirs} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	b.berth = &daemon{name: "berth", ctrBin: filepath.Join(b.cfg.bin, "ctr"), address: filepath.Join(b.state, "b.sock"),
		root: filepath.Join(ours, "root"), state: filepath.Join(b.state, "b"), logPath: filepath.Join(ours, "berthd.log")}
	b.containerd = &daemon{name: "containerd", ctrBin: b.cfg.containerdCtr, address: filepath.Join(b.state, "c.sock"),
		root: filepath.Join(theirs, "root"), state: filepath.Join(b.state, "c"), logPath: filepath.Join(theirs, "containerd.log")}

	bcfg := filepath.Join(ours, "config.toml")
	if err := os.WriteFile(bcfg, []byte("version = 2\n"), 0o644); err != nil {
		return err
	}
	// CRI would want CNI; the opt plugin would write to /opt.
	ccfg := filepath.Join(theirs, "config.toml")
	if err := os.WriteFile(ccfg, []byte(fmt.Sprintf(`version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(theirs, "opt"))), 0o644); err != nil {
		return err
	}
	logf("starting berthd and containerd")
	ourEnv := append(os.Environ(), "PATH="+b.cfg.bin+":"+os.Getenv("PATH"))
	if err := b.berth.start(ctx, filepath.Join(b.cfg.bin, "berthd"), []string{"--config", bcfg, "--root", b.berth.root,
		"--state", b.berth.state, "--address", b.berth.address, "--log-level", "warn"}, ourEnv); err != nil {
		return err
	}
	return b.containerd.start(ctx, b.cfg.containerd, []string{"--config", ccfg, "--root", b.containerd.root,
		"--state", b.containerd.state, "--address", b.containerd.address, "--log-level", "warn"}, os.Environ())
}

// runcBundle writes a bundle running `true` from a busybox rootfs.
func (b *bench) runcBundle() (string, error) {
	bundle := filepath.Join(b.work, "runc-bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return "", err
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), data, 0o755); err != nil {
		return "", err
	}
	for _, a := range []string{"sh", "true"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			return "", err
		}
	}
	if out, err := exec.Command("runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return "", fmt.Errorf("runc spec: %w: %s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return "", fmt.Errorf("runc spec output: %w", err)
	}
	spec.Process.Terminal = false
	spec.Process.Args = []string{"true"}
	if raw, err = json.Marshal(&spec); err != nil {
		return "", err
	}
	return bundle, os.WriteFile(path, raw, 0o644)
}

// latencyRound: one `ctr run --rm IMAGE ID true` and one create, start,
// kill, delete cycle per daemon, and one `runc run` alone.
func (b *bench) latencyRound(ctx context.Context, round int, bundle string) error {
	// Several runs per round, alternating daemons: one run is ~0.1 s and
	// swings by tens of ms on a busy host, so five samples were too few.
	for i := 0; i < b.cfg.runs; i++ {
		for _, d := range b.pair(round + i) {
			b.settle()
			v, err := d.timed(ctx, "run", "--rm", smallImage, fmt.Sprintf("run-%d-%d", round, i), "true")
			if err != nil {
				return err
			}
			b.add("ctr run --rm IMAGE true", Seconds, d, v)
		}
	}
	for _, d := range b.pair(round) {
		id := fmt.Sprintf("cycle-%d", round)
		b.settle()
		start := time.Now()
		for _, args := range [][]string{
			{"containers", "create", smallImage, id, "sleep", "600"},
			{"tasks", "start", "-d", id},
			{"tasks", "kill", "-s", "SIGKILL", id},
			{"tasks", "rm", "-f", id},
			{"containers", "rm", id},
		} {
			if _, err := d.ctr(ctx, args...); err != nil {
				return err
			}
		}
		b.add("create+start+kill+delete (5 ctr calls)", Seconds, d, time.Since(start).Seconds())
	}
	runcRoot := filepath.Join(b.state, "runc")
	b.settle()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "runc", "--root", runcRoot, "run", "--bundle", bundle, fmt.Sprintf("bench-runc-%d", round))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("runc run: %w: %s", err, out)
	}
	b.row("runc run true (floor)", Seconds).Floor = append(b.row("runc run true (floor)", Seconds).Floor, time.Since(start).Seconds())
	return nil
}

// settle waits until what the previous measurement left behind is done,
// so that its cleanup is not billed to the next one: shims of either
// daemon still exiting (a removed task's shim exits after the reply), and
// dirty pages (deleted snapshots, bolt pages) not yet written back. Without
// it the rounds after a concurrent round ran tens of ms slower than the
// first.
func (b *bench) settle() {
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range []*daemon{b.berth, b.containerd} {
		for len(d.busyShimPids()) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	unix.Sync()
	time.Sleep(50 * time.Millisecond)
}

// concurrentRound starts cfg.concurrent detached containers at once per
// daemon, measures the wall time and the memory with them running, then
// removes them (untimed).
func (b *bench) concurrentRound(ctx context.Context, round int) error {
	n := b.cfg.concurrent
	name := fmt.Sprintf("%d concurrent ctr run -d", n)
	for _, d := range b.pair(round) {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("conc-%d-%d", round, i)
		}
		b.settle()
		start := time.Now()
		err := parallel(ctx, ids, n, func(id string) error {
			_, err := d.ctr(ctx, "run", "-d", smallImage, id, "sleep", "600")
			return err
		})
		took := time.Since(start).Seconds()
		if err != nil {
			d.removeAll(context.WithoutCancel(ctx))
			return err
		}
		b.add(name, Seconds, d, took)
		time.Sleep(500 * time.Millisecond) // let start-up garbage settle
		rss, err := d.rss()
		if err != nil {
			return fmt.Errorf("%s rss: %w", d.name, err)
		}
		b.add(fmt.Sprintf("daemon RSS, %d tasks running", n), Bytes, d, rss)
		// Task shims only; berthd's spare shim (one per node, started
		// ahead of the next task) is a row of its own, so neither hides
		// in the other.
		shims := d.busyShimPids()
		var total float64
		for _, pid := range shims {
			v, err := pidRSS(pid)
			if err == nil {
				total += v
			}
		}
		if len(shims) > 0 {
			b.add("shim RSS per task", Bytes, d, total/float64(n))
		}
		if len(shims) != n {
			b.row("shim RSS per task", Bytes).Note = fmt.Sprintf("%s: %d shims for %d tasks", d.name, len(shims), n)
		}
		if all := d.shimPids(); len(all) > len(shims) {
			var spare float64
			for _, pid := range all {
				if !slices.Contains(shims, pid) {
					v, _ := pidRSS(pid)
					spare += v
				}
			}
			b.add("spare shim RSS (one per node, idle)", Bytes, d, spare)
		}
		if err := d.removeAll(ctx); err != nil {
			return err
		}
	}
	return nil
}

// importRound imports the big image into each daemon (unpacking it), then
// removes it and waits until the garbage collector has taken its blobs
// and snapshots so that the next round imports from scratch.
func (b *bench) importRound(ctx context.Context, round int, archive string) error {
	for _, d := range b.pair(round) {
		blobs, snaps, err := storageCounts(ctx, d)
		if err != nil {
			return err
		}
		v, err := d.timed(ctx, "images", "import", archive)
		if err != nil {
			return err
		}
		b.add(fmt.Sprintf("import+unpack %d MB, 5 layers", b.cfg.imageMB), Seconds, d, v)
		if _, err := d.ctr(ctx, "images", "rm", "--sync", bigImage); err != nil {
			return err
		}
		if err := waitCollected(ctx, d, blobs, snaps); err != nil {
			return err
		}
	}
	return nil
}

// waitCollected waits until the garbage collector has brought the
// daemon's store down to at most blobs blobs and snaps snapshots.
func waitCollected(ctx context.Context, d *daemon, blobs, snaps int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		nb, ns, err := storageCounts(ctx, d)
		if err != nil {
			return err
		}
		if nb <= blobs && ns <= snaps {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: image not collected after rm --sync: %d blobs (want at most %d), %d snapshots (want at most %d)", d.name, nb, blobs, ns, snaps)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pullBench starts a loopback registry, pushes the big image to it once
// (our ctr, from berthd), then per round has each daemon pull it with its
// own ctr — fetch all blobs over HTTP and unpack them into overlayfs —
// from an empty store, and removes it again (untimed).
func (b *bench) pullBench(ctx context.Context, archive string) error {
	logf("starting docker-registry, pushing the big image")
	var err error
	if b.registry, err = startRegistry(ctx, b.cfg.registry, filepath.Join(b.work, "registry")); err != nil {
		return err
	}
	defer b.registry.stop()
	ref := b.registry.host + "/bench/big:latest"
	if _, err := b.berth.ctr(ctx, "images", "import", "--no-unpack", archive); err != nil {
		return err
	}
	if _, err := b.berth.ctr(ctx, "images", "push", "--plain-http", ref, bigImage); err != nil {
		return err
	}
	if _, err := b.berth.ctr(ctx, "images", "rm", "--sync", bigImage); err != nil {
		return err
	}
	// The big image's base layer is busybox's: remove busybox too, so
	// that every pull starts from an empty store and downloads and
	// unpacks all five layers. Nothing after this needs an image.
	for _, d := range []*daemon{b.berth, b.containerd} {
		if _, err := d.ctr(ctx, "images", "rm", "--sync", smallImage); err != nil {
			return err
		}
		if err := waitCollected(ctx, d, 0, 0); err != nil {
			return err
		}
	}
	unix.Sync()

	name := fmt.Sprintf("pull+unpack %d MB, 5 layers, loopback registry", b.cfg.imageMB)
	for round := 0; round < b.cfg.pullRounds; round++ {
		logf("pull round %d/%d", round+1, b.cfg.pullRounds)
		for _, d := range b.pair(round) {
			// Really nothing left: not a blob the pull could skip
			// downloading, not a snapshot it could skip unpacking.
			if nb, ns, err := storageCounts(ctx, d); err != nil {
				return err
			} else if nb != 0 || ns != 0 {
				return fmt.Errorf("%s: %d blobs and %d snapshots left before the pull, want none", d.name, nb, ns)
			}
			b.settle()
			v, err := d.timed(ctx, "images", "pull", "--plain-http", ref)
			if err != nil {
				return err
			}
			// Manifest, config and five layers at least (an index too
			// where the pusher made one), five snapshots unpacked.
			nb, ns, err := storageCounts(ctx, d)
			if err != nil {
				return err
			}
			if nb < 7 || ns < 5 {
				return fmt.Errorf("%s: the pull left %d blobs and %d snapshots, want at least 7 and 5", d.name, nb, ns)
			}
			b.add(name, Seconds, d, v)
			if _, err := d.ctr(ctx, "images", "rm", "--sync", ref); err != nil {
				return err
			}
			if err := waitCollected(ctx, d, 0, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

func storageCounts(ctx context.Context, d *daemon) (blobs, snaps int, err error) {
	out, err := d.ctr(ctx, "content", "ls", "-q")
	if err != nil {
		return 0, 0, err
	}
	blobs = len(strings.Fields(out))
	out, err = d.ctr(ctx, "snapshots", "ls")
	if err != nil {
		return 0, 0, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return blobs, len(lines) - 1, nil
}

// listBench creates cfg.containers records in each daemon (through our Go
// client, which speaks the same API to both; untimed) and times `ctr c ls`.
func (b *bench) listBench(ctx context.Context) error {
	for _, d := range []*daemon{b.berth, b.containerd} {
		c, err := client.New(d.address, client.WithDefaultNamespace(benchNamespace))
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		spec := &specs.Spec{Version: specs.Version, Process: &specs.Process{Args: []string{"true"}, Cwd: "/"}, Root: &specs.Root{Path: "rootfs"}}
		ids := make([]int, b.cfg.containers)
		for i := range ids {
			ids[i] = i
		}
		err = parallel(ctx, ids, 8, func(i int) error {
			_, err := c.NewContainer(ctx, fmt.Sprintf("list-%04d", i), client.WithSpec(spec), client.WithRuntime(client.DefaultRuntime, nil))
			return err
		})
		c.Close()
		if err != nil {
			return fmt.Errorf("%s: create records: %w", d.name, err)
		}
	}
	name := fmt.Sprintf("ctr c ls, %d containers", b.cfg.containers)
	for round := 0; round < b.cfg.rounds; round++ {
		for _, d := range b.pair(round) {
			start := time.Now()
			out, err := d.ctr(ctx, "containers", "ls")
			if err != nil {
				return err
			}
			b.add(name, Seconds, d, time.Since(start).Seconds())
			if got := len(strings.Split(strings.TrimSpace(out), "\n")) - 1; got != b.cfg.containers {
				return fmt.Errorf("%s: ctr c ls listed %d containers, want %d", d.name, got, b.cfg.containers)
			}
		}
	}
	return nil
}

// cleanup stops both daemons and removes what they and the bench made,
// also after a failure or an interrupt.
func (b *bench) cleanup(retErr *error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, d := range []*daemon{b.berth, b.containerd} {
		if d == nil {
			continue
		}
		if d.cmd != nil {
			d.removeAll(ctx)
		}
		d.stop()
		d.killShims()
		if *retErr != nil {
			fmt.Fprintf(os.Stderr, "--- %s log (%s), last lines ---\n%s\n", d.name, d.logPath, tail(d.logPath))
		}
	}
	b.registry.stop()
	if *retErr != nil && b.registry != nil {
		fmt.Fprintf(os.Stderr, "--- docker-registry log (%s), last lines ---\n%s\n", b.registry.logPath, tail(b.registry.logPath))
	}
	// runc state of containers a failed run left behind.
	roots := []string{filepath.Join(b.state, "runc"), "/run/berth/runc/" + benchNamespace, "/run/containerd/runc/" + benchNamespace}
	if b.berth != nil {
		roots = append(roots, filepath.Join(b.berth.state, "runc", benchNamespace))
	}
	for _, root := range roots {
		out, _ := exec.Command("runc", "--root", root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			exec.Command("runc", "--root", root, "delete", "-f", id).Run()
		}
		os.Remove(root) // only when empty: never another user's state
	}
	unmountUnder(b.state)
	unmountUnder(b.work)
	os.RemoveAll(b.state)
	if b.cfg.keep {
		fmt.Fprintf(os.Stderr, "kept %s\n", b.work)
		return
	}
	if err := os.RemoveAll(b.work); err != nil && *retErr == nil {
		*retErr = fmt.Errorf("remove %s: %w", b.work, err)
	}
}

func containerdVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(out))
	if len(f) >= 3 {
		return f[2]
	}
	return strings.TrimSpace(string(out))
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
