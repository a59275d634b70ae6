package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-containers/berth/pkg/errdefs"
	"github.com/berth-containers/berth/pkg/filters"
	"github.com/berth-containers/berth/pkg/namespaces"
	"github.com/berth-containers/berth/pkg/typeurl"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type jsonEvent struct {
	ContainerID string            `json:"container_id"`
	Labels      map[string]string `json:"labels"`
}

func init() { typeurl.Register(jsonEvent{}, "berth.test.JSONEvent") }

func nsCtx(t *testing.T, ns string) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return namespaces.WithNamespace(ctx, ns)
}

func recv(t *testing.T, ch <-chan *Envelope) *Envelope {
	t.Helper()
	select {
	case env, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return env
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

func TestValidateTopic(t *testing.T) {
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"/tasks/exit", true},
		{"/containers/create", true},
		{"/a.b-c/d_e", true},
		{"", false},
		{"tasks/exit", false},
		{"/", false},
		{"/tasks//exit", false},
		{"/tasks/exit/", false},
		{"/tasks/ex it", false},
	} {
		err := ValidateTopic(tc.topic)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.topic, err, tc.ok)
		}
		if err != nil && !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v is not InvalidArgument", tc.topic, err)
		}
	}
}

func TestPublishSubscribe(t *testing.T) {
	e := NewExchange()
	ctx := nsCtx(t, "default")
	ch, errs := e.Subscribe(ctx)

	if err := e.Publish(ctx, "/test/one", wrapperspb.String("hello")); err != nil {
		t.Fatal(err)
	}
	env := recv(t, ch)
	if env.Namespace != "default" || env.Topic != "/test/one" || env.Timestamp.IsZero() {
		t.Fatalf("envelope %+v", env)
	}
	if env.Event.TypeUrl != "google.protobuf.StringValue" {
		t.Fatalf("type URL %q", env.Event.TypeUrl)
	}
	var got wrapperspb.StringValue
	if err := typeurl.UnmarshalTo(env.Event, &got); err != nil || got.Value != "hello" {
		t.Fatalf("payload %v %v", got.Value, err)
	}

	cctx, cancel := context.WithCancel(ctx)
	ch2, errs2 := e.Subscribe(cctx)
	cancel()
	if _, ok := <-ch2; ok {
		t.Fatal("event channel open after cancel")
	}
	if err, ok := <-errs2; ok {
		t.Fatalf("cancel gave error %v", err)
	}
	_ = errs
}

