// Command vcsim runs the govmomi 0.24.2 vCenter simulator (simulator.VPX model)
// for the Resilience Fabric tests. Debian ships the simulator library
// (golang-github-vmware-govmomi-dev) but no vcsim program, hence this main.
// Build it with scripts/build-vcsim.sh (offline, GOPATH mode).
//
// Inventory model (see simulator.Model in govmomi/simulator/model.go):
//
//	-dc N               datacenters                          (DC0, DC1, ...)
//	-cluster N          clusters per datacenter              (DC0_C0, ...)
//	-host N             hosts per cluster                    (DC0_C0_H0, ...)
//	-standalone-host N  standalone hosts per datacenter      (DC0_H0, ...)
//	-vm N               VMs per *root resource pool*, i.e. per cluster and per
//	                    standalone host. Hosts inside a cluster do not multiply
//	                    the count, and child pools (-pool) get no VMs.
//
//	total VMs = dc * (cluster + standalone-host) * vm
//
// e.g. -dc 2 -cluster 5 -host 2 -vm 500 gives 5,000 VMs named
// DC<d>_C<c>_RP0_VM<i>, all powered on unless -autostart=false.
// VM uuid/instanceUuid are derived from the VM path, so they are stable
// across runs for the same model.
//
// Every datastore is a real temp directory (govcsim-DC*-LocalDS_*) and every
// VM gets a directory with .vmx/.vmdk files in it (~4 KiB per VM). On this
// machine's ext4 disk, creating 5,000 VMs costs ~25 s of system time; on tmpfs
// it takes ~2.5 s, so use -tmpdir /dev/shm (or TMPDIR) for big models. The
// directories are removed on SIGTERM/SIGINT (not on SIGKILL).
//
// On start it prints exactly one line to stdout and flushes it:
//
//	VCSIM_URL=https://user:pass@127.0.0.1:PORT/sdk
//
// then serves until SIGTERM or SIGINT (or, with -exit-on-stdin-eof, until
// stdin is closed). Unless -username/-password are given,
// any non-empty user name and password are accepted.
//
// Extensions over the stock 0.24.2 simulator (pagingCollector below), so that
// clients behave as against a real vCenter:
//   - RetrievePropertiesEx honours options.maxObjects and returns a token;
//     ContinueRetrievePropertiesEx / CancelRetrievePropertiesEx are implemented
//     (stock vcsim ignores maxObjects and faults with MethodNotFound on
//     ContinueRetrievePropertiesEx). -max-objects N additionally caps every page
//     server-side, to exercise token handling in clients that set no maxObjects.
//   - Reading an unset property through the accessor (pyVmomi `vm.snapshot`
//     on a VM without snapshots, i.e. PropertyCollector.Fetch) returns an unset
//     value; stock vcsim panics and drops the connection (RemoteDisconnected).
//   - -pc-original disables both extensions.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// serverMaxObjects caps every RetrievePropertiesEx page (0 = no server cap).
// Package level because the simulator creates per-session collectors with
// reflect.New, i.e. as zero values of pagingCollector.
var serverMaxObjects int

