#include "runtime/process/exec_gate.hpp"

namespace berth {

exec_gate& exec_gate::instance() {
  static exec_gate gate;
  return gate;
}

void exec_gate::enter(kind k) {
  int me = k == kind::fork ? 0 : 1, other = 1 - me;
  std::unique_lock lock(mu_);
  ++waiting_[me];
  // Turns: a kind that is waiting stops new scopes of the open kind, so neither starves.
  cv_.wait(lock, [&] { return open_[other] == 0 && (open_[me] == 0 ? true : waiting_[other] == 0); });
  --waiting_[me];
  ++open_[me];
}

void exec_gate::leave(kind k) {
  int me = k == kind::fork ? 0 : 1;
  {
    std::lock_guard lock(mu_);
    --open_[me];
  }
  cv_.notify_all();
}

}  // namespace berth
