package main

// Device: one swarm device, i.e. one real tailscale control client (controlclient.Auto: the registration,
// /ts2021 Noise map long-poll and backoff loop tailscaled runs), with its own machine key, node key,
// health tracker and dialer, and an observer that records what the device sees (recorder.go).
//
// Events (the "ev" of a record; see README.md for every field):
//   start        the client was created (node_key, node_id known so far, resumed = identity came from the file)
//   registered   a login (/machine/register) succeeded: authRoutine reached loggedIn (for a resumed
//                device, the known node logging in with its keys)
//   lost         the map long-poll ended with an error (the control connection was lost or a dial failed);
//                stamped when PollNetMap returned, before the backoff sleep
//   error        the error the client reported (text), after its backoff
//   netmap       a full netmap was delivered (node_key, node_id, peers, peers_hash; first = first of a poll)
//   auth_url     the server asked for an interactive login (url)
//   needs_login  the device needs a login: an AuthURL, a stopped auth routine without a netmap, or an
//                expired node key (tailscaled's NeedsLogin rule, ipn/ipnlocal/local.go)
//   key_changed / id_changed   the node key / node ID in a netmap differs from the one the device had
//   stop         the swarm shut the client down (SIGTERM)
//
// Thread-safety: SetControlClientStatus is called by the client's observer queue (one at a time per
// device); logf is called from the client's routines; fields shared between them are under mu.

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"time"

	"tailscale.com/control/controlclient"
	"tailscale.com/health"
	"tailscale.com/net/netmon"
	"tailscale.com/net/tsdial"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
	"tailscale.com/util/eventbus"
)

// Shared is what all devices of a shard share (none of it carries per-device state).
type Shared struct {
	ServerURL string
	AuthKey   string
	Bus       *eventbus.Bus
	NetMon    *netmon.Monitor
	Hostinfo  *tailcfg.Hostinfo // template, cloned per device
	Rec       *Recorder
	IDs       *Identities
	DebugLogf logger.Logf // full client log of the one device named by -log-device, else nil
	LogDevice string
}

// Device is one swarm device.
type Device struct {
	Name     string
	Hostname string
	sh       *Shared

	cc *controlclient.Auto

	mu          sync.Mutex
	nodeKey     key.NodePublic
	nodeID      int64
	resumed     bool // the identity came from the shard's file (an earlier run)
	loggedIn    bool
	inPoll      bool        // a netmap arrived since the last loss (set by logf, in the client's order)
	firstAt     []time.Time // first netmaps of a poll seen by logf, not yet recorded by the observer
	needsLogin  bool
	lastSummary string
	firstSeen   chan struct{} // closed at the first registration or netmap of this run
	firstOnce   sync.Once
}

// NewDevice prepares device name (identity from the shard file, created if new). Start starts it.
func NewDevice(sh *Shared, name, hostname string) *Device {
	id, resumed := sh.IDs.GetOrCreate(name, newLogID)
	d := &Device{Name: name, Hostname: hostname, sh: sh, nodeKey: id.Persist.PrivateNodeKey.Public(),
		nodeID: id.NodeID, resumed: resumed, firstSeen: make(chan struct{})}
	return d
}

