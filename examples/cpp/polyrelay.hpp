// polyrelay.hpp: a small header-only C++17 wrapper over the polyrelay C ABI.
//
// Every handle is owned by an RAII object (freed in its destructor), failures
// throw polyrelay::Error, and async calls take any callable. It adds no
// behaviour of its own: each method is one call of polyrelay.h.
//
//   polyrelay::Client client;                      // defaults + environment
//   auto reply = client.call("weather.current", R"({"lat": 52.52, "lon": 13.41})");
//   std::cout << reply.provider() << ": " << reply.data_json() << "\n";
//
// Thread safety is that of the C API: a Client may be used from many threads
// at once; a Result or Error may be read from many threads at once.
#ifndef POLYRELAY_HPP
#define POLYRELAY_HPP

#include <polyrelay.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace polyrelay {

namespace detail {
inline std::string text(const char *text) { return text ? std::string(text) : std::string(); }

struct ResultFree {
    void operator()(pr_result *result) const noexcept { pr_result_free(result); }
};
struct ClientFree {
    void operator()(pr_client *client) const noexcept { pr_client_free(client); }
};
struct CallHandleFree {
    void operator()(pr_call_handle *handle) const noexcept { pr_call_handle_free(handle); }
};
}  // namespace detail

/// A failed call: the status and every detail of the pr_error, copied.
class Error : public std::runtime_error {
  public:
    /// Takes ownership of `error` (may be NULL) and frees it.
    Error(pr_status status, pr_error *error)
        : std::runtime_error(error ? detail::text(pr_error_message(error))
                                   : detail::text(pr_status_name(status))),
          status_(status),
          kind_(detail::text(pr_status_name(status))),
          provider_(detail::text(pr_error_provider(error))),
          http_status_(pr_error_http_status(error)),
          retry_after_(pr_error_retry_after(error)),
          attempts_json_(error ? detail::text(pr_error_attempts_json(error)) : "[]") {
        pr_error_free(error);
    }

    pr_status status() const noexcept { return status_; }
    /// Stable snake_case name of the status, e.g. "rate_limited".
    const std::string &kind() const noexcept { return kind_; }
    /// The provider whose HTTP error this reports; empty if none answered.
    const std::string &provider() const noexcept { return provider_; }
    /// That provider's HTTP status; 0 if none answered.
    std::uint16_t http_status() const noexcept { return http_status_; }
    /// Seconds until a provider may answer again; negative when unknown.
    double retry_after() const noexcept { return retry_after_; }
    /// What each provider did, as a JSON array.
    const std::string &attempts_json() const noexcept { return attempts_json_; }

  private:
    pr_status status_;
    std::string kind_;
    std::string provider_;
    std::uint16_t http_status_;
    double retry_after_;
    std::string attempts_json_;
};

namespace detail {
inline void check(pr_status status, pr_error *error) {
    if (status != PR_OK) {
        throw Error(status, error);
    }
}

/// A string the C API handed over, freed with pr_string_free.
inline std::string take(char *owned) {
    std::unique_ptr<char, void (*)(char *)> guard(owned, pr_string_free);
    return text(owned);
}
}  // namespace detail

/// A successful answer. Move-only; frees its pr_result.
class Result {
  public:
    /// Takes ownership of `result`.
    explicit Result(pr_result *result) : handle_(result) {}

    /// The normalised answer as JSON.
    std::string data_json() const { return detail::text(pr_result_data_json(handle_.get())); }
    /// Id of the provider that answered, e.g. "open-meteo".
    std::string provider() const { return detail::text(pr_result_provider(handle_.get())); }
    bool cached() const noexcept { return pr_result_cached(handle_.get()); }
    bool stale() const noexcept { return pr_result_stale(handle_.get()); }
    /// What each provider did, as a JSON array.
    std::string attempts_json() const {
        return detail::text(pr_result_attempts_json(handle_.get()));
    }
    /// Seconds the call took.
    double elapsed() const noexcept { return pr_result_elapsed(handle_.get()); }
    /// The underlying handle, still owned by this object.
    const pr_result *get() const noexcept { return handle_.get(); }

  private:
    std::unique_ptr<pr_result, detail::ResultFree> handle_;
};

/// How an async call ended: a Result, or an Error (cancelled, shut down, ...).
using Outcome = std::variant<Result, Error>;

