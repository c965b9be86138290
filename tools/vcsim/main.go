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
// then serves until SIGTERM or SIGINT. Unless -username/-password are given,
// any non-empty user name and password are accepted.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

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
	if *ds < 1 {
		log.Fatalf("-ds must be >= 1: VMs are placed on LocalDS_0")
	}

	if *tmpdir != "" {
		// ioutil.TempDir("", ...) in Model.createTempDir uses os.TempDir(), i.e. $TMPDIR.
		if err := os.Setenv("TMPDIR", *tmpdir); err != nil {
			log.Fatalf("setting TMPDIR: %v", err)
		}
	}

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

	u := &url.URL{Host: *listen}
	if *username != "" {
		u.User = url.UserPassword(*username, *password)
	}
	model.Service.Listen = u
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}

	server := model.Service.NewServer()

	// The one line callers parse. fmt.Println to os.Stdout is unbuffered;
	// Sync makes sure it reaches a pipe or file before we block.
	fmt.Fprintf(os.Stdout, "VCSIM_URL=%s\n", server.URL.String())
	_ = os.Stdout.Sync()

	log.Printf("model: %d datacenters, %d clusters, %d hosts, %d VMs (created in %s); serving %s",
		count.Datacenter, count.Cluster, count.Host, count.Machine, created.Round(time.Millisecond), server.URL.Redacted())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("received %s, shutting down", s)

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