// Start creates the control client and sets its login goal (as tailscaled does at start).
func (d *Device) Start() error {
	id, _ := d.sh.IDs.GetOrCreate(d.Name, newLogID)
	hi := d.sh.Hostinfo.Clone()
	hi.Hostname = d.Hostname
	hi.BackendLogID = id.BackendLogID
	authKey := d.sh.AuthKey
	if id.Registered {
		authKey = "" // a restarted tailscaled no longer has the one-time auth key: it logs in with its keys
	}
	logf := d.logf
	dialer := tsdial.NewDialer(d.sh.NetMon)
	dialer.SetBus(d.sh.Bus)
	machineKey := id.MachineKey
	cc, err := controlclient.New(controlclient.Options{
		Persist:              id.Persist,
		GetMachinePrivateKey: func() (key.MachinePrivate, error) { return machineKey, nil },
		ServerURL:            d.sh.ServerURL,
		AuthKey:              authKey,
		Hostinfo:             hi,
		DiscoPublicKey:       key.NewDisco().Public(), // tailscaled makes a new disco key at every start
		Logf:                 logf,
		HealthTracker:        health.NewTracker(d.sh.Bus), // per device: it decides :80 vs forced :443
		Dialer:               dialer,
		Bus:                  d.sh.Bus,
		Observer:             d,
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.cc = cc
	d.mu.Unlock()
	f := map[string]any{"node_key": d.nodeKey.String(), "resumed": d.resumed, "hostname": d.Hostname}
	if id.NodeID != 0 {
		f["node_id"] = id.NodeID
	}
	d.sh.Rec.Emit(d.Name, "start", f)
	cc.Login(controlclient.LoginDefault)
	return nil
}

// FirstSeen is closed once the device registered or got a netmap in this run.
func (d *Device) FirstSeen() <-chan struct{} { return d.firstSeen }

// Shutdown stops the client without logging out (the identity stays valid on the server).
func (d *Device) Shutdown() {
	d.mu.Lock()
	cc := d.cc
	d.mu.Unlock()
	if cc != nil {
		cc.Shutdown()
		d.sh.Rec.Emit(d.Name, "stop", nil)
	}
}

// logf receives the client's log; two lines stamp events when they happen, in the client's own order
// (the observer runs later, on a queue that may lag under load):
//   - mapRoutine logs its backoff ("mapRoutine: [v1] backoff: N msec", util/backoff) right after
//     PollNetMap returned an error and before sleeping; the error reaches the observer only after the sleep;
//   - UpdateFullNetmap logs "[v1] mapRoutine: netmap received" before it queues the status with the netmap.
func (d *Device) logf(format string, args ...any) {
	if d.sh.DebugLogf != nil && d.Name == d.sh.LogDevice {
		d.sh.DebugLogf(d.Name+": "+format, args...)
	}
	if strings.HasPrefix(format, "[v1] mapRoutine: netmap received") {
		d.mu.Lock()
		if !d.inPoll {
			d.inPoll = true
			d.firstAt = append(d.firstAt, time.Now())
		}
		d.mu.Unlock()
		return
	}
	if len(args) == 2 && strings.HasSuffix(format, "backoff: %d msec") {
		if who, ok := args[0].(string); ok && who == "mapRoutine" {
			d.mu.Lock()
			wasInPoll := d.inPoll
			d.inPoll = false
			d.mu.Unlock()
			d.sh.Rec.Emit(d.Name, "lost", map[string]any{"in_poll": wasInPoll, "backoff_ms": args[1]})
		}
	}
}

// SetControlClientStatus implements controlclient.Observer.
func (d *Device) SetControlClientStatus(c controlclient.Client, st controlclient.Status) {
	rec := d.sh.Rec
	if st.Err != nil {
		msg := st.Err.Error()
		if len(msg) > 300 {
			msg = msg[:300]
		}
		rec.Emit(d.Name, "error", map[string]any{"err": msg})
	}
	if st.URL != "" {
		rec.Emit(d.Name, "auth_url", map[string]any{"url": st.URL})
	}
	d.mu.Lock()
	cc := d.cc
	wasLoggedIn := d.loggedIn
	d.loggedIn = st.LoggedIn
	d.mu.Unlock()
	if st.LoggedIn && !wasLoggedIn {
		rec.Emit(d.Name, "registered", nil)
		d.sh.IDs.Update(d.Name, func(id *Identity) { id.Registered = true })
		d.firstOnce.Do(func() { close(d.firstSeen) })
	}
	if st.Persist.Valid() {
		p := st.Persist.AsStruct()
		d.sh.IDs.Update(d.Name, func(id *Identity) {
			if !id.Persist.Equals(p) {
				id.Persist = *p
			}
		})
	}
	nm := st.NetMap
	if nm != nil {
		d.onNetmap(st)
	}
	// tailscaled's NeedsLogin rule (ipn/ipnlocal/local.go nextStateLocked): no netmap and the auth routine
	// cannot continue (logged out or waiting for an interactive URL), or the node key expired.
	needs := st.URL != ""
	if nm == nil && cc != nil && cc.AuthCantContinue() && wasLoggedIn {
		needs = true
	}
	if nm != nil {
		if exp := nm.SelfKeyExpiry(); !exp.IsZero() && exp.Before(time.Now()) {
			needs = true
		}
	}
	d.mu.Lock()
	was := d.needsLogin
	if nm != nil || st.URL != "" {
		d.needsLogin = needs
	} else if needs {
		d.needsLogin = true
	}
	now := d.needsLogin
	d.mu.Unlock()
	if now && !was {
		rec.Emit(d.Name, "needs_login", map[string]any{"auth_url": st.URL != ""})
	}
}

func (d *Device) onNetmap(st controlclient.Status) {
	nm := st.NetMap
	nodeKey := nm.NodeKey
	var nodeID int64
	stable := ""
	if nm.SelfNode.Valid() {
		nodeID = int64(nm.SelfNode.ID())
		stable = string(nm.SelfNode.StableID())
	}
	keys := make([]string, 0, len(nm.Peers))
	for _, p := range nm.Peers {
		keys = append(keys, p.Key().String())
	}
	sort.Strings(keys)
	h := sha256.Sum256([]byte(strings.Join(keys, ",")))
	hash := hex.EncodeToString(h[:8])

	d.mu.Lock()
	firstAt := d.firstAt
	d.firstAt = nil
	oldKey, oldID := d.nodeKey, d.nodeID
	d.nodeKey, d.nodeID = nodeKey, nodeID
	summary := nodeKey.String() + "/" + stable + "/" + hash
	changed := summary != d.lastSummary
	d.lastSummary = summary
	d.mu.Unlock()

	if !oldKey.IsZero() && oldKey != nodeKey {
		d.sh.Rec.Emit(d.Name, "key_changed", map[string]any{"old": oldKey.String(), "new": nodeKey.String()})
	}
	if oldID != 0 && oldID != nodeID {
		d.sh.Rec.Emit(d.Name, "id_changed", map[string]any{"old": oldID, "new": nodeID})
	}
	fields := map[string]any{"node_key": nodeKey.String(), "node_id": nodeID, "stable_id": stable,
		"peers": len(keys), "peers_hash": hash, "first": len(firstAt) > 0}
	for _, t := range firstAt {
		d.sh.Rec.EmitAt(t, d.Name, "netmap", fields)
	}
	if len(firstAt) == 0 && changed {
		d.sh.Rec.Emit(d.Name, "netmap", fields)
	}
	if oldID != nodeID {
		d.sh.IDs.Update(d.Name, func(id *Identity) { id.NodeID = nodeID })
	}
	d.firstOnce.Do(func() { close(d.firstSeen) })
}
