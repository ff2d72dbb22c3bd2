#pragma once

#include <QTest>

#include <chrono>
#include <future>
#include <thread>
#include <utility>

namespace tw::test {

// Runs f on a plain thread while this one spins its event loop until f returns, and
// returns what f returned. For blocking calls whose other end answers on this thread:
// the MongoDB wire peer, or an Engine stopping its sources against it. The call's own
// timeouts bound the wait.
template <typename F> auto offThread(F&& f) -> decltype(f()) {
    using R = decltype(f());
    std::packaged_task<R()> task(std::forward<F>(f));
    std::future<R> result = task.get_future();
    std::thread worker(std::move(task));
    while (result.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready)
        QTest::qWait(2);
    worker.join();
    return result.get();
}

} // namespace tw::test