func main() {
	listen := flag.String("l", "127.0.0.1:8989", "listen address host:port (port 0 picks a free port)")
	dc := flag.Int("dc", 1, "number of datacenters")
	cluster := flag.Int("cluster", 1, "clusters per datacenter")
	host := flag.Int("host", 3, "hosts per cluster")
	standalone := flag.Int("standalone-host", 0, "standalone hosts per datacenter (each gets -vm VMs too)")
	vm := flag.Int("vm", 2, "VMs per cluster and per standalone host (total = dc*(cluster+standalone-host)*vm)")
	pool := flag.Int("pool", 0, "child resource pools per cluster (they get no VMs)")
	ds := flag.Int("ds", 1, "local datastores per datacenter")
	pg := flag.Int("pg", 1, "distributed portgroups per datacenter")
	folder := flag.Int("folder", 0, "datacenters placed inside a folder")
	autostart := flag.Bool("autostart", true, "power on the model's VMs")
	useTLS := flag.Bool("tls", true, "serve HTTPS (self-signed localhost certificate) instead of plain HTTP")
	username := flag.String("username", "", "require this user name (default: accept any non-empty credentials)")
	password := flag.String("password", "", "require this password (with -username)")
	flag.IntVar(&serverMaxObjects, "max-objects", 0,
		"server-side cap on objects per RetrievePropertiesEx page (0: only the client's options.maxObjects)")
	original := flag.Bool("pc-original", false, "use the stock simulator PropertyCollector (no paging, Fetch panics on unset properties)")
	stdinWatch := flag.Bool("exit-on-stdin-eof", false,
		"also shut down when stdin reaches EOF (a parent holding a pipe dies: no orphaned simulators)")
	tmpdir := flag.String("tmpdir", "", "parent directory for the datastore dirs (default $TMPDIR or /tmp; tmpfs is ~10x faster)")
	flag.Parse()

	log.SetPrefix("vcsim: ")
	log.SetFlags(0)

	for name, v := range map[string]int{"dc": *dc, "cluster": *cluster, "host": *host,
		"standalone-host": *standalone, "vm": *vm, "pool": *pool, "ds": *ds, "pg": *pg, "folder": *folder} {
		if v < 0 {
			log.Fatalf("-%s must be >= 0 (got %d)", name, v)
		}
	}
	if serverMaxObjects < 0 {
		log.Fatalf("-max-objects must be >= 0 (got %d)", serverMaxObjects)
	}
	if *ds < 1 {
		log.Fatalf("-ds must be >= 1: VMs are placed on LocalDS_0")
	}

	if *tmpdir != "" {
		// ioutil.TempDir("", ...) in Model.createTempDir uses os.TempDir(), i.e. $TMPDIR.
		if err := os.Setenv("TMPDIR", *tmpdir); err != nil {
			log.Fatalf("setting TMPDIR: %v", err)
		}
	}

	// Catch signals from the start: one arriving while the model is built is
	// handled once serving starts, so the datastore dirs are still removed.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	model := simulator.VPX()
	model.Datacenter = *dc
	model.Cluster = *cluster
	model.ClusterHost = *host
	model.Host = *standalone
	model.Machine = *vm
	model.Pool = *pool
	model.Datastore = *ds
	model.Portgroup = *pg
	model.Folder = *folder
	model.Autostart = *autostart

	start := time.Now()
	if err := model.Create(); err != nil {
		model.Remove()
		log.Fatalf("creating model: %v", err)
	}
	created := time.Since(start)
	count := model.Count() // before serving: Count reads the registry unlocked
	if !*original {
		installCollector(model.ServiceContent.PropertyCollector)
	}

	u := &url.URL{Host: *listen}
	if *username != "" {
		u.User = url.UserPassword(*username, *password)
	}
	model.Service.Listen = u
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}

	server, err := newServer(model)
	if err != nil {
		model.Remove()
		log.Fatalf("listening on %s: %v", *listen, err)
	}

	// The one line callers parse. fmt.Println to os.Stdout is unbuffered;
	// Sync makes sure it reaches a pipe or file before we block.
	fmt.Fprintf(os.Stdout, "VCSIM_URL=%s\n", server.URL.String())
	_ = os.Stdout.Sync()

	log.Printf("model: %d datacenters, %d clusters, %d hosts, %d VMs (created in %s); serving %s",
		count.Datacenter, count.Cluster, count.Host, count.Machine, created.Round(time.Millisecond), server.URL.Redacted())

	eof := make(chan struct{})
	if *stdinWatch {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(eof)
		}()
	}
	select {
	case s := <-sig:
		log.Printf("received %s, shutting down", s)
	case <-eof:
		log.Printf("stdin closed, shutting down")
	}

	// Close waits for in-flight requests; don't let a stuck client block exit.
	done := make(chan struct{})
	go func() {
		server.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		log.Printf("server close timed out")
	}
	model.Remove() // deletes the datastore temp dirs (govcsim-*)
}

// newServer turns the simulator's panic on a busy or invalid listen address into an error.
func newServer(model *simulator.Model) (server *simulator.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return model.Service.NewServer(), nil
}

// pagingCollector wraps the simulator's PropertyCollector. It is embedded by
// value because simulator.Session.Get clones the root collector per session
// with reflect.New (the simulator code expects such wrappers).
type pagingCollector struct {
	simulator.PropertyCollector

	mu    sync.Mutex
	next  int
	pages map[string]*pendingPages
}

type pendingPages struct {
	objects []types.ObjectContent
	size    int
}

func installCollector(ref types.ManagedObjectReference) {
	pc := &pagingCollector{}
	pc.Self = ref
	simulator.Map.Put(pc)
}

