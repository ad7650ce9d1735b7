// The polyrelay C ABI from C++ through the RAII wrapper polyrelay.hpp: a
// blocking call, an async call waited on with std::future, an error, and
// JWT access and refresh tokens.
//
//   c++ -std=c++17 example.cpp $(pkg-config --cflags --libs polyrelay) -pthread -o example
#include "polyrelay.hpp"

#include <future>
#include <iostream>
#include <string>

namespace {
/// The string member `name` of a flat JSON object (a token pair has no escapes).
std::string member(const std::string &json, const std::string &name) {
    const std::string key = "\"" + name + "\":\"";
    const auto start = json.find(key);
    if (start == std::string::npos) {
        return "";
    }
    const auto from = start + key.size();
    return json.substr(from, json.find('"', from) - from);
}
}  // namespace

int main() {
    try {
        polyrelay::Client client;
        std::cout << "polyrelay " << polyrelay::version() << "\n";

        polyrelay::Result weather = client.call("weather.current", R"({"lat": 52.52, "lon": 13.41})");
        std::cout << "weather from " << weather.provider() << ": " << weather.data_json() << "\n";

        std::promise<polyrelay::Outcome> promise;
        std::future<polyrelay::Outcome> outcome = promise.get_future();
        polyrelay::Call call = client.call_async(
            "finance.fx_rates", R"({"base": "USD", "symbols": ["EUR"]})",
            [&promise](polyrelay::Outcome done) { promise.set_value(std::move(done)); });
        polyrelay::Outcome rates = outcome.get();
        if (auto *result = std::get_if<polyrelay::Result>(&rates)) {
            std::cout << "rates from " << result->provider() << ": " << result->data_json() << "\n";
        } else {
            throw std::get<polyrelay::Error>(rates);
        }

        try {
            client.call("weather.tomorrow", "{}");
        } catch (const polyrelay::Error &error) {
            std::cout << "expected error (" << error.kind() << "): " << error.what() << "\n";
        }

        // Tokens: an HS256 key (at least 32 random bytes in real use), a login,
        // a refresh that spends the refresh token, and its reuse caught.
        polyrelay::Keyset keys;
        keys.add_hmac("2025-01", "HS256", "example-secret-of-at-least-32-bytes").sign_with("2025-01");
        polyrelay::TokenIssuer issuer(R"({"issuer": "https://auth.example", "audience": ["api"]})",
                                      keys);
        const std::string login = issuer.issue("user-42", R"({"scope": "read"})");
        std::cout << "claims: " << issuer.verify(member(login, "access_token")) << "\n";
        const std::string renewed = issuer.refresh(member(login, "refresh_token"));
        polyrelay::TokenVerifier verifier(keys, "https://auth.example", R"(["api"])", 60, "at+jwt");
        std::cout << "refreshed subject verified: "
                  << (verifier.verify(member(renewed, "access_token")).find("\"sub\":\"user-42\"") !=
                      std::string::npos)
                  << "\n";
        try {
            issuer.refresh(member(login, "refresh_token"));
        } catch (const polyrelay::Error &error) {
            std::cout << "expected token error (" << error.kind() << "): " << error.what() << "\n";
        }
    } catch (const polyrelay::Error &error) {
        std::cerr << "polyrelay failed (" << error.kind() << "): " << error.what() << "\n";
        return 1;
    }
    return 0;
}