func TestPublishErrors(t *testing.T) {
	e := NewExchange()
	for name, tc := range map[string]struct {
		ctx   context.Context
		topic string
		event interface{}
	}{
		"no namespace": {context.Background(), "/a/b", wrapperspb.String("x")},
		"bad topic":    {nsCtx(t, "default"), "a/b", wrapperspb.String("x")},
		"unpackable":   {nsCtx(t, "default"), "/a/b", struct{}{}},
	} {
		if err := e.Publish(tc.ctx, tc.topic, tc.event); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestForward(t *testing.T) {
	e := NewExchange()
	ctx := nsCtx(t, "default")
	ch, _ := e.Subscribe(ctx)
	a, _ := typeurl.MarshalAny(wrapperspb.String("x"))
	for _, bad := range []*Envelope{
		nil,
		{Namespace: "", Topic: "/a", Event: a},
		{Namespace: "ns", Topic: "a", Event: a},
		{Namespace: "ns", Topic: "/a"},
	} {
		if err := e.Forward(ctx, bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("forward %+v: %v", bad, err)
		}
	}
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := e.Forward(ctx, &Envelope{Timestamp: ts, Namespace: "other", Topic: "/tasks/exit", Event: a}); err != nil {
		t.Fatal(err)
	}
	env := recv(t, ch)
	if env.Namespace != "other" || !env.Timestamp.Equal(ts) {
		t.Fatalf("forwarded %+v", env)
	}
}

func TestEnvelopeFilters(t *testing.T) {
	fd := &descriptorpb.FieldDescriptorProto{
		Name:    proto.String("web"),
		Number:  proto.Int32(7),
		Label:   descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(),
		Options: &descriptorpb.FieldOptions{Packed: proto.Bool(true)},
	}
	js := jsonEvent{ContainerID: "db", Labels: map[string]string{"app": "x"}}

	for _, tc := range []struct {
		filter string
		event  interface{}
		topic  string
		match  bool
	}{
		{`topic=="/tasks/exit"`, fd, "/tasks/exit", true},
		{`topic=="/tasks/exit"`, fd, "/tasks/start", false},
		{`topic~="^/tasks/"`, fd, "/tasks/start", true},
		{`namespace==default`, fd, "/a", true},
		{`namespace==other`, fd, "/a", false},
		{`event`, fd, "/a", true},
		{`event.name==web`, fd, "/a", true},
		{`event.name==db`, fd, "/a", false},
		{`event.number==7`, fd, "/a", true},
		{`event.label==LABEL_REPEATED`, fd, "/a", true},
		{`event.options.packed==true`, fd, "/a", true},
		{`event.json_name`, fd, "/a", true}, // unset scalar reads as ""
		{`event.nosuch`, fd, "/a", false},
		{`event.container_id==db`, js, "/a", true},
		{`event.labels.app==x`, js, "/a", true},
		{`event.labels.app==y`, js, "/a", false},
		{`topic==/nope,namespace==default`, fd, "/a", false},
		{`topic==/nope|namespace==default`, fd, "/a", true},
	} {
		f, err := filters.ParseAll(tc.filter)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		a, err := typeurl.MarshalAny(tc.event)
		if err != nil {
			t.Fatal(err)
		}
		env := &Envelope{Namespace: "default", Topic: tc.topic, Event: a}
		if got := f.Match(env); got != tc.match {
			t.Errorf("filter %s on %s: matched %v, want %v", tc.filter, tc.topic, got, tc.match)
		}
	}
}

func TestSubscribeFilters(t *testing.T) {
	e := NewExchange()
	ctx := nsCtx(t, "default")
	ch, _ := e.Subscribe(ctx, `topic=="/b"`, `topic=="/c"`)
	for _, topic := range []string{"/a", "/b", "/a", "/c"} {
		if err := e.Publish(ctx, topic, wrapperspb.String(topic)); err != nil {
			t.Fatal(err)
		}
	}
	if got := recv(t, ch).Topic; got != "/b" {
		t.Fatalf("first event %s", got)
	}
	if got := recv(t, ch).Topic; got != "/c" {
		t.Fatalf("second event %s", got)
	}
}

func TestSubscribeBadFilter(t *testing.T) {
	e := NewExchange()
	ch, errs := e.Subscribe(nsCtx(t, "default"), "topic==")
	if err := <-errs; !errdefs.IsInvalidArgument(err) {
		t.Fatalf("bad filter error %v", err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel open")
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	e := NewExchange(WithSubscriberBuffer(4))
	ctx := nsCtx(t, "default")
	slowCh, slowErrs := e.Subscribe(ctx)
	fastCh, fastErrs := e.Subscribe(ctx)

	// The slow subscriber never reads: publishing must not block on it.
	for i := 0; i < 20; i++ {
		if err := e.Publish(ctx, "/flood", wrapperspb.String("x")); err != nil {
			t.Fatal(err)
		}
		recv(t, fastCh)
	}
	select {
	case err := <-slowErrs:
		if !errors.Is(err, ErrSlowSubscriber) || !errdefs.IsUnavailable(err) {
			t.Fatalf("slow subscriber error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slow subscriber not dropped")
	}
	for range slowCh {
	}
	select {
	case err := <-fastErrs:
		t.Fatalf("fast subscriber ended: %v", err)
	default:
	}
}
