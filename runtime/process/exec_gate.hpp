// Text file busy: a program cannot be exec'd while any process holds it open for writing. A
// fork in one thread copies every open fd of berth, a file another thread is copying included,
// and its child keeps that copy until it execs; an app exec'd from the file meanwhile fails
// (ETXTBSY: setpriv exits 126). So forks and writes of files that may be exec'd (source
// snapshots, release files) exclude each other: forks run together, writes run together, and
// the two kinds take turns. Thread-safe; every scope is short (one fork until its child has
// exec'd, one file from open to close).
#pragma once
#include <condition_variable>
#include <mutex>

namespace berth {

class exec_gate {
 public:
  enum class kind { fork, write };
  static exec_gate& instance();
  // Waits until no scope of the other kind is open (and none of the other kind waits for this
  // kind to drain), then opens one of `k`.
  void enter(kind k);
  void leave(kind k);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int open_[2] = {0, 0};
  int waiting_[2] = {0, 0};
};

// One scope of `k`, held for the object's life.
class exec_gate_scope {
 public:
  explicit exec_gate_scope(exec_gate::kind k) : k_(k) { exec_gate::instance().enter(k_); }
  ~exec_gate_scope() { exec_gate::instance().leave(k_); }
  exec_gate_scope(const exec_gate_scope&) = delete;
  exec_gate_scope& operator=(const exec_gate_scope&) = delete;

 private:
  exec_gate::kind k_;
};

}  // namespace berth
