// echo_server.cpp — kingpin's C++ API (kingpin.hpp) in an echo server: every byte read is
// sent back.
//
//   kingpin_echo_cpp --addr 127.0.0.1:9000 --threads 4      echo on the IO threads, no copy
//   kingpin_echo_cpp --echo-from-thread                      replies sent from a std::thread
//
// The first line on stdout is "echo_server (C++) listening on ADDR with N threads"; Ctrl+C
// (SIGINT or SIGTERM) stops it gracefully, and it prints what it served.

#include <kingpin.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace {

constexpr const char* kUsage =
    "usage: kingpin_echo_cpp [--addr IP:PORT] [--threads N] [--max-conns-per-ip N]\n"
    "                        [--echo-from-thread] [--log-level error|warn|info|debug|trace|off]\n"
    "                        [--help]\n"
    "  --addr IP:PORT         address to listen on (default 127.0.0.1:9000)\n"
    "  --threads N            IO threads (default: one per CPU)\n"
    "  --max-conns-per-ip N   most connections open at once from one address (0: no limit;\n"
    "                         default 256)\n"
    "  --echo-from-thread  send the replies from one std::thread through connection handles\n"
    "  --log-level LEVEL   kingpin's log level on stderr (default info)\n";

/// What the command line asked for.
struct Options {
    std::string addr = "127.0.0.1:9000";
    std::size_t threads = std::max(1u, std::thread::hardware_concurrency());
    std::size_t max_conns_per_ip = 256;
    bool echo_from_thread = false;
    int log_level = KP_LOG_INFO;
    bool help = false;
};

/// A bad command line (or a value kingpin refused): reported with the usage, exit status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::size_t parse_count(std::string_view flag, std::string_view text, std::size_t least) {
    std::size_t n = 0;
    const char* end = text.data() + text.size();
    auto [stop, error] = std::from_chars(text.data(), end, n);
    if (error != std::errc() || stop != end || n < least) {
        throw UsageError(std::string(flag) + " needs a whole number of at least " + std::to_string(least) + ", not '" +
                         std::string(text) + "'");
    }
    return n;
}

int parse_log_level(std::string_view text) {
    constexpr std::pair<std::string_view, int> levels[] = {
        {"off", 0},          {"error", KP_LOG_ERROR}, {"warn", KP_LOG_WARN},
        {"info", KP_LOG_INFO}, {"debug", KP_LOG_DEBUG}, {"trace", KP_LOG_TRACE},
    };
    for (const auto& [name, level] : levels) {
        if (text == name) return level;
    }
    throw UsageError("--log-level is one of error, warn, info, debug, trace, off; not '" + std::string(text) + "'");
}

Options parse(int argc, char** argv) {
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 == argc) throw UsageError("a value is missing after " + std::string(arg));
            return argv[++i];
        };
        if (arg == "--addr") {
            options.addr = value();
        } else if (arg == "--threads") {
            options.threads = parse_count(arg, value(), 1);
        } else if (arg == "--max-conns-per-ip") {
            options.max_conns_per_ip = parse_count(arg, value(), 0);
        } else if (arg == "--log-level") {
            options.log_level = parse_log_level(value());
        } else if (arg == "--echo-from-thread") {
            options.echo_from_thread = true;
        } else if (arg == "--help") {
            options.help = true;
        } else {
            throw UsageError("unknown argument " + std::string(arg));
        }
    }
    return options;
}

/// A reply for the sender thread: bytes to send back on the connection of `handle`, or (with
/// `close`) the close that follows a peer's end of stream, once the replies before it are sent.
struct Reply {
    std::shared_ptr<const kingpin::Handle> handle;
    std::string bytes;
    bool close = false;
};

/// Sends the replies of --echo-from-thread from one std::thread, first in first out, so that
/// each connection gets its replies in order. A full connection (its peer is slow to read)
/// holds the line: its reply is retried every millisecond until taken, closed, or stopped.
/// This shows the mechanism; the queue has no bound, and one peer that stops reading stalls
/// every other's replies. A real server would queue per connection, or pause reading
/// (Conn::pause_reading) while a connection's replies wait.
class Sender {
public:
    Sender() : thread_([this] { run(); }) {}
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;
    ~Sender() { stop(); }

    /// Queues a reply (from the IO threads).
    void push(Reply reply) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            queue_.push_back(std::move(reply));
        }
        ready_.notify_one();
    }

    /// Stops and joins the thread, dropping the replies left (their handles are freed), and
    /// returns how many sends succeeded.
    std::uint64_t stop() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        ready_.notify_one();
        if (thread_.joinable()) thread_.join();
        queue_.clear();
        return sent_;
    }

