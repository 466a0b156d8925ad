// kingpin.hpp — a header-only C++17 wrapper over kingpin.h: RAII owners for configs, servers, clients and
// handles, and std::function handlers called on the IO threads. The ownership rules at the top of kingpin.h apply.
//
// Exceptions: kingpin::Error is thrown only by calls made outside callbacks (a bad config value, a server or client
// that cannot start, wait() or stats() failing). No exception reaches kingpin: every callback runs behind a
// trampoline that catches it, logs it (kp_log at KP_LOG_ERROR) and returns -1, so kingpin closes that connection
// with KP_CLOSE_CALLBACK_ERROR (detail -1).

#ifndef KINGPIN_HPP
#define KINGPIN_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "kingpin.h"

namespace kingpin {

/// A kingpin call failed: status() is its KP_ERR_* code, what() the library's message.
class Error : public std::runtime_error {
public:
    Error(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    /// The error of the call that just failed on this thread (its kp_last_error_message).
    explicit Error(int status) : Error(status, describe(status)) {}
    int status() const noexcept { return status_; }

private:
    static std::string describe(int status) {
        std::string message = kp_last_error_message();
        return message.empty() ? kp_status_name(status) : message;
    }
    int status_;
};

/// The message of the last error on the calling thread (kp_last_error_message).
inline std::string last_error() { return kp_last_error_message(); }

namespace detail {

/// `status`, or Error if it is negative.
inline int check(int status) {
    if (status < 0) throw Error(status);
    return status;
}

/// `d` in milliseconds; Error if it is negative.
inline std::uint64_t to_ms(std::chrono::milliseconds d) {
    if (d.count() < 0) throw Error(KP_ERR_INVALID_ARGUMENT, "kingpin.hpp: a negative duration");
    return static_cast<std::uint64_t>(d.count());
}

}  // namespace detail

/// The settings of a server or client (owns a kp_config), with the library's defaults until set. Setters chain and
/// throw Error on an invalid value; a Server or Client copies the config when it starts. Move-only.
class Config {
public:
    using Millis = std::chrono::milliseconds;

    Config() : raw_(kp_config_new()) {}

    /// Server: "IP:PORT" to listen on (port 0: the system picks one).
    Config& addr(const std::string& ip_port) { return set(kp_config_set_addr(get(), ip_port.c_str())); }
    Config& threads(std::size_t n) { return set(kp_config_set_threads(get(), n)); }
    Config& shutdown_timeout(Millis d) { return set(kp_config_set_shutdown_timeout_ms(get(), detail::to_ms(d))); }
    /// Zero disables a timeout.
    Config& idle_timeouts(Millis read, Millis write, Millis all) {
        const auto ms = detail::to_ms;
        return set(kp_config_set_idle_timeouts_ms(get(), ms(read), ms(write), ms(all)));
    }
    Config& max_connections(std::size_t n) { return set(kp_config_set_max_connections(get(), n)); }
    Config& max_connections_per_ip(std::size_t n) { return set(kp_config_set_max_connections_per_ip(get(), n)); }
    Config& water_marks(std::size_t high, std::size_t low) { return set(kp_config_set_water_marks(get(), high, low)); }
    Config& max_input_buffer(std::size_t bytes) { return set(kp_config_set_max_input_buffer(get(), bytes)); }
    Config& max_output_buffer(std::size_t bytes) { return set(kp_config_set_max_output_buffer(get(), bytes)); }
    Config& edge_triggered(bool on) { return set(kp_config_set_edge_triggered(get(), on ? 1 : 0)); }
    /// Keep a connection open after its peer's end of stream until it is closed here.
    Config& allow_half_close(bool on) { return set(kp_config_set_allow_half_close(get(), on ? 1 : 0)); }
    /// KP_ACCEPT_MUTEX, KP_ACCEPT_EXCLUSIVE or KP_ACCEPT_REUSEPORT.
    Config& accept_strategy(int strategy) { return set(kp_config_set_accept_strategy(get(), strategy)); }
    Config& connect_timeout(Millis d) { return set(kp_config_set_connect_timeout_ms(get(), detail::to_ms(d))); }
    /// Server: serve TLS with the certificate chain and key of these PEM files, offering the ALPN protocols of
    /// `alpn` (comma-separated, empty for none). The files are read now: Error if they are not usable.
    Config& tls_server(const std::string& cert_path, const std::string& key_path, const std::string& alpn = "") {
        return set(kp_config_set_tls_server(get(), cert_path.c_str(), key_path.c_str(), alpn.c_str()));
    }
    /// Client: trust the roots of this PEM file for Client::connect_tls, offering `alpn` (comma-separated).
    Config& tls_client(const std::string& ca_path, const std::string& alpn = "") {
        return set(kp_config_set_tls_client(get(), ca_path.c_str(), alpn.c_str()));
    }
    Config& reconnect(std::uint32_t max_attempts, Millis initial_backoff, Millis max_backoff) {
        return set(kp_config_set_reconnect(get(), max_attempts, detail::to_ms(initial_backoff),
                                           detail::to_ms(max_backoff)));
    }

