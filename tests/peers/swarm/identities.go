package main

// Identities: the per-shard file that makes a swarm device the same device across restarts of the swarm.
//
// One JSON file per shard (mode 0600: it holds private keys), written atomically (temp file + rename).
// For each device it keeps what tailscaled keeps in its state file: the machine key, the node key and the
// rest of persist.Persist (tailscaled: prefs "Config"), the BackendLogID, plus the node ID last seen and
// whether the device ever completed registration (a registered device starts again without the auth key,
// like a restarted tailscaled, whose auth key was used once at `tailscale up`).
//
// Thread-safety: all methods may be called from any goroutine.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"tailscale.com/types/key"
	"tailscale.com/types/persist"
)

// Identity is one device's persisted identity.
type Identity struct {
	MachineKey   key.MachinePrivate `json:"machine_key"`
	BackendLogID string             `json:"backend_log_id"`
	Persist      persist.Persist    `json:"persist"`
	NodeID       int64              `json:"node_id,omitempty"` // tailcfg.NodeID last seen in a netmap
	Registered   bool               `json:"registered"`        // a registration succeeded at least once
}

type identityFile struct {
	Version int                  `json:"version"`
	Devices map[string]*Identity `json:"devices"`
}

// Identities owns the shard's identity file.
type Identities struct {
	path  string
	mu    sync.Mutex
	data  identityFile
	dirty bool
}

// LoadIdentities reads path if it exists (a missing file is an empty shard).
func LoadIdentities(path string) (*Identities, error) {
	ids := &Identities{path: path, data: identityFile{Version: 1, Devices: map[string]*Identity{}}}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return ids, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &ids.data); err != nil {
		return nil, fmt.Errorf("%s: not a swarm identity file (%v); remove it to start with new devices", path, err)
	}
	if ids.data.Devices == nil {
		ids.data.Devices = map[string]*Identity{}
	}
	return ids, nil
}

// GetOrCreate returns a copy of the device's identity, creating machine key, node key and network-lock key
// now (so the identity is fixed before the first registration, even if the swarm dies mid-way).
func (s *Identities) GetOrCreate(name string, newLogID func() string) (Identity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.data.Devices[name]; ok {
		return *id, true
	}
	id := &Identity{MachineKey: key.NewMachine(), BackendLogID: newLogID()}
	id.Persist.PrivateNodeKey = key.NewNode()
	id.Persist.NetworkLockKey = key.NewNLPrivate()
	s.data.Devices[name] = id
	s.dirty = true
	return *id, false
}

// Update applies fn to the stored identity of name and marks the file dirty.
func (s *Identities) Update(name string, fn func(*Identity)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.data.Devices[name]; ok {
		fn(id)
		s.dirty = true
	}
}

// Save writes the file if anything changed since the last Save.
func (s *Identities) Save() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	b, err := json.Marshal(&s.data)
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path)
}
