package main

// Recorder: the shard's JSON-lines record of what each device saw, stamped when it happened.
//
// One object per line: {"t": <wall-clock ms since the epoch>, "dev": <device name>, "ev": <event>, ...}.
// Lines are buffered and flushed every 100 ms (and on Close), so a reader following the file sees an
// event within ~0.1 s; a reader must ignore a last line without its newline (still being written).
//
// Thread-safety: Emit may be called from any goroutine.

import (
	"bufio"
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Recorder owns the record file.
type Recorder struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// OpenRecorder appends to path (a restarted swarm continues the same file).
func OpenRecorder(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	r := &Recorder{f: f, w: bufio.NewWriterSize(f, 256<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go r.flushLoop()
	return r, nil
}

func (r *Recorder) flushLoop() {
	defer close(r.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.mu.Lock()
			r.w.Flush()
			r.mu.Unlock()
		}
	}
}

// Emit writes one event for dev, stamped now; fields are added to t/dev/ev.
func (r *Recorder) Emit(dev, ev string, fields map[string]any) { r.EmitAt(time.Now(), dev, ev, fields) }

// EmitAt writes one event for dev that happened at t.
func (r *Recorder) EmitAt(t time.Time, dev, ev string, fields map[string]any) {
	rec := make(map[string]any, len(fields)+3)
	for k, v := range fields {
		rec[k] = v
	}
	rec["t"] = t.UnixMilli()
	rec["dev"] = dev
	rec["ev"] = ev
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	b = append(b, '\n')
	r.mu.Lock()
	r.w.Write(b)
	r.mu.Unlock()
}

// Close flushes and closes the file.
func (r *Recorder) Close() error {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil {
		return err
	}
	return r.f.Close()
}
