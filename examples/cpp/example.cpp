// The polyrelay C ABI from C++ through the RAII wrapper polyrelay.hpp: a
// blocking call, an async call waited on with std::future, and an error.
//
//   c++ -std=c++17 example.cpp $(pkg-config --cflags --libs polyrelay) -pthread -o example
#include "polyrelay.hpp"

#include <future>
#include <iostream>

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
    } catch (const polyrelay::Error &error) {
        std::cerr << "polyrelay failed (" << error.kind() << "): " << error.what() << "\n";
        return 1;
    }
    return 0;
}
