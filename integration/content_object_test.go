package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// ctrSplit runs a ctr binary with stdin, keeping stdout (the object's
// bytes) apart from stderr (messages).
func ctrSplit(t *testing.T, bin, address, stdin string, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--address", address}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.String(), err
}

// objectOut runs our ctr and returns its stdout, failing the test on error.
func (d *daemon) objectOut(t *testing.T, args ...string) []byte {
	t.Helper()
	out, stderr, err := ctrSplit(t, filepath.Join(binDir, "ctr"), d.Address, "", args...)
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// objectFail runs our ctr, wants it to fail with nothing on stdout and
// each of wants in its message.
func (d *daemon) objectFail(t *testing.T, wants []string, args ...string) {
	t.Helper()
	out, stderr, err := ctrSplit(t, filepath.Join(binDir, "ctr"), d.Address, "", args...)
	if err == nil {
		t.Fatalf("ctr %s: succeeded, want failure; stdout %d bytes\n%s", strings.Join(args, " "), len(out), stderr)
	}
	if len(out) != 0 {
		t.Errorf("ctr %s failed but wrote %d bytes to stdout: %.200q", strings.Join(args, " "), len(out), out)
	}
	mustContain(t, stderr, wants...)
}

// ingestRooted puts blob in the content store with a gc.root label, so
// no collection takes it. Call it before anything deletes a lease: a blob
// is collectable between its ingest and its label.
func (d *daemon) ingestRooted(t *testing.T, blob []byte) digest.Digest {
	t.Helper()
	dg := digest.FromBytes(blob)
	if out, stderr, err := ctrSplit(t, filepath.Join(binDir, "ctr"), d.Address, string(blob), "content", "ingest", "--expected-digest", dg.String(), "object-"+dg.Encoded()[:12]); err != nil {
		t.Fatalf("ingest: %v\n%s%s", err, out, stderr)
	}
	d.ctr("content", "label", dg.String(), "containerd.io/gc.root=test")
	return dg
}

// registryGet GETs path below the plain-HTTP registry's /v2/.
func registryGet(t *testing.T, reg *testRegistry, path, accept string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+reg.Host+"/v2/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

type objDesc struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

type objDoc struct {
	MediaType string    `json:"mediaType"`
	Manifests []objDesc `json:"manifests"`
	Config    objDesc   `json:"config"`
	Layers    []objDesc `json:"layers"`
}

func TestContentObject(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	d := newDaemon(t, "")
	// A blob only the local content store has.
	blob := make([]byte, 300<<10)
	rand.Read(blob)
	blobDigest := d.ingestRooted(t, blob)
	ref := reg.Host + "/objects/busybox:v1"
	d.ctr("images", "import", "--no-unpack", testImageArchive(t, ref, 0))
	d.ctr("images", "push", ref)

	// The pushed image from the local store: root, manifest, config, a layer.
	root := digest.Digest(imageDigest(t, d.ctr("images", "ls"), ref))
	rootBytes := d.objectOut(t, "content", "get", root.String())
	var doc objDoc
	if err := json.Unmarshal(rootBytes, &doc); err != nil {
		t.Fatalf("root %s: %v", root, err)
	}
	manifest, manifestBytes, rootIsIndex := root, rootBytes, false
	if len(doc.Manifests) > 0 {
		rootIsIndex = true
		manifest = doc.Manifests[0].Digest
		manifestBytes = d.objectOut(t, "content", "get", manifest.String())
		doc = objDoc{}
		if err := json.Unmarshal(manifestBytes, &doc); err != nil {
			t.Fatalf("manifest %s: %v", manifest, err)
		}
	}
	if len(doc.Layers) == 0 || doc.Config.Digest == "" {
		t.Fatalf("manifest %s has no config or layers:\n%s", manifest, manifestBytes)
	}
	layer, config := doc.Layers[len(doc.Layers)-1], doc.Config
	layerBytes := d.objectOut(t, "content", "get", layer.Digest.String())

	fetch := func(t *testing.T, args ...string) []byte {
		t.Helper()
		return d.objectOut(t, append([]string{"content", "fetch-object"}, args...)...)
	}
	mustEqual := func(t *testing.T, what string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: got %d bytes (%s), want %d bytes (%s)", what, len(got), digest.FromBytes(got), len(want), digest.FromBytes(want))
		}
	}

	t.Run("manifest by digest", func(t *testing.T) {
		mustEqual(t, "root", fetch(t, ref, root.String()), rootBytes)
		// A name without the tag: the digest alone says what.
		mustEqual(t, "root, untagged ref", fetch(t, reg.Host+"/objects/busybox", root.String()), rootBytes)
		if rootIsIndex {
			mustEqual(t, "platform manifest", fetch(t, ref, manifest.String()), manifestBytes)
		}
	})
	t.Run("no object: what the ref names, as containerd's", func(t *testing.T) {
		mustEqual(t, "root", fetch(t, ref), rootBytes)
	})
	t.Run("layer and config of the image, without them locally", func(t *testing.T) {
		// An empty namespace: the sizes come from the image's manifest.
		got := d.objectOut(t, "-n", "empty", "content", "fetch-object", ref, layer.Digest.String())
		if digest.FromBytes(got) != layer.Digest {
			t.Fatalf("layer %s: fetched bytes have digest %s (%d bytes)", layer.Digest, digest.FromBytes(got), len(got))
		}
		mustEqual(t, "layer", got, layerBytes)
		got = d.objectOut(t, "-n", "empty", "content", "fetch-object", ref, config.Digest.String(), config.MediaType)
		if digest.FromBytes(got) != config.Digest || int64(len(got)) != config.Size {
			t.Fatalf("config %s: fetched %d bytes with digest %s", config.Digest, len(got), digest.FromBytes(got))
		}
	})
	t.Run("debian ctr fetch-object gives the same bytes", func(t *testing.T) {
		requireBinary(t, "/usr/bin/ctr")
		// containerd's resolves the ref and writes what it names.
		for _, r := range []string{ref, reg.Host + "/objects/busybox@" + manifest.String()} {
			deb, stderr, err := ctrSplit(t, "/usr/bin/ctr", d.Address, "", "content", "fetch-object", "--plain-http", r, manifest.String())
			if err != nil {
				t.Fatalf("debian ctr fetch-object %s: %v\n%s", r, err, stderr)
			}
			ours := fetch(t, r)
			mustEqual(t, "debian's vs ours for "+r, deb, ours)
		}
	})

	newRepo := reg.Host + "/objects/new"

	t.Run("push-object to a new repository, then fetch it back", func(t *testing.T) {
		out := string(d.objectOut(t, "content", "push-object", newRepo, blobDigest.String()))
		if out != "Pushed "+blobDigest.String()+" application/octet-stream\n" {
			t.Fatalf("push-object printed %q", out)
		}
		// The registry has it, by its own account.
		code, got := registryGet(t, reg, "objects/new/blobs/"+blobDigest.String(), "")
		if code != http.StatusOK {
			t.Fatalf("registry GET blob: %d %s", code, got)
		}
		mustEqual(t, "registry's copy", got, blob)
		mustEqual(t, "fetch-object", fetch(t, newRepo, blobDigest.String()), blob)

		// Again: the registry has it; not an error.
		out = string(d.objectOut(t, "content", "push-object", newRepo, blobDigest.String(), "application/vnd.oci.image.layer.v1.tar"))
		mustContain(t, out, "Pushed "+blobDigest.String()+" application/vnd.oci.image.layer.v1.tar", "already had it")

		// Nothing tells the size of an unreferenced blob we do not have.
		d.objectFail(t, []string{"object " + blobDigest.String(), "no image " + newRepo + ":latest", "size unknown", "not found"},
			"-n", "empty", "content", "fetch-object", newRepo, blobDigest.String())
	})
	t.Run("push-object of a manifest puts it by digest", func(t *testing.T) {
		repo := reg.Host + "/objects/manifests"
		mt := doc.MediaType
		if mt == "" {
			mt = "application/vnd.oci.image.manifest.v1+json"
		}
		// Its config and layers first, as objects too.
		for _, b := range append([]objDesc{config}, doc.Layers...) {
			d.objectOut(t, "content", "push-object", repo, b.Digest.String(), b.MediaType)
		}
		out := string(d.objectOut(t, "content", "push-object", repo, manifest.String(), mt))
		mustContain(t, out, "Pushed "+manifest.String()+" "+mt)
		code, got := registryGet(t, reg, "objects/manifests/manifests/"+manifest.String(), mt)
		if code != http.StatusOK {
			t.Fatalf("registry GET manifest: %d %s", code, got)
		}
		mustEqual(t, "registry's manifest", got, manifestBytes)
		mustEqual(t, "fetch-object", d.objectOut(t, "-n", "empty", "content", "fetch-object", repo, manifest.String()), manifestBytes)
		// No tag was made.
		// (distribution answers NAME_UNKNOWN for a repository without tags).
		if code, got := registryGet(t, reg, "objects/manifests/tags/list", ""); code != http.StatusNotFound && (code != http.StatusOK || strings.Contains(string(got), "latest")) {
			t.Fatalf("tags after push-object: %d %s", code, got)
		}
	})
	t.Run("errors", func(t *testing.T) {
		unknown := digest.FromString("nothing has this")
		d.objectFail(t, []string{"object \"sha256:xyz\"", "not a digest", "invalid argument"}, "content", "fetch-object", ref, "sha256:xyz")
		d.objectFail(t, []string{"object \"nope\"", "not a digest"}, "content", "push-object", ref, "nope")
		d.objectFail(t, []string{"not found", unknown.String()}, "content", "fetch-object", ref, unknown.String())
		d.objectFail(t, []string{"not found"}, "content", "fetch-object", reg.Host+"/objects/busybox:nosuchtag")
		d.objectFail(t, []string{"reference", "invalid argument"}, "content", "fetch-object", "Bad::Ref", root.String())
		d.objectFail(t, []string{"reference", "invalid argument"}, "content", "push-object", "Bad::Ref", blobDigest.String())
		d.objectFail(t, []string{"usage", "<object>"}, "content", "push-object", newRepo)
		d.objectFail(t, []string{"usage"}, "content", "fetch-object")
		d.objectFail(t, []string{"object " + unknown.String(), "not found"}, "content", "push-object", newRepo, unknown.String())
		d.objectFail(t, []string{"media type", "malformed"}, "content", "push-object", newRepo, blobDigest.String(), "not a type")
		d.objectFail(t, []string{"media type", "malformed"}, "content", "fetch-object", newRepo, blobDigest.String(), "not a type")
	})
}

// Registry flags are pull's and push's: --user with htpasswd.
func TestContentObjectAuth(t *testing.T) {
	reg := startRegistry(t, registryOpts{user: "berth", password: "s3cret"})
	d := newDaemon(t, "")
	blob := []byte("an object pushed with credentials\n")
	dg := d.ingestRooted(t, blob)
	ref := reg.Host + "/private/busybox:v1"
	d.ctr("images", "import", "--no-unpack", testImageArchive(t, ref, 0))
	d.ctr("images", "push", "--user", "berth:s3cret", ref)
	root := imageDigest(t, d.ctr("images", "ls"), ref)
	rootBytes := d.objectOut(t, "content", "get", root)

	d.objectFail(t, []string{"401", "--user"}, "content", "fetch-object", ref, root)
	got := d.objectOut(t, "content", "fetch-object", "--user", "berth:s3cret", ref, root)
	if !bytes.Equal(got, rootBytes) {
		t.Fatalf("fetched %d bytes (%s), want %s", len(got), digest.FromBytes(got), root)
	}
	// The password from standard input.
	out, stderr, err := ctrSplit(t, filepath.Join(binDir, "ctr"), d.Address, "s3cret\n", "content", "fetch-object", "--user", "berth", ref)
	if err != nil || !bytes.Equal(out, rootBytes) {
		t.Fatalf("fetch-object with the password on stdin: %v, %d bytes\n%s", err, len(out), stderr)
	}

	d.objectFail(t, []string{"401"}, "content", "push-object", reg.Host+"/private/objects", dg.String())
	mustContain(t, string(d.objectOut(t, "content", "push-object", "--user", "berth:s3cret", reg.Host+"/private/objects", dg.String())), "Pushed "+dg.String())
	if got := d.objectOut(t, "content", "fetch-object", "--user", "berth:s3cret", reg.Host+"/private/objects", dg.String()); !bytes.Equal(got, blob) {
		t.Fatalf("fetched back %q", got)
	}
}