/// What an async call calls with its outcome, exactly once, on a polyrelay thread.
using OnOutcome = std::function<void(Outcome)>;

namespace detail {
/// The C callback of every async call: hands the outcome to the OnOutcome
/// passed as user data, then frees it. An exception escaping the OnOutcome
/// cannot cross into C: it ends the program (noexcept).
extern "C" inline void polyrelay_hpp_deliver(void *user_data, pr_status status,
                                             pr_result *result, pr_error *error) noexcept {
    std::unique_ptr<OnOutcome> on_outcome(static_cast<OnOutcome *>(user_data));
    if (status == PR_OK) {
        (*on_outcome)(Outcome(std::in_place_index<0>, result));
    } else {
        (*on_outcome)(Outcome(std::in_place_index<1>, status, error));
    }
}
}  // namespace detail

/// An async call in flight. Destroying it does not cancel the call.
class Call {
  public:
    explicit Call(pr_call_handle *handle) : handle_(handle) {}
    /// Ends the call with PR_ERR_CANCELLED unless it already finished; never waits.
    void cancel() const noexcept { pr_call_cancel(handle_.get()); }

  private:
    std::unique_ptr<pr_call_handle, detail::CallHandleFree> handle_;
};

/// The client. Move-only; destroying it shuts it down (calls in flight end
/// with PR_ERR_SHUTDOWN, their callbacks have returned) and frees it.
class Client {
  public:
    /// Default configuration: POLYRELAY_CONFIG, POLYRELAY_* variables, keys from the environment.
    Client() : handle_(create([](pr_client **out, pr_error **error) {
                   return pr_client_new(out, error);
               })) {}

    /// From TOML configuration text.
    static Client from_config_text(const std::string &toml) {
        return Client(create([&](pr_client **out, pr_error **error) {
            return pr_client_new_from_config_text(toml.c_str(), out, error);
        }));
    }

    /// From a TOML configuration file.
    static Client from_config_path(const std::string &path) {
        return Client(create([&](pr_client **out, pr_error **error) {
            return pr_client_new_from_config_path(path.c_str(), out, error);
        }));
    }

    /// Calls `capability` with JSON parameters and waits for the answer.
    Result call(const std::string &capability, const std::string &params_json) const {
        pr_result *result = nullptr;
        pr_error *error = nullptr;
        detail::check(
            pr_call(handle_.get(), capability.c_str(), params_json.c_str(), &result, &error),
            error);
        return Result(result);
    }

    /// Starts a call; `on_outcome` receives its Outcome exactly once, on a
    /// polyrelay thread. Throws (and never calls back) if it cannot start.
    Call call_async(const std::string &capability, const std::string &params_json,
                    OnOutcome on_outcome) const {
        auto owned = std::make_unique<OnOutcome>(std::move(on_outcome));
        pr_call_handle *handle = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_call_async(handle_.get(), capability.c_str(), params_json.c_str(),
                                    detail::polyrelay_hpp_deliver, owned.get(), &handle, &error),
                      error);
        owned.release();  // the callback owns it now
        return Call(handle);
    }

    /// Health of every capability, as JSON.
    std::string health_json() const { return view(pr_client_health_json); }
    /// Counters, breakers and quotas of every provider, as JSON.
    std::string stats_json() const { return view(pr_client_stats_json); }
    /// The providers of each capability in fallback order, as JSON.
    std::string providers_json() const { return view(pr_client_providers_json); }

    /// Ends every call in flight with PR_ERR_SHUTDOWN and waits for their callbacks.
    void shutdown() const { pr_client_shutdown(handle_.get()); }

  private:
    explicit Client(pr_client *client) : handle_(client) {}

    template <typename Create>
    static pr_client *create(Create create) {
        pr_client *client = nullptr;
        pr_error *error = nullptr;
        detail::check(create(&client, &error), error);
        return client;
    }

    std::string view(pr_status (*read)(const pr_client *, char **, pr_error **)) const {
        char *json = nullptr;
        pr_error *error = nullptr;
        detail::check(read(handle_.get(), &json, &error), error);
        return detail::take(json);
    }

    std::unique_ptr<pr_client, detail::ClientFree> handle_;
};

/// The version of the loaded library, "MAJOR.MINOR.PATCH".
inline std::string version() { return detail::text(pr_version()); }

}  // namespace polyrelay

#endif  // POLYRELAY_HPP
