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
struct KeysetFree {
    void operator()(pr_auth_keyset *keyset) const noexcept { pr_auth_keyset_free(keyset); }
};
struct IssuerFree {
    void operator()(pr_auth_issuer *issuer) const noexcept { pr_auth_issuer_free(issuer); }
};
struct VerifierFree {
    void operator()(pr_auth_verifier *verifier) const noexcept { pr_auth_verifier_free(verifier); }
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
          reset_at_(pr_error_reset_at(error)),
          attempts_json_(error ? detail::text(pr_error_attempts_json(error)) : "[]"),
          claim_(detail::text(pr_error_claim(error))) {
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
    /// When every quota is used up: the first reset, in seconds since the
    /// Unix epoch (UTC); negative when unknown.
    double reset_at() const noexcept { return reset_at_; }
    /// What each provider did, as a JSON array.
    const std::string &attempts_json() const noexcept { return attempts_json_; }
    /// The claim a PR_ERR_AUTH_BAD_CLAIM error is about ("aud", "typ", ...); else empty.
    const std::string &claim() const noexcept { return claim_; }

  private:
    pr_status status_;
    std::string kind_;
    std::string provider_;
    std::uint16_t http_status_;
    double retry_after_;
    double reset_at_;
    std::string attempts_json_;
    std::string claim_;
};

namespace detail {
/// Throws the error of a failed call. Takes the out-parameter's address, not
/// its value: `check(pr_call(..., &error), error)` could read `error` before
/// the call wrote it (argument evaluation order is unspecified).
inline void check(pr_status status, pr_error *const *error) {
    if (status != PR_OK) {
        throw Error(status, *error);
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
            &error);
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
                      &error);
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
        detail::check(create(&client, &error), &error);
        return client;
    }

    std::string view(pr_status (*read)(const pr_client *, char **, pr_error **)) const {
        char *json = nullptr;
        pr_error *error = nullptr;
        detail::check(read(handle_.get(), &json, &error), &error);
        return detail::take(json);
    }

    std::unique_ptr<pr_client, detail::ClientFree> handle_;
};

/// Keys for tokens, each pinned to one algorithm ("HS256", "ES256", ...) and
/// named by a kid. Move-only; issuers and verifiers take a copy.
class Keyset {
  public:
    Keyset() : handle_(nullptr) {
        pr_auth_keyset *keyset = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_auth_keyset_new(&keyset, &error), &error);
        handle_.reset(keyset);
    }

    /// Verification keys from a JWKS document; `oct` keys can also sign.
    static Keyset from_jwks(const std::string &jwks) {
        pr_auth_keyset *keyset = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_auth_keyset_new_from_jwks(jwks.c_str(), &keyset, &error), &error);
        return Keyset(keyset);
    }

    /// An HMAC key from a raw secret of at least the digest size.
    Keyset &add_hmac(const std::string &kid, const std::string &alg, const std::string &secret) {
        return checked([&](pr_error **error) {
            return pr_auth_keyset_add_hmac(handle_.get(), kid.c_str(), alg.c_str(),
                                           reinterpret_cast<const std::uint8_t *>(secret.data()),
                                           secret.size(), error);
        });
    }
    /// A signing key from a private key PEM (RS256, ES256, EdDSA).
    Keyset &add_private_pem(const std::string &kid, const std::string &alg, const std::string &pem) {
        return checked([&](pr_error **error) {
            return pr_auth_keyset_add_private_pem(handle_.get(), kid.c_str(), alg.c_str(),
                                                  pem.c_str(), error);
        });
    }
    /// A verification-only key from a public key PEM.
    Keyset &add_public_pem(const std::string &kid, const std::string &alg, const std::string &pem) {
        return checked([&](pr_error **error) {
            return pr_auth_keyset_add_public_pem(handle_.get(), kid.c_str(), alg.c_str(),
                                                 pem.c_str(), error);
        });
    }
    /// Makes `kid` the key new tokens are signed with.
    Keyset &sign_with(const std::string &kid) {
        return checked([&](pr_error **error) {
            return pr_auth_keyset_sign_with(handle_.get(), kid.c_str(), error);
        });
    }
    /// The public JWKS of the asymmetric keys (never an HMAC secret).
    std::string public_jwks() const {
        char *json = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_auth_keyset_public_jwks(handle_.get(), &json, &error), &error);
        return detail::take(json);
    }
    /// The underlying handle, still owned by this object.
    const pr_auth_keyset *get() const noexcept { return handle_.get(); }

  private:
    explicit Keyset(pr_auth_keyset *keyset) : handle_(keyset) {}

    template <typename Change>
    Keyset &checked(Change change) {
        pr_error *error = nullptr;
        detail::check(change(&error), &error);
        return *this;
    }

    std::unique_ptr<pr_auth_keyset, detail::KeysetFree> handle_;
};