func pageSize(clientMax int32) int {
	size := int(clientMax)
	if serverMaxObjects > 0 && (size <= 0 || size > serverMaxObjects) {
		size = serverMaxObjects
	}
	return size
}

// cut returns the first page of objects and, if more remain, stores them under a new token.
func (pc *pagingCollector) cut(objects []types.ObjectContent, size int) types.RetrieveResult {
	if size <= 0 || len(objects) <= size {
		return types.RetrieveResult{Objects: objects}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.pages == nil {
		pc.pages = make(map[string]*pendingPages)
	}
	pc.next++
	token := strconv.Itoa(pc.next)
	pc.pages[token] = &pendingPages{objects: objects[size:], size: size}
	return types.RetrieveResult{Token: token, Objects: objects[:size]}
}

func (pc *pagingCollector) RetrievePropertiesEx(ctx *simulator.Context, r *types.RetrievePropertiesEx) soap.HasFault {
	res := pc.PropertyCollector.RetrievePropertiesEx(ctx, r)
	body, ok := res.(*methods.RetrievePropertiesExBody)
	if !ok || body.Res == nil || body.Res.Returnval == nil {
		return res
	}
	page := pc.cut(body.Res.Returnval.Objects, pageSize(r.Options.MaxObjects))
	body.Res.Returnval = &page
	return body
}

func (pc *pagingCollector) ContinueRetrievePropertiesEx(r *types.ContinueRetrievePropertiesEx) soap.HasFault {
	body := &methods.ContinueRetrievePropertiesExBody{}
	pc.mu.Lock()
	pending, ok := pc.pages[r.Token]
	delete(pc.pages, r.Token)
	pc.mu.Unlock()
	if !ok {
		body.Fault_ = simulator.Fault("unknown or expired token", &types.InvalidArgument{InvalidProperty: "token"})
		return body
	}
	body.Res = &types.ContinueRetrievePropertiesExResponse{Returnval: pc.cut(pending.objects, pending.size)}
	return body
}

func (pc *pagingCollector) CancelRetrievePropertiesEx(r *types.CancelRetrievePropertiesEx) soap.HasFault {
	body := &methods.CancelRetrievePropertiesExBody{}
	pc.mu.Lock()
	_, ok := pc.pages[r.Token]
	delete(pc.pages, r.Token)
	pc.mu.Unlock()
	if !ok {
		body.Fault_ = simulator.Fault("unknown or expired token", &types.InvalidArgument{InvalidProperty: "token"})
		return body
	}
	body.Res = &types.CancelRetrievePropertiesExResponse{}
	return body
}

// FetchResponse mirrors simulator/internal.FetchResponse (an internal package we
// cannot import); the SOAP encoder names the response element after this type.
type FetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *FetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch (the pyVmomi property accessor) answers an unset property with an
// unset value instead of panicking. req is a *internal.Fetch {This, Prop}.
func (pc *pagingCollector) Fetch(ctx *simulator.Context, req interface{}) soap.HasFault {
	v := reflect.ValueOf(req).Elem()
	this, _ := v.FieldByName("This").Interface().(types.ManagedObjectReference)
	prop, _ := v.FieldByName("Prop").Interface().(string)

	// Session objects (e.g. ContainerViews) live in the session registry.
	var known mo.Reference
	if ctx.Session != nil {
		known = ctx.Session.Get(this)
	} else {
		known = ctx.Map.Get(this)
	}
	if known != nil {
		res := pc.PropertyCollector.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{
			SpecSet: []types.PropertyFilterSpec{{
				PropSet:   []types.PropertySpec{{Type: this.Type, PathSet: []string{prop}}},
				ObjectSet: []types.ObjectSpec{{Obj: this}},
			}},
		})
		if res.Fault() != nil {
			return &fetchBody{Fault_: res.Fault()}
		}
		if rv := res.(*methods.RetrievePropertiesExBody).Res.Returnval; rv != nil && len(rv.Objects) == 1 {
			obj := rv.Objects[0]
			if len(obj.PropSet) == 0 && len(obj.MissingSet) == 0 {
				return &fetchBody{Res: &FetchResponse{}}
			}
		}
	}

	// Anything else (including the simulator's ManagedEntity/ComputeResource
	// type fix-ups) goes to the stock implementation.
	out := reflect.ValueOf(&pc.PropertyCollector).MethodByName("Fetch").Call(
		[]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	return out[0].Interface().(soap.HasFault)
}
