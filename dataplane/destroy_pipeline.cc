#include "dataplane/destroy_pipeline.h"

#include "common/prefault.h"

namespace headshift {

DestroyPipeline::DestroyPipeline(SockDiag* diag) : diag_(diag) {}

DestroyPipeline::~DestroyPipeline() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    queue_.clear();
  }
  ready_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

void DestroyPipeline::Add(const DiagSocket& socket) {
  if (!filling_) {
    filling_ = std::make_unique<Batch>();
    ReservePrefaulted(filling_->sockets, SockDiag::kDestroyBatch);
  }
  filling_->sockets.push_back(socket);
  ++added_;
  if (filling_->sockets.size() == SockDiag::kDestroyBatch) Enqueue();
}

void DestroyPipeline::Enqueue() {
  Batch* b = filling_.get();
  b->errors.assign(b->sockets.size(), 0);
  batches_.push_back(std::move(filling_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(b);
  }
  ready_.notify_one();
  // Workers start with the first full batch: a small selection is destroyed by Finish() alone.
  if (workers_.empty()) {
    for (size_t ch = 1; ch < diag_->destroy_channels(); ++ch) {
      workers_.emplace_back([this, ch] { Drain(ch, /*until_closed=*/true); });
    }
  }
}

void DestroyPipeline::Drain(size_t channel, bool until_closed) {
  while (true) {
    Batch* b = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (until_closed) ready_.wait(lock, [this] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) return;
      b = queue_.front();
      queue_.pop_front();
    }
    Status st = diag_->Destroy(b->sockets.data(), b->sockets.size(), b->errors.data(), channel);
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (failure_.ok()) failure_ = st;
    }
  }
}

StatusOr<std::vector<DestroyPipeline::Answer>> DestroyPipeline::Finish() {
  if (filling_ && !filling_->sockets.empty()) Enqueue();
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  ready_.notify_all();
  Drain(0, /*until_closed=*/false);
  for (auto& w : workers_) w.join();
  workers_.clear();
  if (!failure_.ok()) return failure_;
  std::vector<Answer> out;
  ReservePrefaulted(out, added_);
  for (const auto& b : batches_) {
    for (size_t i = 0; i < b->sockets.size(); ++i) out.push_back({b->sockets[i], b->errors[i]});
  }
  return out;
}

}  // namespace headshift
