package leases

import (
	"context"
	"errors"
	"testing"

	api "github.com/berth-containers/berth/api/services/leases/v1"
	"github.com/berth-containers/berth/metadata"
	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/namespaces"
)

// TestDeleteCollects: a sync delete waits for a collection; any other only
// asks the scheduler for one, so a burst of deletes costs one collection.
func TestDeleteCollects(t *testing.T) {
	for _, tc := range []struct {
		name               string
		sync               bool
		syncErr            error
		wantSync, wantTrig int
		wantErr            bool
	}{
		{name: "async triggers", wantTrig: 1},
		{name: "sync collects", sync: true, wantSync: 1},
		{name: "sync collection error reaches the caller", sync: true, syncErr: errors.New("boom"), wantSync: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := metadata.NewDB(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var syncs, trigs int
			s := &service{store: metadata.NewLeaseStore(db), gc: collector{
				trigger: func() { trigs++ },
				sync:    func(context.Context) error { syncs++; return tc.syncErr },
			}}
			ctx := namespaces.WithNamespace(context.Background(), "test")
			if _, err := s.Create(ctx, &api.CreateRequest{Id: "l1"}); err != nil {
				t.Fatal(err)
			}
			_, err = s.Delete(ctx, &api.DeleteRequest{Id: "l1", Sync: tc.sync})
			if (err != nil) != tc.wantErr {
				t.Fatalf("delete: %v, want error %v", err, tc.wantErr)
			}
			if syncs != tc.wantSync || trigs != tc.wantTrig {
				t.Fatalf("sync collections %d, triggers %d; want %d, %d", syncs, trigs, tc.wantSync, tc.wantTrig)
			}
		})
	}
	// Deleting a lease that is not there collects nothing.
	db, err := metadata.NewDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	called := false
	s := &service{store: metadata.NewLeaseStore(db), gc: collector{trigger: func() { called = true }, sync: func(context.Context) error { called = true; return nil }}}
	_, err = s.Delete(namespaces.WithNamespace(context.Background(), "test"), &api.DeleteRequest{Id: "missing"})
	if !errdefs.IsNotFound(errdefs.FromGRPC(err)) || called {
		t.Fatalf("delete of a missing lease: %v, collected %v", err, called)
	}
}

// TestCreateWithoutID: a create without an id gets a random one from the
// service, as from containerd's, not InvalidArgument; each is different
// and the lease is there under the id the response names.
func TestCreateWithoutID(t *testing.T) {
	db, err := metadata.NewDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &service{store: metadata.NewLeaseStore(db), gc: directCollector(db)}
	ctx := namespaces.WithNamespace(context.Background(), "test")
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		r, err := s.Create(ctx, &api.CreateRequest{Labels: map[string]string{"a": "b"}})
		if err != nil {
			t.Fatalf("create without id: %v", err)
		}
		id := r.GetLease().GetId()
		if id == "" || seen[id] || r.GetLease().GetLabels()["a"] != "b" {
			t.Fatalf("lease %v (seen %v)", r.GetLease(), seen)
		}
		seen[id] = true
	}
	list, err := s.List(ctx, &api.ListRequest{})
	if err != nil || len(list.Leases) != 3 {
		t.Fatalf("list: %v %v", list, err)
	}
	for _, l := range list.Leases {
		if !seen[l.Id] {
			t.Fatalf("listed lease %q was not created", l.Id)
		}
	}
}
