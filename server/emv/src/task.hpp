// A minimal lazy coroutine task for the kernel's flow (private to eftd_emv).
//
// The kernel is written as straight-line coroutines so the EMV step order reads like the
// books; a suspension means "waiting for the caller's answer". Nested tasks resume their
// caller by symmetric transfer; the innermost suspension point stores its handle so the
// kernel's next() can resume exactly there.
//
// GCC 12 coroutine bug: a non-trivially-destructible temporary inside a co_await expression
// can be destroyed twice. So tasks are always named locals, awaited as lvalues:
//     auto t = read_records();
//     const bool ok = co_await t;
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace eftd::emv::detail {

template <class T>
class task {
 public:
  struct promise_type {
    std::optional<T> value;
    std::coroutine_handle<> continuation = std::noop_coroutine();

    task get_return_object() { return task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;
      }
      void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }
    void return_value(T v) { value = std::move(v); }
    // The kernel's code does not throw (no exceptions on the transaction path); an escaping
    // exception is a bug and ends the process rather than leaving a half-run transaction.
    void unhandled_exception() noexcept { std::terminate(); }
  };

  explicit task(std::coroutine_handle<promise_type> h) : h_(h) {}
  task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  task& operator=(task&&) = delete;
  task(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
    h_.promise().continuation = caller;
    return h_;
  }
  T await_resume() { return std::move(*h_.promise().value); }

  std::coroutine_handle<promise_type> handle() const noexcept { return h_; }

 private:
  std::coroutine_handle<promise_type> h_;
};

// Suspends the flow until the caller feeds an answer; records where to resume.
struct answer_awaiter {
  std::coroutine_handle<>* slot;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { *slot = h; }
  void await_resume() const noexcept {}
};

}  // namespace eftd::emv::detail
