// Command swarm runs many real tailscale devices in one process: one controlclient.Auto each (the code
// tailscaled runs for registration with a pre-auth key, the /ts2021 Noise upgrade on :80 / :443 by host
// name, the map long-poll and its backoff), without WireGuard, netstack or magicsock. It is one shard;
// sandbox/real/swarm.py starts several (each within the fd limit) inside a tenant's network namespace.
//
// Usage (flags in README.md):
//
//	ip netns exec NS env SSL_CERT_FILE=ca.pem swarm -server https://t1.demo.com -authkey-file KEY \
//	    -count 500 -prefix t1-sw -start 0 -state-dir DIR -record FILE.jsonl
//
// Exit codes: 0 after SIGTERM/SIGINT (clean shutdown: clients stopped without logging out, identities
// saved, record flushed); 2 bad flags; 3 cannot read the auth key / state / record file; 4 a client
// could not be created.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"tailscale.com/hostinfo"
	"tailscale.com/net/netmon"
	"tailscale.com/util/eventbus"
)

// fdsPerDevice bounds a device's descriptors at its peak: the Noise connection, the competing :443 dial
// of the :80/:443 race (controlhttp), and the /key fetch during a login.
const fdsPerDevice = 3

func newLogID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func main() {
	var (
		server      = flag.String("server", "", "control URL devices log in to, e.g. https://t1.demo.com (both :80 and :443 are dialled, as tailscaled does)")
		authKeyFile = flag.String("authkey-file", "", "file holding the pre-auth key (used only by devices that never registered)")
		count       = flag.Int("count", 0, "devices in this shard")
		prefix      = flag.String("prefix", "sw", "device name prefix: devices are PREFIX-<n>")
		start       = flag.Int("start", 1, "number of the shard's first device (devices PREFIX-<start> .. PREFIX-<start+count-1>)")
		stateDir    = flag.String("state-dir", "", "directory of the shard's identity file identities.json (machine and node keys; reused on restart)")
		record      = flag.String("record", "", "JSON-lines file the events are appended to")
		concurrency = flag.Int("concurrency", 50, "devices logging in at the same time during the initial start")
		hostPattern = flag.String("hostname", "{name}", "hostname a device reports; {name}, {prefix} and {n} are replaced")
		logDevice   = flag.String("log-device", "", "write the full client log of this one device to stderr")
		statsEvery  = flag.Duration("stats", 10*time.Second, "interval of the summary line on stderr (0: none)")
	)
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("swarm: ")
	bad := func(msg string) {
		fmt.Fprintf(os.Stderr, "swarm: %s\n", msg)
		os.Exit(2)
	}
	if *server == "" || *authKeyFile == "" || *stateDir == "" || *record == "" {
		bad("-server, -authkey-file, -state-dir and -record are required")
	}
	if !strings.HasPrefix(*server, "http://") && !strings.HasPrefix(*server, "https://") {
		bad("-server must be an http:// or https:// URL")
	}
	if *count < 1 || *concurrency < 1 {
		bad("-count and -concurrency must be at least 1")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		if need := uint64(*count*fdsPerDevice + 64); need > lim.Cur {
			bad(fmt.Sprintf("-count %d needs up to %d fds but the limit is %d: run more shards with fewer devices (swarm.py does)",
				*count, need, lim.Cur))
		}
	}
	kb, err := os.ReadFile(*authKeyFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swarm: reading -authkey-file: %v\n", err)
		os.Exit(3)
	}
	ids, err := LoadIdentities(filepath.Join(*stateDir, "identities.json"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "swarm: %v\n", err)
		os.Exit(3)
	}
	rec, err := OpenRecorder(*record)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swarm: %v\n", err)
		os.Exit(3)
	}
	sh := &Shared{ServerURL: *server, AuthKey: strings.TrimSpace(string(kb)), Bus: eventbus.New(),
		NetMon: netmon.NewStatic(), Hostinfo: hostinfo.New(), Rec: rec, IDs: ids, LogDevice: *logDevice}
	if *logDevice != "" {
		sh.DebugLogf = log.Printf
	}

	devs := make([]*Device, *count)
	for i := range devs {
		n := *start + i
		name := fmt.Sprintf("%s-%d", *prefix, n)
		host := strings.NewReplacer("{name}", name, "{prefix}", *prefix, "{n}", fmt.Sprint(n)).Replace(*hostPattern)
		devs[i] = NewDevice(sh, name, host)
	}
	if err := ids.Save(); err != nil {
		fmt.Fprintf(os.Stderr, "swarm: saving identities: %v\n", err)
		os.Exit(3)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	// Identities are saved every second while anything changed (new node keys are saved before use).
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := ids.Save(); err != nil {
					log.Printf("saving identities: %v", err)
				}
			}
		}
	}()

	var started atomic.Int64
	startDone := make(chan struct{})
	go func() { // initial start: at most -concurrency devices between Login and their first registration
		defer close(startDone)
		sem := make(chan struct{}, *concurrency)
		for _, d := range devs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if err := d.Start(); err != nil {
				fmt.Fprintf(os.Stderr, "swarm: device %s: %v\n", d.Name, err)
				os.Exit(4)
			}
			started.Add(1)
			go func(d *Device) {
				select {
				case <-d.FirstSeen():
				case <-time.After(60 * time.Second): // still retrying on its own backoff: let others start
				case <-ctx.Done():
				}
				<-sem
			}(d)
		}
	}()

	if *statsEvery > 0 {
		go func() {
			t := time.NewTicker(*statsEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					loggedIn, inPoll, needs := 0, 0, 0
					for _, d := range devs {
						d.mu.Lock()
						if d.loggedIn {
							loggedIn++
						}
						if d.inPoll {
							inPoll++
						}
						if d.needsLogin {
							needs++
						}
						d.mu.Unlock()
					}
					log.Printf("%s-%d..: started %d/%d, logged in %d, in map poll %d, needs login %d",
						*prefix, *start, started.Load(), len(devs), loggedIn, inPoll, needs)
				}
			}
		}()
	}

	<-ctx.Done()
	log.Printf("stopping %d devices", len(devs))
	<-startDone
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, d := range devs {
		wg.Add(1)
		sem <- struct{}{}
		go func(d *Device) {
			defer wg.Done()
			d.Shutdown()
			<-sem
		}(d)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		log.Printf("some clients did not stop within 20 s; exiting anyway")
	}
	<-saverDone
	if err := ids.Save(); err != nil {
		log.Printf("saving identities: %v", err)
	}
	if err := rec.Close(); err != nil {
		log.Printf("closing record: %v", err)
	}
	log.Printf("stopped")
}