private:
    static constexpr std::chrono::milliseconds kFullRetry{1};

    void run() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            Reply reply = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            deliver(reply);
            lock.lock();
        }
    }

    /// Sends one reply, retrying while its connection is full; dropped once the connection
    /// has closed or the server stopped.
    void deliver(const Reply& reply) {
        if (reply.close) {
            reply.handle->close();  // after what was sent before it; fails harmlessly if closed already
            return;
        }
        for (;;) {
            const int status = reply.handle->send(reply.bytes);
            if (status == KP_OK) {
                ++sent_;
                return;
            }
            if (status != KP_ERR_FULL) {
                if (status != KP_ERR_CLOSED && status != KP_ERR_STOPPED) {
                    kingpin::log(KP_LOG_WARN, "echo_server: a reply was dropped: " + kingpin::last_error());
                }
                return;
            }
            if (stopping()) return;
            std::this_thread::sleep_for(kFullRetry);
        }
    }

    bool stopping() {
        std::lock_guard<std::mutex> lock(mutex_);
        return stopping_;
    }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Reply> queue_;
    bool stopping_ = false;
    std::uint64_t sent_ = 0;  // the sender thread's, read after it was joined
    std::thread thread_;      // last: it starts once the members above exist
};

/// One connection of --echo-from-thread: its handle, shared with the replies queued for it
/// (so the handle is freed by whichever lets go last: on_closed or the sender thread).
struct Session {
    std::shared_ptr<const kingpin::Handle> handle;
};

/// Echo on the IO thread: the input buffer itself is sent back.
kingpin::Handlers echo_handlers() {
    kingpin::Handlers handlers;
    handlers.on_message = [](kingpin::Conn& conn) { conn.echo(); };
    return handlers;
}

/// Echo through `sender`: the input is copied and queued, and the sender thread sends it
/// back with the connection's handle.
kingpin::Handlers cross_thread_handlers(Sender& sender) {
    kingpin::Handlers handlers;
    handlers.on_connect = [](kingpin::Conn& conn) {
        kingpin::Handle handle = conn.handle();
        if (!handle) throw std::runtime_error("no handle for the connection: " + kingpin::last_error());
        conn.set_user(new Session{std::make_shared<const kingpin::Handle>(std::move(handle))});
    };
    handlers.on_message = [&sender](kingpin::Conn& conn) {
        const std::string_view input = conn.input();
        sender.push(Reply{conn.user_as<Session>()->handle, std::string(input), false});
        conn.consume(input.size());
    };
    // The peer has ended its side (the connection stays open: half-close is on): close it
    // after the replies still queued for it, so a client that half-closes gets them all.
    handlers.on_passively_closed = [&sender](kingpin::Conn& conn) {
        sender.push(Reply{conn.user_as<Session>()->handle, std::string(), true});
    };
    handlers.on_closed = [](kingpin::Conn& conn, int, int) { delete conn.user_as<Session>(); };
    return handlers;
}

/// Serves until SIGINT or SIGTERM; returns the exit status.
int serve(const Options& options) {
    kingpin::Config config;
    try {
        config.addr(options.addr).threads(options.threads).max_connections_per_ip(options.max_conns_per_ip);
        // Replies leave from another thread: a peer's end of stream must not close the
        // connection before they are sent (the sender closes it after them).
        config.allow_half_close(options.echo_from_thread);
    } catch (const kingpin::Error& e) {
        throw UsageError(e.what());
    }
    std::optional<Sender> sender;  // declared before the server, so it outlives the server's callbacks
    if (options.echo_from_thread) sender.emplace();
    const kingpin::Handlers handlers = sender ? cross_thread_handlers(*sender) : echo_handlers();

    std::optional<kingpin::Server> server;
    try {
        server.emplace(config, handlers);
    } catch (const kingpin::Error& e) {
        std::cerr << "kingpin_echo_cpp: cannot listen on " << options.addr << ": " << e.what() << '\n';
        return 1;
    }
    server->shutdown_on_signal();
    std::cout << "echo_server (C++) listening on " << server->local_addr() << " with " << options.threads
              << " threads" << std::endl;

    server->wait();  // until a signal has shut the server down
    const kp_stats stats = server->stats();  // the final counters, while the server is not freed yet
    const std::uint64_t cross_thread_sends = sender ? sender->stop() : 0;
    std::cout << "stopped: accepted " << stats.accepted << ", closed " << stats.closed << ", bytes in "
              << stats.bytes_in << ", bytes out " << stats.bytes_out << ", cross-thread sends "
              << cross_thread_sends << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // First, before any thread starts: every later thread inherits the blocked signals.
    try {
        kingpin::signals_install();
    } catch (const kingpin::Error& e) {
        std::cerr << "kingpin_echo_cpp: " << e.what() << '\n';
        return 1;
    }
    int status = 0;
    try {
        const Options options = parse(argc, argv);
        if (options.help) {
            std::cout << kUsage;
            return 0;
        }
        kingpin::log_init(options.log_level);
        status = serve(options);
    } catch (const UsageError& e) {
        std::cerr << "kingpin_echo_cpp: " << e.what() << '\n' << kUsage;
        status = 2;
    } catch (const std::exception& e) {
        std::cerr << "kingpin_echo_cpp: " << e.what() << '\n';
        status = 1;
    }
    kingpin::log_shutdown();
    return status;
}
