// DestroyPipeline: resets sockets handed to it one at a time, in batches of
// SockDiag::kDestroyBatch, on worker threads (one per destroy channel beyond the first) while the
// producer keeps going — typically while it keeps reading the dump that selects them. Finish()
// queues the last partial batch, lets the calling thread destroy on channel 0 alongside the
// workers until the queue is empty, joins them, and returns every socket with the kernel's answer,
// in the order added.
//
// Why threads: the kernel handles a destroy (and the RST it sends, and on a local peer even the
// peer's receipt of it) synchronously inside sendmsg(); a dump is likewise computed inside the
// reader's recvmsg(). So the walk of the kernel's socket hash and the resets use one core each,
// and after the walk every channel resets. With one destroy channel there are no workers: every
// socket is destroyed in Finish(), after the producer is done.
//
// Destroying while a dump is being read can make that dump skip sockets (the kernel resumes a dump
// by position within a hash bucket); callers that need a complete picture re-dump afterwards with
// nothing being destroyed (SessionTerminator does).
//
// Thread-safety: Add() and Finish() are called from one thread (the producer).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status.h"
#include "dataplane/diag_socket.h"
#include "dataplane/sock_diag.h"

namespace headshift {

class DestroyPipeline {
 public:
  struct Answer {
    DiagSocket socket;
    int error;  // as SockDiag::Destroy: 0 = reset
  };

  // REQUIRES: diag outlives the pipeline, and nothing else uses diag's destroy channels until
  // Finish() returns.
  explicit DestroyPipeline(SockDiag* diag);
  ~DestroyPipeline();
  DestroyPipeline(const DestroyPipeline&) = delete;
  DestroyPipeline& operator=(const DestroyPipeline&) = delete;

  void Add(const DiagSocket& socket);
  size_t added() const { return added_; }

  // Destroys everything added that is not yet destroyed and returns all answers. Failed when a
  // netlink socket failed (the answers are then incomplete). Call once.
  StatusOr<std::vector<Answer>> Finish();

 private:
  struct Batch {
    std::vector<DiagSocket> sockets;
    std::vector<int> errors;
  };

  void Enqueue();
  // Destroys queued batches on `channel` until the queue is empty and closed (workers) or just
  // empty (the producer in Finish()).
  void Drain(size_t channel, bool until_closed);

  SockDiag* diag_;
  size_t added_ = 0;
  std::unique_ptr<Batch> filling_;
  std::vector<std::unique_ptr<Batch>> batches_;  // every batch queued, in order

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Batch*> queue_;  // guarded by mu_
  bool closed_ = false;       // guarded by mu_
  Status failure_;            // guarded by mu_: the first netlink failure
  std::vector<std::thread> workers_;
};

}  // namespace headshift