    const kp_config* raw() const noexcept { return raw_.get(); }

private:
    kp_config* get() const noexcept { return raw_.get(); }
    Config& set(int status) {
        detail::check(status);
        return *this;
    }
    struct Free {
        void operator()(kp_config* c) const noexcept { kp_config_free(c); }
    };
    std::unique_ptr<kp_config, Free> raw_;
};

/// A move-only owner of a kp_handle: reaches one connection from any thread, also after it closed (calls then fail
/// with KP_ERR_CLOSED) or its server was freed. Calls on an empty Handle fail with KP_ERR_INVALID_ARGUMENT. Never
/// throws.
class Handle {
public:
    Handle() noexcept = default;
    /// Adopts `raw`, which this Handle frees.
    explicit Handle(kp_handle* raw) noexcept : raw_(raw) {}
    Handle(Handle&& other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    Handle& operator=(Handle&& other) noexcept {
        if (this != &other) {
            kp_handle_free(raw_);
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    ~Handle() { kp_handle_free(raw_); }

    /// Another handle to the same connection (empty if this one is, or on an error).
    Handle clone() const noexcept { return Handle(raw_ ? kp_handle_clone(raw_) : nullptr); }
    /// KP_OK once queued (copied). KP_ERR_FULL (the peer is slow to read: retry later), KP_ERR_CLOSED and
    /// KP_ERR_STOPPED are normal outcomes. Sends from one thread arrive in the order they were made.
    int send(const void* data, std::size_t len) const noexcept {
        return kp_handle_send(raw_, static_cast<const std::uint8_t*>(data), len);
    }
    int send(std::string_view bytes) const noexcept { return send(bytes.data(), bytes.size()); }
    /// Closes the connection once its pending output is written.
    int close() const noexcept { return kp_handle_close(raw_); }
    int shutdown_write() const noexcept { return kp_handle_shutdown_write(raw_); }
    /// Known to have closed (an empty handle counts as closed).
    bool is_closed() const noexcept { return kp_handle_is_closed(raw_) != 0; }
    /// A send would be taken now.
    bool is_writable() const noexcept { return kp_handle_is_writable(raw_) == 1; }
    /// The connection's id, as Conn::id() gives it.
    std::uint64_t id() const noexcept {
        std::uint64_t id = 0;
        kp_handle_id(raw_, &id, nullptr);
        return id;
    }
    explicit operator bool() const noexcept { return raw_ != nullptr; }
    kp_handle* raw() const noexcept { return raw_; }

private:
    kp_handle* raw_ = nullptr;
};

/// A connection as a callback sees it: a non-owning view over the callback's kp_conn, valid ONLY on that thread until
/// the callback returns. Never keep it (later calls fail with KP_ERR_STALE_CONN): keep a Handle instead. Its methods
/// return statuses and never throw (peer_addr() only for memory).
class Conn {
public:
    explicit Conn(kp_conn* raw) noexcept : raw_(raw) {}
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    /// Queues bytes (copied), written when the callback returns.
    int send(const void* data, std::size_t len) noexcept {
        return kp_conn_send(raw_, static_cast<const std::uint8_t*>(data), len);
    }
    int send(std::string_view bytes) noexcept { return send(bytes.data(), bytes.size()); }
    /// The unconsumed input, valid until the callback returns or it is consumed or sent.
    std::string_view input() const noexcept {
        std::size_t len = 0;
        const std::uint8_t* data = kp_conn_input(raw_, &len);
        return data ? std::string_view(reinterpret_cast<const char*>(data), len) : std::string_view();
    }
    /// Consumes the first `n` input bytes.
    int consume(std::size_t n) noexcept { return kp_conn_consume(raw_, n); }
    /// Sends all unconsumed input back and consumes it, without a copy when no output is pending.
    int echo() noexcept { return kp_conn_send_input(raw_); }
    /// Closes once pending output is written.
    int close() noexcept { return kp_conn_close(raw_); }
    /// Closes now, discarding pending output.
    int force_close() noexcept { return kp_conn_force_close(raw_); }
    int shutdown_write() noexcept { return kp_conn_shutdown_write(raw_); }
    int pause_reading(bool paused) noexcept { return kp_conn_pause_reading(raw_, paused ? 1 : 0); }
    std::size_t pending_output() const noexcept {
        std::size_t bytes = 0;
        kp_conn_pending_output(raw_, &bytes);
        return bytes;
    }
    std::uint64_t id() const noexcept {
        std::uint64_t id = 0;
        kp_conn_id(raw_, &id);
        return id;
    }
    /// The index of the IO thread that owns the connection (a negative status for a stale Conn).
    int loop_index() const noexcept { return kp_conn_loop_index(raw_); }
    /// A client connection's target tag (Client::connect); 0 on a server.
    std::uint64_t tag() const noexcept {
        std::uint64_t tag = 0;
        kp_conn_tag(raw_, &tag);
        return tag;
    }
    /// Whether the connection is TLS (its handshake done); `alpn`, if given, gets the agreed ALPN protocol.
    bool tls(std::string* alpn = nullptr) const {
        char buf[256] = "";
        const bool on = kp_conn_tls(raw_, buf, sizeof buf) == 1;
        if (alpn != nullptr) *alpn = buf;
        return on;
    }
    std::string peer_addr() const {
        char buf[KP_ADDR_STRLEN] = "";
        kp_conn_peer_addr(raw_, buf, sizeof buf);
        return buf;
    }
    /// The program's pointer for this connection (NULL until set); free what it points to in on_closed.
    void* user() const noexcept { return kp_conn_user(raw_); }
    template <class T>
    T* user_as() const noexcept {
        return static_cast<T*>(user());
    }
    int set_user(void* user) noexcept { return kp_conn_set_user(raw_, user); }
    /// Calls on_timer with `tag` after `delay`; returns the timer's id (never 0), or 0 on an error.
    std::uint64_t set_timer(std::chrono::milliseconds delay, std::uint64_t tag) noexcept {
        std::uint64_t timer = 0;
        const auto ms = static_cast<std::uint64_t>(delay.count() > 0 ? delay.count() : 0);
        return kp_conn_set_timer(raw_, ms, tag, &timer) == KP_OK ? timer : 0;
    }
    /// 1 if the timer was pending, 0 if it had fired or was cancelled, or a negative status.
    int cancel_timer(std::uint64_t timer) noexcept { return kp_conn_cancel_timer(raw_, timer); }
    /// A handle usable from any thread (empty on an error).
    Handle handle() noexcept { return Handle(kp_conn_handle(raw_)); }
    /// From now on, freeing the connection's last handle closes it.
    int close_on_last_handle() noexcept { return kp_conn_close_on_last_handle(raw_); }
    kp_conn* raw() const noexcept { return raw_; }

private:
    kp_conn* raw_;
};

/// The callbacks of one IO thread; an empty member does nothing (an empty on_idle closes the idle connection). They
/// run on that thread, one at a time.
struct Handlers {
    std::function<void(Conn&)> on_connect;
    /// New input: read it with Conn::input(), consume what was handled.
    std::function<void(Conn&)> on_message;
    std::function<void(Conn&)> on_write_complete;
    std::function<void(Conn&)> on_passively_closed;
    std::function<void(Conn&)> on_high_water;
    std::function<void(Conn&)> on_low_water;
    /// Exactly once per connection that got on_connect; `reason` is a KP_CLOSE_* code.
    std::function<void(Conn&, int reason, int detail)> on_closed;
    std::function<void(Conn&, std::uint64_t tag)> on_timer;
    /// `kind` is a KP_IDLE_* code; return true to keep the connection.
    std::function<bool(Conn&, int kind)> on_idle;
    /// Client: a target could not be connected (`host` is valid during the call only).
    std::function<void(const char* host, std::uint16_t port, std::uint64_t tag, int os_error, std::uint32_t attempts)>
        on_connect_failed;
    /// Once per loop turn, after its events and timers.
    std::function<void(std::size_t loop_index)> on_loop;
    /// The IO thread has served its last callback and is about to exit (kp_handler.destroy).
    std::function<void(std::size_t loop_index)> on_stop;
};

/// Makes the Handlers of IO thread `loop_index`, on that thread; the threads may call it at the same time.
using HandlersFactory = std::function<Handlers(std::size_t loop_index)>;

namespace detail {

/// Logs that `callback` threw `what` (bytes that are not UTF-8 are replaced by kp_log).
inline void report(const char* callback, const char* what) noexcept {
    char line[512];
    std::snprintf(line, sizeof line, "kingpin.hpp: %s threw: %s", callback, what);
    kp_log(KP_LOG_ERROR, line);
}

/// `body()`, or -1 if it threw (logged).
template <class Body>
int guard(const char* callback, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::exception& e) {
        report(callback, e.what());
    } catch (...) {
        report(callback, "an exception not derived from std::exception");
    }
    return -1;
}

/// One IO thread's loop_user: made by create, freed by destroy.
struct Loop {
    Handlers handlers;
    std::size_t index;
};

/// The C callbacks. Each finds its thread's Handlers in loop_user and lets no exception out. A thread whose factory
/// threw has no Loop (NULL): its connections close at their first callback.
struct Trampolines {
    using ConnEvent = std::function<void(Conn&)> Handlers::*;

    /// The kp_handler calling `factory` on each IO thread. With `known` (the Handlers every thread gets), a member
    /// empty there stays NULL and costs nothing; a factory's Handlers may differ by thread, so then all are set.
    static kp_handler table(HandlersFactory* factory, const Handlers* known) {
        auto pick = [known](auto member, auto trampoline) {
            return known == nullptr || static_cast<bool>(known->*member) ? trampoline : nullptr;
        };
        kp_handler c{};
        c.user = factory;
        c.create = &create;
        c.destroy = &destroy;
        c.on_connect = pick(&Handlers::on_connect, &conn_event<&Handlers::on_connect>);
        c.on_message = pick(&Handlers::on_message, &conn_event<&Handlers::on_message>);
        c.on_write_complete = pick(&Handlers::on_write_complete, &conn_event<&Handlers::on_write_complete>);
        c.on_passively_closed = pick(&Handlers::on_passively_closed, &conn_event<&Handlers::on_passively_closed>);
        c.on_high_water = pick(&Handlers::on_high_water, &conn_event<&Handlers::on_high_water>);
        c.on_low_water = pick(&Handlers::on_low_water, &conn_event<&Handlers::on_low_water>);
        c.on_closed = pick(&Handlers::on_closed, &on_closed);
        c.on_timer = pick(&Handlers::on_timer, &on_timer);
        c.on_idle = pick(&Handlers::on_idle, &on_idle);
        c.on_connect_failed = pick(&Handlers::on_connect_failed, &on_connect_failed);
        c.on_loop = pick(&Handlers::on_loop, &on_loop);
        return c;
    }

    static void* create(void* factory, std::size_t index) noexcept {
        Loop* loop = nullptr;
        guard("the Handlers factory", [&] {
            loop = new Loop{(*static_cast<HandlersFactory*>(factory))(index), index};
            return 0;
        });
        return loop;
    }

    static void destroy(void* loop_user) noexcept {
        auto* loop = static_cast<Loop*>(loop_user);
        call(loop_user, "on_stop", 0, [&](Handlers& h) {
            if (h.on_stop) h.on_stop(loop->index);
            return 0;
        });
        delete loop;
    }

    template <ConnEvent member>
    static int conn_event(void* loop_user, kp_conn* raw) noexcept {
        return call(loop_user, name<member>(), -1, [&](Handlers& h) {
            if (const auto& callback = h.*member) {
                Conn conn(raw);
                callback(conn);
            }
            return 0;
        });
    }

    static void on_closed(void* loop_user, kp_conn* raw, int reason, int detail) noexcept {
        call(loop_user, "on_closed", 0, [&](Handlers& h) {
            Conn conn(raw);
            if (h.on_closed) h.on_closed(conn, reason, detail);
            return 0;
        });
    }

    static int on_timer(void* loop_user, kp_conn* raw, std::uint64_t tag) noexcept {
        return call(loop_user, "on_timer", -1, [&](Handlers& h) {
            Conn conn(raw);
            if (h.on_timer) h.on_timer(conn, tag);
            return 0;
        });
    }

    static int on_idle(void* loop_user, kp_conn* raw, int kind) noexcept {
        return call(loop_user, "on_idle", KP_IDLE_CLOSE, [&](Handlers& h) {
            Conn conn(raw);
            return h.on_idle && h.on_idle(conn, kind) ? KP_IDLE_KEEP : KP_IDLE_CLOSE;
        });
    }

    static void on_connect_failed(void* loop_user, const char* host, std::uint16_t port, std::uint64_t tag,
                                  int os_error, std::uint32_t attempts) noexcept {
        call(loop_user, "on_connect_failed", 0, [&](Handlers& h) {
            if (h.on_connect_failed) h.on_connect_failed(host, port, tag, os_error, attempts);
            return 0;
        });
    }

    static void on_loop(void* loop_user, std::size_t index) noexcept {
        call(loop_user, "on_loop", 0, [&](Handlers& h) {
            if (h.on_loop) h.on_loop(index);
            return 0;
        });
    }

    /// `body(handlers)` behind guard(), or `missing` for a thread without Handlers.
    template <class Body>
    static int call(void* loop_user, const char* callback, int missing, Body&& body) noexcept {
        auto* loop = static_cast<Loop*>(loop_user);
        return loop == nullptr ? missing : guard(callback, [&] { return body(loop->handlers); });
    }

    template <ConnEvent member>
    static constexpr const char* name() noexcept {
        if constexpr (member == &Handlers::on_connect) return "on_connect";
        if constexpr (member == &Handlers::on_message) return "on_message";
        if constexpr (member == &Handlers::on_write_complete) return "on_write_complete";
        if constexpr (member == &Handlers::on_passively_closed) return "on_passively_closed";
        if constexpr (member == &Handlers::on_high_water) return "on_high_water";
        return "on_low_water";
    }
};

/// What Server and Client share: the C object and the factory its IO threads call. The factory is on the heap, so
/// its address (the kp_handler's `user`) survives moves; the C object is freed first, so no callback runs when the
/// factory goes.
template <class Raw, int (*free_raw)(Raw*)>
class Running {
public:
    using Start = int (*)(const kp_config*, const kp_handler*, Raw**);

    Running(Start start, const Config& config, HandlersFactory factory, const Handlers* known)
        : factory_(std::make_unique<HandlersFactory>(std::move(factory))) {
        const kp_handler table = Trampolines::table(factory_.get(), known);
        check(start(config.raw(), &table, &raw_));
    }
    Running(Running&& other) noexcept : factory_(std::move(other.factory_)), raw_(std::exchange(other.raw_, nullptr)) {}
    Running& operator=(Running&& other) noexcept {
        if (this != &other) {
            reset();
            factory_ = std::move(other.factory_);
            raw_ = std::exchange(other.raw_, nullptr);
        }
        return *this;
    }
    ~Running() { reset(); }

    Raw* raw() const noexcept { return raw_; }

private:
    void reset() noexcept {
        const int status = raw_ != nullptr ? free_raw(raw_) : KP_OK;
        if (status != KP_OK && status != KP_ERR_IO) {
            // Not freed (destroyed in one of its own callbacks, or the library failed inside): the C object may
            // still run callbacks, so the Handlers they call must live on.
            kp_log(KP_LOG_ERROR, "kingpin.hpp: a Server or Client could not be freed (destroyed in its own callback?): "
                                 "leaked");
            static_cast<void>(factory_.release());
        }
        raw_ = nullptr;
        factory_.reset();
    }

    std::unique_ptr<HandlersFactory> factory_;
    Raw* raw_ = nullptr;
};

}  // namespace detail

/// A running server (owns a kp_server): N IO threads serving connections with Handlers of their own. Move-only; its
/// destructor shuts it down, waits for its threads and frees it (never destroy it in its own callbacks). Its methods
/// may be called from any thread.
class Server {
public:
    /// Starts a server whose IO threads each call `factory` for their Handlers, on that thread (so each can have state
    /// of its own). Throws Error if it cannot start (e.g. the address is in use).
    Server(const Config& config, HandlersFactory factory)
        : running_(&kp_server_start, config, std::move(factory), nullptr) {}
    /// Starts a server whose IO threads each get a copy of `handlers`.
    Server(const Config& config, const Handlers& handlers)
        : running_(&kp_server_start, config, [handlers](std::size_t) { return handlers; }, &handlers) {}

    std::uint16_t port() const noexcept { return kp_server_port(raw()); }
    /// "IP:PORT" it listens on, with the real port.
    std::string local_addr() const {
        char buf[KP_ADDR_STRLEN] = "";
        detail::check(kp_server_local_addr(raw(), buf, sizeof buf));
        return buf;
    }
    /// Counters summed over the IO threads, from any thread (also while another waits); once the IO threads have
    /// ended, the final ones.
    kp_stats stats() const {
        kp_stats stats{};
        detail::check(kp_server_stats(raw(), &stats));
        return stats;
    }
    /// Begins a graceful shutdown and returns at once (any thread, callbacks too).
    void shutdown() const noexcept { kp_server_shutdown(raw()); }
    /// Blocks until the server has stopped; Error if an IO thread failed.
    void wait() const { detail::check(kp_server_wait(raw())); }
    /// The first SIGINT or SIGTERM shuts the server down gracefully (needs signals_install()).
    void shutdown_on_signal() const { detail::check(kp_server_shutdown_on_signal(raw())); }
    kp_server* raw() const noexcept { return running_.raw(); }

private:
    detail::Running<kp_server, &kp_server_free> running_;
};

/// A running client (owns a kp_client): N IO threads connecting the targets given to connect(). Move-only; its
/// destructor shuts it down and frees it (never destroy it in its own callbacks).
class Client {
public:
    /// Starts a client whose IO threads each call `factory` for their Handlers, on that thread.
    Client(const Config& config, HandlersFactory factory)
        : running_(&kp_client_start, config, std::move(factory), nullptr) {}
    /// Starts a client whose IO threads each get a copy of `handlers`.
    Client(const Config& config, const Handlers& handlers)
        : running_(&kp_client_start, config, [handlers](std::size_t) { return handlers; }, &handlers) {}

    /// Adds a target: connects to host:port, sends `first` once connected, then calls on_connect (where Conn::tag()
    /// gives `tag` back); on_connect_failed if it cannot. Any thread, callbacks too.
    int connect(const std::string& host, std::uint16_t port, std::string_view first = {},
                std::uint64_t tag = 0) const noexcept {
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(first.data());
        return kp_client_connect(raw(), host.c_str(), port, bytes, first.size(), tag);
    }
    /// Like connect(), over TLS: the server's certificate is checked for `server_name` (empty: `host`) against the
    /// roots of Config::tls_client. A failed handshake gets on_connect_failed with EPROTO.
    int connect_tls(const std::string& host, std::uint16_t port, const std::string& server_name = "",
                    std::string_view first = {}, std::uint64_t tag = 0) const noexcept {
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(first.data());
        const char* name = server_name.empty() ? nullptr : server_name.c_str();
        return kp_client_connect_tls(raw(), host.c_str(), port, name, bytes, first.size(), tag);
    }
    /// True once every target added so far is done (connected and closed, or failed); false on timeout or an error.
    bool wait_idle(std::chrono::milliseconds timeout) const {
        return kp_client_wait_idle(raw(), detail::to_ms(timeout)) == 1;
    }
    kp_stats stats() const {
        kp_stats stats{};
        detail::check(kp_client_stats(raw(), &stats));
        return stats;
    }
    /// Begins a graceful shutdown and returns at once (any thread, callbacks too).
    void shutdown() const noexcept { kp_client_shutdown(raw()); }
    /// The first SIGINT or SIGTERM shuts the client down gracefully (needs signals_install()).
    void shutdown_on_signal() const { detail::check(kp_client_shutdown_on_signal(raw())); }
    kp_client* raw() const noexcept { return running_.raw(); }

private:
    detail::Running<kp_client, &kp_client_free> running_;
};

/// Watches SIGINT and SIGTERM for Server::shutdown_on_signal(). Call it first thing in main, before any thread starts.
inline void signals_install() { detail::check(kp_signals_install()); }

/// Installs kingpin's async logger at `level` (KP_LOG_*, 0: off) writing to the file `path` (appended), or to stderr
/// without one. Throws Error (KP_ERR_ALREADY: a logger was installed already).
inline void log_init(int level, const char* path = nullptr) {
    detail::check(kp_log_init(level, path, nullptr, nullptr));
}

namespace detail {

using LogSink = std::function<void(std::string_view line)>;

/// The sink given to log_init, until log_shutdown().
inline std::unique_ptr<LogSink>& log_sink() {
    static std::unique_ptr<LogSink> sink;
    return sink;
}

/// Gives one line to the sink, on the logger's thread. What the sink throws is dropped: it cannot be logged.
inline void log_line(void* sink, const char* line, std::size_t len) noexcept {
    try {
        (*static_cast<LogSink*>(sink))(std::string_view(line, len));
    } catch (...) {
    }
}

}  // namespace detail

/// Installs kingpin's async logger at `level`, giving each line (without its newline) to `sink` on the logger's own
/// thread. Call log_shutdown() before main returns.
inline void log_init(int level, std::function<void(std::string_view line)> sink) {
    auto owned = std::make_unique<detail::LogSink>(std::move(sink));
    detail::check(kp_log_init(level, nullptr, &detail::log_line, owned.get()));
    detail::log_sink() = std::move(owned);
}

/// Writes `message` (UTF-8) at `level` through the installed logger; KP_OK or a status.
inline int log(int level, const std::string& message) noexcept { return kp_log(level, message.c_str()); }

/// Flushes the logger and stops its thread (then frees log_init's sink). Idempotent.
inline int log_shutdown() noexcept {
    const int status = kp_log_shutdown();
    detail::log_sink().reset();
    return status;
}

}  // namespace kingpin

#endif  // KINGPIN_HPP
