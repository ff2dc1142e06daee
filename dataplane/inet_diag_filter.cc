#include "dataplane/inet_diag_filter.h"

#include <cstring>
#include <linux/inet_diag.h>

namespace headshift {
namespace {

// One remote condition: a hostcond with an address prefix and an optional port.
struct RemoteCond {
  IpAddress addr;  // AF_INET or AF_INET6, as emitted
  int prefix_len;
  int port;        // -1 = any
};

// Emits ops with symbolic forward targets, then resolves them into `no` offsets.
class Assembler {
 public:
  static constexpr int kReject = -1;  // label: past the end (+4), the kernel's "no match"

  int NewLabel() {
    labels_.push_back(-2);
    return static_cast<int>(labels_.size()) - 1;
  }
  void Bind(int label) { labels_[label] = static_cast<int>(code_.size()); }

  // An op whose failure jumps to `fail_label` and whose success continues with the next op.
  void Op(uint8_t code, const void* args, size_t args_len, int fail_label) {
    size_t at = code_.size();
    inet_diag_bc_op op{code, static_cast<uint8_t>(sizeof(inet_diag_bc_op) + args_len), 0};
    Append(&op, sizeof op);
    Append(args, args_len);
    fixups_.push_back({at, fail_label});
  }
  // Port comparison: the op is followed by a pseudo-op whose `no` field carries the port.
  void PortOp(uint8_t code, uint16_t port, int fail_label) {
    inet_diag_bc_op arg{0, 0, port};
    Op(code, &arg, sizeof arg, fail_label);
  }
  void Jump(int label) { Op(INET_DIAG_BC_JMP, nullptr, 0, label); }

  // Resolves jumps. Empty result if an offset does not fit the op's u16 `no` field.
  std::vector<uint8_t> Finish() {
    const size_t len = code_.size();
    for (const auto& f : fixups_) {
      size_t target = f.label == kReject ? len + 4 : static_cast<size_t>(labels_[f.label]);
      size_t off = target - f.at;
      if (off > 0xffff) return {};
      uint16_t no = static_cast<uint16_t>(off);
      std::memcpy(code_.data() + f.at + offsetof(inet_diag_bc_op, no), &no, sizeof no);
    }
    return code_;
  }
  size_t size() const { return code_.size(); }

 private:
  void Append(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    code_.insert(code_.end(), b, b + n);
  }
  struct Fixup {
    size_t at;
    int label;
  };
  std::vector<uint8_t> code_;
  std::vector<int> labels_;
  std::vector<Fixup> fixups_;
};

// OR-group: conditions c1..cn; each failing condition falls to the next, the last one to reject;
// a matching condition (except the last, which falls through) jumps to the group's end.
template <typename T, typename EmitFn>
void EmitOrGroup(Assembler& as, const std::vector<T>& conds, EmitFn emit) {
  int end = as.NewLabel();
  for (size_t i = 0; i < conds.size(); ++i) {
    bool last = i + 1 == conds.size();
    int next = last ? Assembler::kReject : as.NewLabel();
    emit(conds[i], next);
    if (!last) {
      as.Jump(end);
      as.Bind(next);
    }
  }
  as.Bind(end);
}

void EmitHostCond(Assembler& as, const RemoteCond& c, int fail) {
  uint8_t args[sizeof(inet_diag_hostcond) + 16] = {};
  inet_diag_hostcond hc{};
  hc.family = static_cast<uint8_t>(c.addr.family);
  hc.prefix_len = static_cast<uint8_t>(c.prefix_len);
  hc.port = c.port;
  std::memcpy(args, &hc, sizeof hc);
  std::memcpy(args + sizeof hc, c.addr.bytes.data(), c.addr.size());
  as.Op(INET_DIAG_BC_D_COND, args, sizeof hc + c.addr.size(), fail);
}

}  // namespace

bool InetDiagFilter::CanMatch(int family) const {
  if (prefixes_.empty() && endpoints_.empty()) return true;
  if (family == AF_INET6) return true;  // v6 peers, and v4 peers as v4-mapped
  for (const auto& p : prefixes_) {
    if (p.network.family == AF_INET) return true;
  }
  for (const auto& e : endpoints_) {
    if (e.addr.Unmapped().family == AF_INET) return true;
  }
  return false;
}

std::vector<uint8_t> InetDiagFilter::Build(int family, size_t max_bytes) const {
  if (family == AF_UNSPEC) family = AF_INET6;  // carries every condition (see the header)
  std::vector<RemoteCond> remotes;
  for (const auto& p : prefixes_) {
    if (p.network.family == AF_INET || family == AF_INET6) remotes.push_back({p.network, p.prefix_len, -1});
  }
  for (const auto& e : endpoints_) {
    IpAddress a = e.addr.Unmapped();
    int bits = a.family == AF_INET ? 32 : 128;
    if (a.family == AF_INET || family == AF_INET6) remotes.push_back({a, bits, e.port});
  }
  auto assemble = [&](bool with_remotes) {
    Assembler as;
    if (!ports_.empty()) {
      EmitOrGroup(as, ports_, [&](uint16_t port, int fail) {
        as.PortOp(INET_DIAG_BC_S_GE, port, fail);
        as.PortOp(INET_DIAG_BC_S_LE, port, fail);
      });
    }
    if (with_remotes && !remotes.empty()) {
      EmitOrGroup(as, remotes, [&](const RemoteCond& c, int fail) { EmitHostCond(as, c, fail); });
    }
    if (as.size() == 0 || as.size() > max_bytes) return std::vector<uint8_t>{};
    return as.Finish();
  };
  std::vector<uint8_t> full = assemble(true);
  if (!full.empty() || (ports_.empty() && remotes.empty())) return full;
  return assemble(false);  // remotes did not fit: ports only (or nothing)
}

}  // namespace headshift