/// Issues, refreshes, verifies and revokes tokens; token state in memory.
/// Move-only; may be used from many threads at once. Token pairs are JSON
/// objects {"access_token", "refresh_token", "token_type", "expires_in",
/// "refresh_expires_in"}: they hold secrets, never log them.
class TokenIssuer {
  public:
    /// `config_json`: {"issuer": ..., "audience": [...], optional "access_ttl", ...}.
    TokenIssuer(const std::string &config_json, const Keyset &keyset) : handle_(nullptr) {
        pr_auth_issuer *issuer = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_auth_issuer_new(config_json.c_str(), keyset.get(), &issuer, &error),
                      &error);
        handle_.reset(issuer);
    }

    /// A new login for `subject`; `extra_claims_json` is a JSON object.
    std::string issue(const std::string &subject,
                      const std::string &extra_claims_json = "{}") const {
        char *pair = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_auth_issuer_issue(handle_.get(), subject.c_str(),
                                           extra_claims_json.c_str(), &pair, &error),
                      &error);
        return detail::take(pair);
    }
    /// A new pair for a refresh token, spending it (a reuse throws "reused").
    std::string refresh(const std::string &refresh_token) const {
        return answer(pr_auth_issuer_refresh, refresh_token);
    }
    /// The claims of a valid, unrevoked access token, as JSON.
    std::string verify(const std::string &access_token) const {
        return answer(pr_auth_issuer_verify, access_token);
    }
    /// Denies one token until it expires.
    void revoke(const std::string &token) const {
        pr_error *error = nullptr;
        detail::check(pr_auth_issuer_revoke(handle_.get(), token.c_str(), &error), &error);
    }
    /// Denies every token of the login `token` belongs to.
    void revoke_session(const std::string &token) const {
        pr_error *error = nullptr;
        detail::check(pr_auth_issuer_revoke_session(handle_.get(), token.c_str(), &error), &error);
    }

  private:
    std::string answer(pr_status (*call)(const pr_auth_issuer *, const char *, char **,
                                         pr_error **),
                       const std::string &token) const {
        char *json = nullptr;
        pr_error *error = nullptr;
        detail::check(call(handle_.get(), token.c_str(), &json, &error), &error);
        return detail::take(json);
    }

    std::unique_ptr<pr_auth_issuer, detail::IssuerFree> handle_;
};

/// Verifies tokens statelessly against a keyset. Move-only; may be used from
/// many threads at once.
class TokenVerifier {
  public:
    /// `issuer` and `typ` empty: not checked; no audience: a token with `aud` is refused.
    TokenVerifier(const Keyset &keyset, const std::string &issuer,
                  const std::string &audience_json, std::uint32_t leeway_seconds = 60,
                  const std::string &typ = "")
        : handle_(nullptr) {
        pr_auth_verifier *verifier = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_auth_verifier_new(keyset.get(), issuer.empty() ? nullptr : issuer.c_str(),
                                           audience_json.c_str(), leeway_seconds,
                                           typ.empty() ? nullptr : typ.c_str(), &verifier, &error),
                      &error);
        handle_.reset(verifier);
    }

    /// The claims of a valid token, as JSON.
    std::string verify(const std::string &token) const {
        char *claims = nullptr;
        pr_error *error = nullptr;
        detail::check(pr_auth_verifier_verify(handle_.get(), token.c_str(), &claims, &error),
                      &error);
        return detail::take(claims);
    }

  private:
    std::unique_ptr<pr_auth_verifier, detail::VerifierFree> handle_;
};

/// The version of the loaded library, "MAJOR.MINOR.PATCH".
inline std::string version() { return detail::text(pr_version()); }

}  // namespace polyrelay

#endif  // POLYRELAY_HPP
