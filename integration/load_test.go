package integration

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-containers/berth/client"
	"github.com/berth-containers/berth/metadata"
)

func loadClient(t *testing.T, d *daemon) *client.Client {
	t.Helper()
	c, err := client.New(d.Address, client.WithDefaultNamespace("default"), client.WithTimeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

var loadSpec = &specs.Spec{Version: specs.Version, Process: &specs.Process{Args: []string{"true"}, Cwd: "/"}, Root: &specs.Root{Path: "rootfs"}}

func createRecord(ctx context.Context, c *client.Client, id string) error {
	_, err := c.NewContainer(ctx, id, client.WithSpec(loadSpec), client.WithRuntime(client.DefaultRuntime, nil))
	return err
}

func deleteRecord(ctx context.Context, c *client.Client, id string) error {
	ct, err := c.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	return ct.Delete(ctx)
}

// checkBolt opens the metadata database as berthd would and runs bbolt's
// consistency check over every page.
func checkBolt(t *testing.T, root string) {
	t.Helper()
	path := filepath.Join(root, "io.containerd.metadata.v1.bolt", metadata.DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open %s after kill -9: %v", path, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("bbolt check of %s after kill -9: %v", path, err)
	}
}

// TestLoadKill9DuringRecords kills berthd with SIGKILL at a random point
// while a client creates and deletes container records, several times
// over. Every create (and delete) the daemon acknowledged must survive the
// crash, and the database must open and check clean each time.
func TestLoadKill9DuringRecords(t *testing.T) {
	const (
		rounds = 20
		n      = 500
	)
	d := newDaemon(t, "")
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	present := map[string]bool{} // id -> must exist (true) or must not (false)
	var maybe []string           // ops in flight at the kill: either outcome is fine
	for r := 0; r < rounds; r++ {
		c := loadClient(t, d)
		ctx, cancel := context.WithCancel(context.Background())
		type ack struct {
			id      string
			created bool
		}
		acks := make(chan ack, 2*n)
		inflight := make(chan string, 1)
		done := make(chan int)
		go func() {
			ops := 0
			defer func() { close(acks); done <- ops }()
			for i := 0; i < n; i++ {
				id := fmt.Sprintf("r%d-c%d", r, i)
				inflight <- id
				if err := createRecord(ctx, c, id); err != nil {
					return
				}
				<-inflight
				acks <- ack{id, true}
				ops++
				if i%4 == 3 {
					victim := fmt.Sprintf("r%d-c%d", r, i-2)
					inflight <- victim
					if err := deleteRecord(ctx, c, victim); err != nil {
						return
					}
					<-inflight
					acks <- ack{victim, false}
					ops++
				}
			}
		}()
		// Somewhere within the run (and now and then after it ended).
		time.Sleep(time.Duration(5+rng.Intn(1200)) * time.Millisecond)
		d.Kill9()
		ops := <-done
		cancel()
		c.Close()
		for a := range acks {
			present[a.id] = a.created
		}
		select {
		case id := <-inflight:
			maybe = append(maybe, id)
			delete(present, id)
		default:
		}
		t.Logf("round %d: killed after %d acknowledged ops", r, ops)
		checkBolt(t, d.Root)

		d.Start()
		c = loadClient(t, d)
		list, err := c.Containers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		have := map[string]bool{}
		for _, ct := range list {
			have[ct.ID] = true
		}
		for id, want := range present {
			if have[id] != want {
				t.Fatalf("round %d: container %s exists=%v after kill -9, but its %s was acknowledged", r, id, have[id],
					map[bool]string{true: "create", false: "delete"}[want])
			}
		}
		for id := range have {
			if _, known := present[id]; !known && !contains(maybe, id) {
				t.Fatalf("round %d: container %s exists but was never created", r, id)
			}
		}
	}
	d.Stop()
	checkBolt(t, d.Root)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestLoadConcurrentList runs 50 `ctr c ls` processes at once against 200
// records; all must succeed and see every record, and the daemon's
// goroutines must return to where they were.
func TestLoadConcurrentList(t *testing.T) {
	const (
		records = 200
		clients = 50
	)
	d, sock := newDebugDaemon(t)
	c := loadClient(t, d)
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < records; i++ {
		if err := createRecord(ctx, c, fmt.Sprintf("rec-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	d.ctr("c", "ls", "-q")
	baseline := goroutines(t, sock)

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := d.ctrErr("c", "ls", "-q")
			if err != nil {
				errs <- fmt.Errorf("ctr c ls: %v: %s", err, out)
				return
			}
			if got := len(strings.Fields(out)); got != records {
				errs <- fmt.Errorf("ctr c ls listed %d containers, want %d", got, records)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The records' create/delete churn must not leave goroutines either.
	for i := 0; i < records; i++ {
		if err := deleteRecord(ctx, c, fmt.Sprintf("rec-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := settleGoroutines(t, sock, baseline, 5)
	t.Logf("goroutines: %d before the load, %d after", baseline, got)
}

// TestLoadTasks starts and stops 200 containers from 20 concurrent
// clients (each runs 10 detached, then force-deletes them) and checks that
// nothing is left: no tasks, shims, bundles or mounts, and goroutines back
// near the baseline.
func TestLoadTasks(t *testing.T) {
	const (
		clients   = 20
		perClient = 10
	)
	d, sock := newDebugDaemon(t)
	rootfs := busyboxRootfs(t)
	d.ctr("version")
	baseline := goroutines(t, sock)
	start := time.Now()

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var ids []string
			for j := 0; j < perClient; j++ {
				id := fmt.Sprintf("load-%d-%d", i, j)
				if out, err := d.ctrErr("run", "-d", "--rootfs", rootfs, id, "sleep", "1000"); err != nil {
					errs <- fmt.Errorf("run %s: %v: %s", id, err, out)
					return
				}
				ids = append(ids, id)
			}
			if out, err := d.ctrErr(append([]string{"t", "rm", "-f"}, ids...)...); err != nil {
				errs <- fmt.Errorf("t rm -f: %v: %s", err, out)
				return
			}
			if out, err := d.ctrErr(append([]string{"c", "rm"}, ids...)...); err != nil {
				errs <- fmt.Errorf("c rm: %v: %s", err, out)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d containers started and stopped by %d clients in %v", clients*perClient, clients, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		return
	}
	if out := strings.TrimSpace(d.ctr("t", "ls", "-q")); out != "" {
		t.Fatalf("tasks left: %s", out)
	}
	if out := strings.TrimSpace(d.ctr("c", "ls", "-q")); out != "" {
		t.Fatalf("containers left: %s", out)
	}
	waitFor(t, func() bool {
		f := scrape(t, sock)
		return metricValue(f, "berth_tasks_running", "berth_tasks_running") == 0 &&
			metricValue(f, "berth_shims", "berth_shims", "what", "count") == 0
	})
	fams := scrape(t, sock)
	if got := metricValue(fams, "berth_task_operation_seconds", "berth_task_operation_seconds_count", "op", "start"); got != clients*perClient {
		t.Errorf("task starts timed: %v, want %d", got, clients*perClient)
	}
	assertNoBundles(t, d)
	got := settleGoroutines(t, sock, baseline, 10)
	t.Logf("goroutines: %d before the load, %d after", baseline, got)
}
