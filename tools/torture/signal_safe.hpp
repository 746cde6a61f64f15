// signal_safe.hpp — what the tool's functions need when they may run inside
// the doorbell signal's handler (--delivery signal): a way to tell that they
// do, and a message builder that neither allocates nor locks.
//
// With signal delivery a host thread is interrupted wherever it is in its own
// code — inside malloc, holding the console's mutex, in the middle of a
// counter update — and the library runs the queued calls right there. So a
// function the tool sends must then be async-signal-safe: no malloc or free
// (ThreadSanitizer reports both as "signal-unsafe call inside of a signal"),
// no lock, no stdio. The library never runs calls from the handler while the
// host is inside the library itself (its doorbell mask), so the tool's own
// code is the only thing a handler can interrupt.
//
// Thread safety: everything here acts on the calling thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace xcall_torture {

struct run_state;

/// True when the calling thread runs inside a signal handler that blocks a
/// real-time signal, which with --delivery signal means the doorbell's:
/// while a handler runs, the kernel blocks its signal (and ThreadSanitizer,
/// which defers handlers, blocks every signal around them); the tool itself
/// never blocks a real-time signal. Always false without --delivery signal
/// (no system call then). Async-signal-safe: one rt_sigprocmask.
bool in_doorbell_handler(const run_state& run) noexcept;

/// A fixed-capacity text: appends literals and numbers, truncates silently.
/// Async-signal-safe, so a handler can word a failure message.
class fixed_text {
 public:
  static constexpr std::size_t kCapacity = 384;

  fixed_text& operator<<(const char* s) noexcept;
  fixed_text& operator<<(std::uint64_t v) noexcept;
  fixed_text& operator<<(unsigned v) noexcept { return *this << std::uint64_t{v}; }
  const char* c_str() const noexcept { return buf_; }
  std::string str() const { return std::string(buf_, len_); }

 private:
  char buf_[kCapacity] = {};
  std::size_t len_ = 0;
};

}  // namespace xcall_torture
