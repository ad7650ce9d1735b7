/*
 * The C test program of the polyrelay C ABI, run by ffi/tests/c_abi.rs
 * against the emulator (POLYRELAY_EMULATOR_URL), linked with the shared and
 * the static library, and under valgrind.
 *
 * The driver injects four faults: every request under /down/ answers 503,
 * every request under /hang/ never answers, every request under /throttle/
 * answers 429 with `Retry-After: 3600`, and every request under /refuse/
 * answers OpenAI's 400 content-policy refusal. Clients made from
 * configuration text point providers there to take them down, keep calls in
 * flight, bench them, or have them refuse a prompt.
 *
 * Prints "ok - NAME" / "not ok - NAME" per check, "fact KEY VALUE" lines the
 * driver checks on its own, and "N passed, N failed" last; exits 1 on failure.
 * Frees everything it is given, so valgrind can tell a leak of ours.
 */
#define _POSIX_C_SOURCE 200809L
#include <polyrelay.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BERLIN "{\"lat\": 52.52, \"lon\": 13.41}"
#define THREADS 8

static int passed, failed;

static void check(int ok, const char *name, int line) {
    if (ok) {
        passed++;
        printf("ok - %s\n", name);
    } else {
        failed++;
        printf("not ok - %s (abi_test.c:%d)\n", name, line);
    }
    fflush(stdout);
}
#define CHECK(name, condition) check((condition) ? 1 : 0, (name), __LINE__)

static void sleep_ms(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static const char *or_dash(const char *text) { return text ? text : "-"; }

/* Checks a status, its error object and its kind; frees the error. */
static void expect_status(const char *name, pr_status got, pr_status want, pr_error **out) {
    pr_error *error = out ? *out : NULL; /* read after the call: argument order is unspecified */
    if (out) {
        *out = NULL;
    }
    printf("fact status.%s %d %s\n", name, (int)got, or_dash(pr_error_kind(error)));
    if (error) {
        printf("fact message.%s %s\n", name, pr_error_message(error));
    }
    CHECK(name, got == want && (want == PR_OK ? error == NULL
                                              : error != NULL && pr_error_status(error) == want));
    pr_error_free(error);
}

/* A client from configuration text with every %s replaced by the emulator URL. */
static pr_client *client_from(const char *emulator, const char *config_format) {
    char config[2048];
    snprintf(config, sizeof config, config_format, emulator, emulator);
    pr_client *client = NULL;
    pr_error *error = NULL;
    if (pr_client_new_from_config_text(config, &client, &error) != PR_OK) {
        printf("# cannot create client: %s\n", pr_error_message(error));
        pr_error_free(error);
        exit(2);
    }
    return client;
}

/* open-meteo answers 503 everywhere: weather.current falls back to met-norway,
 * weather.forecast has no other provider. */
static const char *DOWN_CONFIG =
    "[providers.open-meteo]\n"
    "base_url = \"%s/down/open-meteo\"\n"
    "retry = { initial_delay = \"5ms\", max_delay = \"20ms\" }\n"
    "[capabilities.\"weather.current\"]\n"
    "chain = [\"open-meteo\", \"met-norway\"]\n"
    "[capabilities.\"weather.forecast\"]\n"
    "chain = [\"open-meteo\"]\n";

/* weather.current is served by open-meteo alone, which never answers. */
static const char *HANG_CONFIG =
    "[providers.open-meteo]\n"
    "base_url = \"%s/hang/open-meteo\"\n"
    "[capabilities.\"weather.current\"]\n"
    "chain = [\"open-meteo\"]\n";

/* open-meteo alone, asking for an hour's wait (above max_retry_after). */
static const char *THROTTLE_CONFIG =
    "[providers.open-meteo]\n"
    "base_url = \"%s/throttle/open-meteo\"\n"
    "[capabilities.\"weather.current\"]\n"
    "chain = [\"open-meteo\"]\n";

/* llm.chat: openai refuses every prompt on content grounds; mistral, next in
 * the chain, must not be asked. */
static const char *REFUSE_CONFIG =
    "[providers.openai]\n"
    "base_url = \"%s/refuse/openai\"\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"openai\", \"mistral\"]\n";

/* llm.chat: openai alone, under a budget of 20 tokens for team-a's calls.
 * The first call (estimated at 16: "Hello" and max_tokens 10) fits; its
 * answer reports 29 tokens (the fixture's usage), so the next is refused
 * before it is sent. */
static const char *BUDGET_CONFIG =
    "[cache]\n"
    "enabled = false\n"
    "[providers.openai]\n"
    "base_url = \"%s/openai\"\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"openai\"]\n"
    "[budgets.team-a]\n"
    "tokens = 20\n"
    "tags = [\"team-a\"]\n";

/* ---- async calls: what one callback saw ---- */

typedef struct {
    atomic_int fired;
    pr_status status;
    char provider[64];
    char kind[64];
    char error_provider[64];
    unsigned http_status;
    const pr_client *blocking_client; /* when set, the callback makes a blocking call */
    pr_status blocking_status;
} call_state;

static void copy(char *to, size_t size, const char *from) {
    snprintf(to, size, "%s", from ? from : "");
}

static void on_done(void *user_data, pr_status status, pr_result *result, pr_error *error) {
    call_state *state = user_data;
    if (state->blocking_client) {
        pr_result *nested = NULL;
        pr_error *nested_error = NULL;
        state->blocking_status =
            pr_call(state->blocking_client, "weather.current", BERLIN, &nested, &nested_error);
        pr_result_free(nested);
        pr_error_free(nested_error);
    }
    state->status = status;
    copy(state->provider, sizeof state->provider, pr_result_provider(result));
    copy(state->kind, sizeof state->kind, pr_error_kind(error));
    copy(state->error_provider, sizeof state->error_provider, pr_error_provider(error));
    state->http_status = pr_error_http_status(error);
    pr_result_free(result);
    pr_error_free(error);
    atomic_fetch_add(&state->fired, 1);
}

/* Waits up to 60 s (valgrind is slow) for the callback. */
static int wait_fired(call_state *state) {
    for (int i = 0; i < 30000 && atomic_load(&state->fired) == 0; i++) {
        sleep_ms(2);
    }
    return atomic_load(&state->fired);
}

static pr_status start(const pr_client *client, const char *capability, const char *params,
                       call_state *state, pr_call_handle **handle) {
    pr_error *error = NULL;
    pr_status status = pr_call_async(client, capability, params, on_done, state, handle, &error);
    if (status != PR_OK) {
        printf("# not started: %s\n", pr_error_message(error));
    }
    pr_error_free(error);
    return status;
}

/* ---- the tests ---- */

static void test_version(void) {
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", POLYRELAY_VERSION_MAJOR,
             POLYRELAY_VERSION_MINOR, POLYRELAY_VERSION_PATCH);
    printf("fact version %s\n", pr_version());
    CHECK("the library's version matches the header's macros",
          strcmp(expected, pr_version()) == 0);
    CHECK("status names are static and stable",
          strcmp(pr_status_name(PR_ERR_SHUTDOWN), "shutdown") == 0 &&
              strcmp(pr_status_name(PR_ERR_RATE_LIMITED), "rate_limited") == 0 &&
              strcmp(pr_status_name(PR_ERR_CONTENT_FILTERED), "content_filtered") == 0 &&
              strcmp(pr_status_name(12345), "unknown") == 0);
}

static void test_bad_input(const pr_client *client) {
    pr_result *result = NULL;
    pr_error *error = NULL;

    expect_status("null_client", pr_call(NULL, "weather.current", BERLIN, &result, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("null_capability", pr_call(client, NULL, BERLIN, &result, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("null_params", pr_call(client, "weather.current", NULL, &result, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("null_result_out", pr_call(client, "weather.current", BERLIN, NULL, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("utf8_capability", pr_call(client, "weather.\xff\xfe", BERLIN, &result, &error),
                  PR_ERR_INVALID_UTF8, &error);
    expect_status("utf8_params",
                  pr_call(client, "weather.current", "{\"city\": \"\xc3\x28\"}", &result, &error),
                  PR_ERR_INVALID_UTF8, &error);
    expect_status("invalid_json",
                  pr_call(client, "weather.current", "{\"lat\": 52.5,", &result, &error),
                  PR_ERR_INVALID_JSON, &error);
    expect_status("unknown_capability",
                  pr_call(client, "weather.tomorrow", BERLIN, &result, &error),
                  PR_ERR_INVALID_REQUEST, &error);
    expect_status("invalid_params",
                  pr_call(client, "weather.current", "{\"lat\": 52.5}", &result, &error),
                  PR_ERR_INVALID_REQUEST, &error);
    CHECK("a failed call leaves *result NULL", result == NULL);

    CHECK("without an error out-parameter only the status is returned",
          pr_call(NULL, "weather.current", BERLIN, &result, NULL) == PR_ERR_NULL_ARGUMENT &&
              result == NULL);

    pr_client *other = NULL;
    expect_status("config_text_syntax", pr_client_new_from_config_text("[providers", &other, &error),
                  PR_ERR_CONFIG, &error);
    expect_status("config_text_unknown_provider",
                  pr_client_new_from_config_text("[providers.nope]\nenabled = true\n", &other,
                                                 &error),
                  PR_ERR_CONFIG, &error);
    expect_status("config_text_null", pr_client_new_from_config_text(NULL, &other, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("config_text_utf8", pr_client_new_from_config_text("a = \"\xff\"", &other, &error),
                  PR_ERR_INVALID_UTF8, &error);
    expect_status("config_path_missing",
                  pr_client_new_from_config_path("/nonexistent/polyrelay.toml", &other, &error),
                  PR_ERR_CONFIG, &error);
    expect_status("client_null_out", pr_client_new(NULL, &error), PR_ERR_NULL_ARGUMENT, &error);
    CHECK("a failed constructor leaves *client NULL", other == NULL);

    call_state state = {0};
    pr_call_handle *handle = NULL;
    expect_status("async_null_callback",
                  pr_call_async(client, "weather.current", BERLIN, NULL, &state, &handle, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("async_invalid_json",
                  pr_call_async(client, "weather.current", "nope", on_done, &state, &handle,
                                &error),
                  PR_ERR_INVALID_JSON, &error);
    expect_status("async_unknown_capability",
                  pr_call_async(client, "weather.tomorrow", BERLIN, on_done, &state, &handle,
                                &error),
                  PR_ERR_INVALID_REQUEST, &error);
    CHECK("cancelling a NULL handle is PR_ERR_NULL_ARGUMENT",
          pr_call_cancel(NULL) == PR_ERR_NULL_ARGUMENT);
    CHECK("shutting down a NULL client is PR_ERR_NULL_ARGUMENT",
          pr_client_shutdown(NULL) == PR_ERR_NULL_ARGUMENT);

    char *json = NULL;
    expect_status("health_null_client", pr_client_health_json(NULL, &json, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("stats_null_out", pr_client_stats_json(client, NULL, &error),
                  PR_ERR_NULL_ARGUMENT, &error);

    sleep_ms(50);
    CHECK("a call that was not started never calls back",
          atomic_load(&state.fired) == 0 && handle == NULL);

    CHECK("accessors of NULL handles return empty values",
          pr_result_provider(NULL) == NULL && pr_result_data_json(NULL) == NULL &&
              pr_result_attempts_json(NULL) == NULL && !pr_result_cached(NULL) &&
              !pr_result_stale(NULL) && pr_result_elapsed(NULL) < 0 &&
              pr_error_message(NULL) == NULL && pr_error_kind(NULL) == NULL &&
              pr_error_provider(NULL) == NULL && pr_error_attempts_json(NULL) == NULL &&
              pr_error_http_status(NULL) == 0 && pr_error_retry_after(NULL) < 0 &&
              pr_error_status(NULL) == PR_ERR_NULL_ARGUMENT);
    pr_result_free(NULL);
    pr_error_free(NULL);
    pr_client_free(NULL);
    pr_call_handle_free(NULL);
    pr_string_free(NULL);
    CHECK("freeing NULL does nothing", 1);
}

static void test_fallback(const pr_client *down) {
    pr_result *result = NULL;
    pr_error *error = NULL;
    pr_status status = pr_call(down, "weather.current", BERLIN, &result, &error);
    expect_status("fallback", status, PR_OK, &error);
    if (status != PR_OK) {
        return;
    }
    printf("fact fallback.provider %s\n", pr_result_provider(result));
    printf("fact fallback.attempts %s\n", pr_result_attempts_json(result));
    printf("fact fallback.data %s\n", pr_result_data_json(result));
    CHECK("with the primary down the next provider answers",
          strcmp(pr_result_provider(result), "open-meteo") != 0);
    CHECK("the attempts say why the primary was passed over",
          strstr(pr_result_attempts_json(result), "\"provider\":\"open-meteo\"") != NULL &&
              strstr(pr_result_attempts_json(result), "503") != NULL);
    CHECK("the answer is fresh", !pr_result_cached(result) && !pr_result_stale(result) &&
                                     pr_result_elapsed(result) > 0);
    CHECK("a weather answer has no cost", pr_result_cost_usd(result) < 0);
    pr_result_free(result);

    /* The same call again is a cache hit. */
    status = pr_call(down, "weather.current", BERLIN, &result, NULL);
    CHECK("the second call is served from the cache",
          status == PR_OK && pr_result_cached(result));
    pr_result_free(result);
}

static void test_errors(const pr_client *down) {
    pr_result *result = NULL;
    pr_error *error = NULL;
    pr_status status = pr_call(down, "weather.forecast", BERLIN, &result, &error);
    printf("fact error.status %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    printf("fact error.message %s\n", or_dash(pr_error_message(error)));
    printf("fact error.attempts %s\n", or_dash(pr_error_attempts_json(error)));
    CHECK("when every provider fails the error says which and how",
          status == PR_ERR_PROVIDER_ERROR && error != NULL &&
              strcmp(or_dash(pr_error_provider(error)), "open-meteo") == 0 &&
              pr_error_http_status(error) == 503 &&
              strstr(pr_error_attempts_json(error), "open-meteo") != NULL);
    pr_error_free(error);
}

static void test_rate_limited(const pr_client *throttled) {
    pr_result *result = NULL;
    pr_error *error = NULL;
    pr_status status = pr_call(throttled, "weather.current", BERLIN, &result, &error);
    printf("fact throttle.first %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    pr_error_free(error);
    error = NULL;

    /* Elsewhere, so no cache answers: open-meteo is benched, not asked. */
    status = pr_call(throttled, "weather.current", "{\"lat\": 48.85, \"lon\": 2.35}", &result,
                     &error);
    double wait = pr_error_retry_after(error);
    printf("fact throttle.next %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    printf("fact throttle.retry_after %.3f\n", wait);
    printf("fact throttle.attempts %s\n", or_dash(pr_error_attempts_json(error)));
    CHECK("a provider benched by a long Retry-After makes the next call PR_ERR_RATE_LIMITED",
          status == PR_ERR_RATE_LIMITED && error != NULL && result == NULL);
    CHECK("pr_error_retry_after says how long the bench has left", wait > 3500 && wait <= 3600);
    pr_error_free(error);
}

static void test_content_filtered(const pr_client *refusing) {
    pr_result *result = NULL;
    pr_error *error = NULL;
    pr_status status = pr_call(
        refusing, "llm.chat",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a prompt the filter refuses\"}]}",
        &result, &error);
    printf("fact refused.status %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    printf("fact refused.provider %s %u\n", or_dash(pr_error_provider(error)),
           pr_error_http_status(error));
    printf("fact refused.message %s\n", or_dash(pr_error_message(error)));
    CHECK("a content refusal is PR_ERR_CONTENT_FILTERED naming the provider",
          status == PR_ERR_CONTENT_FILTERED && result == NULL && error != NULL &&
              strcmp(or_dash(pr_error_provider(error)), "openai") == 0 &&
              pr_error_http_status(error) == 400);
    CHECK("its message carries the provider's reason and no wait",
          strstr(or_dash(pr_error_message(error)), "safety system") != NULL &&
              pr_error_retry_after(error) < 0);
    pr_error_free(error);
}

static void test_budget(const pr_client *budgeted) {
    const char *tagged = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], "
                         "\"max_tokens\": 10, \"tag\": \"team-a\"}";
    pr_result *result = NULL;
    pr_error *error = NULL;
    pr_status status = pr_call(budgeted, "llm.chat", tagged, &result, &error);
    CHECK("a tagged call within its budget is answered", status == PR_OK && result != NULL);
    pr_result_free(result);
    result = NULL;
    pr_error_free(error);
    error = NULL;

    status = pr_call(budgeted, "llm.chat", tagged, &result, &error);
    const char *attempts = or_dash(pr_error_attempts_json(error));
    printf("fact budget.status %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    printf("fact budget.attempts %s\n", attempts);
    CHECK("a call past its budget is PR_ERR_QUOTA_EXHAUSTED, skipped_budget in its trail",
          status == PR_ERR_QUOTA_EXHAUSTED && result == NULL &&
              strcmp(or_dash(pr_error_kind(error)), "quota_exhausted") == 0 &&
              strstr(attempts, "skipped_budget") != NULL &&
              strstr(attempts, "budget team-a") != NULL);
    pr_error_free(error);

    char *health = NULL;
    CHECK("health JSON reports the budget",
          pr_client_health_json(budgeted, &health, NULL) == PR_OK && health != NULL &&
              strstr(health, "\"budgets\":{\"team-a\":{") != NULL &&
              strstr(health, "\"limit\":20.0") != NULL &&
              strstr(health, "\"spent\":29.0") != NULL &&
              strstr(health, "\"unit\":\"tokens\"") != NULL);
    printf("fact budget.health %s\n", health ? health : "-");
    pr_string_free(health);
}

static void test_async(const pr_client *client, const pr_client *down) {
    call_state ok = {0};
    pr_call_handle *handle = NULL;
    CHECK("an async call starts",
          start(client, "finance.fx_rates", "{\"base\": \"USD\", \"symbols\": [\"EUR\"]}", &ok,
                &handle) == PR_OK &&
              handle != NULL);
    wait_fired(&ok);
    printf("fact async.ok %d %d %s\n", atomic_load(&ok.fired), (int)ok.status, ok.provider);
    CHECK("its callback fires once with the answer",
          atomic_load(&ok.fired) == 1 && ok.status == PR_OK && ok.provider[0] != '\0');
    CHECK("cancelling after the callback fired does nothing", pr_call_cancel(handle) == PR_OK);
    pr_call_handle_free(handle);

    call_state failed_call = {0};
    start(down, "weather.forecast", BERLIN, &failed_call, NULL);
    wait_fired(&failed_call);
    printf("fact async.error %d %d %s %u\n", atomic_load(&failed_call.fired),
           (int)failed_call.status, failed_call.kind, failed_call.http_status);
    CHECK("a failing async call calls back once with the error",
          atomic_load(&failed_call.fired) == 1 && failed_call.status == PR_ERR_PROVIDER_ERROR &&
              strcmp(failed_call.kind, "provider_error") == 0 &&
              strcmp(failed_call.error_provider, "open-meteo") == 0 &&
              failed_call.http_status == 503);

    call_state nested = {0};
    nested.blocking_client = client;
    start(client, "finance.fx_rates", "{\"base\": \"EUR\", \"symbols\": [\"GBP\"]}", &nested,
          NULL);
    wait_fired(&nested);
    printf("fact async.blocking_in_callback %d\n", (int)nested.blocking_status);
    CHECK("a blocking call from inside a callback returns PR_ERR_USAGE instead of deadlocking",
          atomic_load(&nested.fired) == 1 && nested.blocking_status == PR_ERR_USAGE);

    sleep_ms(100);
    CHECK("no callback fires twice", atomic_load(&ok.fired) == 1 &&
                                         atomic_load(&failed_call.fired) == 1 &&
                                         atomic_load(&nested.fired) == 1);
}

static void test_cancel(const pr_client *hang) {
    call_state cancelled = {0};
    pr_call_handle *handle = NULL;
    start(hang, "weather.current", BERLIN, &cancelled, &handle);
    sleep_ms(20);
    CHECK("a call in flight has not called back", atomic_load(&cancelled.fired) == 0);
    CHECK("cancel returns at once", pr_call_cancel(handle) == PR_OK);
    wait_fired(&cancelled);
    pr_call_cancel(handle); /* twice: harmless */
    sleep_ms(100);
    printf("fact cancel %d %d %s\n", atomic_load(&cancelled.fired), (int)cancelled.status,
           cancelled.kind);
    CHECK("a cancelled call calls back exactly once with PR_ERR_CANCELLED",
          atomic_load(&cancelled.fired) == 1 && cancelled.status == PR_ERR_CANCELLED &&
              strcmp(cancelled.kind, "cancelled") == 0);
    pr_call_handle_free(handle);
}

typedef struct {
    const pr_client *client;
    pr_status status;
} blocking_call;

static void *call_blocking(void *arg) {
    blocking_call *call = arg;
    pr_result *result = NULL;
    call->status = pr_call(call->client, "weather.current", BERLIN, &result, NULL);
    pr_result_free(result);
    return NULL;
}

static void test_shutdown(const char *emulator) {
    enum { CALLS = 4 };

    /* pr_client_shutdown with async and blocking calls in flight */
    pr_client *hang = client_from(emulator, HANG_CONFIG);
    call_state calls[CALLS];
    memset(calls, 0, sizeof calls);
    pr_call_handle *handles[CALLS] = {NULL};
    for (int i = 0; i < CALLS; i++) {
        /* one without a handle; one whose handle is freed at once (no cancel) */
        start(hang, "weather.current", BERLIN, &calls[i], i == 0 ? NULL : &handles[i]);
    }
    pr_call_handle_free(handles[1]);
    handles[1] = NULL;
    blocking_call blocking = {hang, PR_OK};
    pthread_t thread;
    pthread_create(&thread, NULL, call_blocking, &blocking);
    sleep_ms(50);
    int in_flight = 0;
    for (int i = 0; i < CALLS; i++) {
        in_flight += atomic_load(&calls[i].fired) == 0;
    }
    CHECK("calls are in flight before the shutdown", in_flight == CALLS);

    CHECK("shutdown returns PR_OK", pr_client_shutdown(hang) == PR_OK);
    int shut = 0;
    for (int i = 0; i < CALLS; i++) {
        shut += atomic_load(&calls[i].fired) == 1 && calls[i].status == PR_ERR_SHUTDOWN;
    }
    printf("fact shutdown.async %d/%d\n", shut, CALLS);
    CHECK("when shutdown returns every callback has fired once with PR_ERR_SHUTDOWN",
          shut == CALLS);
    pthread_join(thread, NULL);
    printf("fact shutdown.blocking %d\n", (int)blocking.status);
    CHECK("a blocking call in flight returns PR_ERR_SHUTDOWN", blocking.status == PR_ERR_SHUTDOWN);

    pr_result *result = NULL;
    pr_error *error = NULL;
    expect_status("call_after_shutdown", pr_call(hang, "weather.current", BERLIN, &result, &error),
                  PR_ERR_SHUTDOWN, &error);
    call_state late = {0};
    expect_status("async_after_shutdown",
                  pr_call_async(hang, "weather.current", BERLIN, on_done, &late, NULL, &error),
                  PR_ERR_SHUTDOWN, &error);
    CHECK("shutting down twice is harmless", pr_client_shutdown(hang) == PR_OK);
    for (int i = 0; i < CALLS; i++) {
        pr_call_handle_free(handles[i]);
    }
    pr_client_free(hang);
    sleep_ms(50);
    int total = 0;
    for (int i = 0; i < CALLS; i++) {
        total += atomic_load(&calls[i].fired);
    }
    CHECK("no callback fired again, none for a refused call",
          total == CALLS && atomic_load(&late.fired) == 0);

    /* pr_client_free alone with calls in flight */
    hang = client_from(emulator, HANG_CONFIG);
    call_state freed[CALLS];
    memset(freed, 0, sizeof freed);
    for (int i = 0; i < CALLS; i++) {
        start(hang, "weather.current", BERLIN, &freed[i], NULL);
    }
    sleep_ms(20);
    pr_client_free(hang);
    shut = 0;
    for (int i = 0; i < CALLS; i++) {
        shut += atomic_load(&freed[i].fired) == 1 && freed[i].status == PR_ERR_SHUTDOWN;
    }
    printf("fact free.async %d/%d\n", shut, CALLS);
    CHECK("freeing a client with calls in flight fires each callback once with PR_ERR_SHUTDOWN",
          shut == CALLS);
}

/* ---- 8 threads at once on one client ---- */

typedef struct {
    const pr_client *client;
    const pr_result *shared;
    pthread_barrier_t *barrier;
    int index;
    pr_status status;
    int views_ok;
    const char *shared_data;
    const char *shared_attempts;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    char params[64];
    snprintf(params, sizeof params, "{\"lat\": %d.25, \"lon\": %d.5}", 40 + w->index, w->index);
    pthread_barrier_wait(w->barrier);
    /* read the same result from every thread at once (built lazily, once) */
    w->shared_data = pr_result_data_json(w->shared);
    w->shared_attempts = pr_result_attempts_json(w->shared);
    pr_result *result = NULL;
    w->status = pr_call(w->client, "weather.current", params, &result, NULL);
    pr_result_free(result);
    char *health = NULL, *stats = NULL, *providers = NULL;
    w->views_ok = pr_client_health_json(w->client, &health, NULL) == PR_OK &&
                  pr_client_stats_json(w->client, &stats, NULL) == PR_OK &&
                  pr_client_providers_json(w->client, &providers, NULL) == PR_OK &&
                  strstr(health, "weather.current") && strstr(stats, "requests") &&
                  strstr(providers, "open-meteo");
    pr_string_free(health);
    pr_string_free(stats);
    pr_string_free(providers);
    return NULL;
}

static void test_threads(const pr_client *client) {
    pr_result *shared = NULL;
    if (pr_call(client, "weather.forecast", BERLIN, &shared, NULL) != PR_OK) {
        CHECK("a result to share between threads", 0);
        return;
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (worker){client, shared, &barrier, i, PR_ERR_PANIC, 0, NULL, NULL};
        pthread_create(&threads[i], NULL, work, &workers[i]);
    }
    int ok = 0, views = 0, same = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        ok += workers[i].status == PR_OK;
        views += workers[i].views_ok;
        same += workers[i].shared_data == workers[0].shared_data &&
                workers[i].shared_attempts == workers[0].shared_attempts &&
                workers[i].shared_data != NULL;
    }
    pthread_barrier_destroy(&barrier);
    pr_result_free(shared);
    printf("fact threads %d/%d\n", ok, THREADS);
    CHECK("8 threads calling one client at once all get answers", ok == THREADS);
    CHECK("health, stats and providers are readable from 8 threads at once", views == THREADS);
    CHECK("8 threads reading one result at once see the same strings", same == THREADS);
}

static void test_views(const pr_client *client) {
    char *json = NULL;
    pr_error *error = NULL;
    expect_status("providers_json", pr_client_providers_json(client, &json, &error), PR_OK, &error);
    printf("fact providers %s\n", json ? json : "-");
    pr_string_free(json);
    expect_status("parameters_json", pr_capability_parameters_json(NULL, &json, &error), PR_OK,
                  &error);
    printf("fact parameters %s\n", json ? json : "-");
    pr_string_free(json);
    expect_status("parameters_unknown",
                  pr_capability_parameters_json("weather.tomorrow", &json, &error),
                  PR_ERR_INVALID_REQUEST, &error);
    CHECK("no schema for an unknown capability", json == NULL);
    expect_status("health_json", pr_client_health_json(client, &json, &error), PR_OK, &error);
    printf("fact health %s\n", json ? json : "-");
    pr_string_free(json);
    expect_status("stats_json", pr_client_stats_json(client, &json, &error), PR_OK, &error);
    printf("fact stats %s\n", json ? json : "-");
    pr_string_free(json);
}

/* Prometheus text after test_budget's two chat calls: one answered, one
 * refused by its budget; the key never shows. */
static void test_metrics(const pr_client *budgeted) {
    char *text = NULL;
    pr_error *error = NULL;
    expect_status("metrics_text", pr_client_metrics_text(budgeted, &text, &error), PR_OK, &error);
    const char *t = text ? text : "";
    CHECK("metrics text counts the answered chat call",
          strstr(t, "# TYPE polyrelay_calls_total counter\n") != NULL &&
              strstr(t, "\npolyrelay_calls_total{capability=\"llm.chat\",outcome=\"success\"} 1\n") !=
                  NULL);
    CHECK("metrics text counts the call refused by its budget",
          strstr(t, "\npolyrelay_calls_total{capability=\"llm.chat\",outcome=\"quota_exhausted\"} "
                    "1\n") != NULL);
    CHECK("metrics text has the call latency histogram",
          strstr(t, "\npolyrelay_call_duration_seconds_count{capability=\"llm.chat\"} 2\n") != NULL);
    CHECK("metrics text never carries the key", strstr(t, "sk-test-c-abi-openai") == NULL);
    pr_string_free(text);
    text = NULL;
    expect_status("metrics_null_client", pr_client_metrics_text(NULL, &text, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    CHECK("no text for a NULL client", text == NULL);
    expect_status("metrics_null_out", pr_client_metrics_text(budgeted, NULL, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
}

/* The provider list of a client with keys set and its own chain, and of one
 * made from JSON configuration; the driver compares both with the core's. */
static const char *JSON_CONFIG =
    "{\"capabilities\": {\"weather.current\": {\"chain\": [\"met-norway\", \"open-meteo\"]}},"
    " \"providers\": {\"wttr-in\": {\"enabled\": false}}}";

static void test_catalog(const pr_client *keyed) {
    char *json = NULL;
    pr_error *error = NULL;
    expect_status("catalog_keyed", pr_client_providers_json(keyed, &json, &error), PR_OK, &error);
    printf("fact catalog.keyed %s\n", json ? json : "-");
    pr_string_free(json);
    json = NULL;

    pr_client *from_json = NULL;
    expect_status("config_json", pr_client_new_from_config_json(JSON_CONFIG, &from_json, &error),
                  PR_OK, &error);
    if (from_json) {
        expect_status("catalog_json", pr_client_providers_json(from_json, &json, &error), PR_OK,
                      &error);
        printf("fact catalog.json %s\n", json ? json : "-");
        pr_string_free(json);
        pr_client_free(from_json);
    }
    pr_client *other = NULL;
    expect_status("config_json_invalid", pr_client_new_from_config_json("{\"providers\":", &other,
                                                                        &error),
                  PR_ERR_INVALID_JSON, &error);
    expect_status("config_json_unknown_provider",
                  pr_client_new_from_config_json("{\"providers\": {\"nope\": {}}}", &other,
                                                 &error),
                  PR_ERR_CONFIG, &error);
    expect_status("config_json_null", pr_client_new_from_config_json(NULL, &other, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    CHECK("a failed JSON constructor leaves *client NULL", other == NULL);
}

/* ---- tokens ---- */

/* The HMAC key of the token tests: kid "c-test", HS256, exactly 32 bytes. */
static const char AUTH_SECRET[] = "polyrelay-c-test-secret-32-bytes";
static const char *AUTH_CONFIG =
    "{\"issuer\": \"https://auth.c.test\", \"audience\": [\"c-api\"], \"access_ttl\": \"5m\"}";

/* Tokens signed in advance with AUTH_SECRET under kid "c-test", typ at+jwt,
 * iss https://auth.c.test, sub alice, jti prebuilt-1, sid prebuilt-s, so
 * every check passes but the one each is named for. They stand in for an
 * injected clock, which the C ABI does not expose: */
/* aud c-api, iat 1500000000, exp 1500000900 (July 2017). */
static const char *TOKEN_EXPIRED =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImMtdGVzdCIsInR5cCI6ImF0K2p3dCJ9."
    "eyJpc3MiOiJodHRwczovL2F1dGguYy50ZXN0IiwiYXVkIjoiYy1hcGkiLCJzdWIiOiJhbGljZSIsImp0aSI6InByZWJ1"
    "aWx0LTEiLCJzaWQiOiJwcmVidWlsdC1zIiwiaWF0IjoxNTAwMDAwMDAwLCJleHAiOjE1MDAwMDA5MDB9."
    "zNyedy-zumlQFzHGmRZObbJhBxezrTvtUhUy-xOM4i4";
/* nbf 4000000000 (year 2096), exp 4000000900. */
static const char *TOKEN_NOT_YET_VALID =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImMtdGVzdCIsInR5cCI6ImF0K2p3dCJ9."
    "eyJpc3MiOiJodHRwczovL2F1dGguYy50ZXN0IiwiYXVkIjoiYy1hcGkiLCJzdWIiOiJhbGljZSIsImp0aSI6InByZWJ1"
    "aWx0LTEiLCJzaWQiOiJwcmVidWlsdC1zIiwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjQwMDAwMDAwMDAsImV4cCI6NDAw"
    "MDAwMDkwMH0.nW1p5EekJMa7W7m8RNYQ0xFtXU-bkc9hPyzbvukn9yM";
/* alg HS512 (with the same secret) under the HS256 key; exp 4102444800. */
static const char *TOKEN_BAD_ALGORITHM =
    "eyJhbGciOiJIUzUxMiIsImtpZCI6ImMtdGVzdCIsInR5cCI6ImF0K2p3dCJ9."
    "eyJpc3MiOiJodHRwczovL2F1dGguYy50ZXN0IiwiYXVkIjoiYy1hcGkiLCJzdWIiOiJhbGljZSIsImp0aSI6InByZWJ1"
    "aWx0LTEiLCJzaWQiOiJwcmVidWlsdC1zIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9."
    "CJtkoL3IkoAycZUql4Zgrk1IrjwIgbiGzOfQ7gXyRffz2E-mcMeO8FKtRmVnphMRHf_198zYckUFzULKZKE_Qw";
/* kid c-test-retired (not in the keyset); exp 4102444800. */
static const char *TOKEN_UNKNOWN_KEY =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImMtdGVzdC1yZXRpcmVkIiwidHlwIjoiYXQrand0In0."
    "eyJpc3MiOiJodHRwczovL2F1dGguYy50ZXN0IiwiYXVkIjoiYy1hcGkiLCJzdWIiOiJhbGljZSIsImp0aSI6InByZWJ1"
    "aWx0LTEiLCJzaWQiOiJwcmVidWlsdC1zIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9."
    "JIYyjhWiO-CcbIZ0xegog2mDLaN7HZJN2Pol2ygUap4";
/* aud other-api; exp 4102444800. */
static const char *TOKEN_WRONG_AUDIENCE =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImMtdGVzdCIsInR5cCI6ImF0K2p3dCJ9."
    "eyJpc3MiOiJodHRwczovL2F1dGguYy50ZXN0IiwiYXVkIjoib3RoZXItYXBpIiwic3ViIjoiYWxpY2UiLCJqdGkiOiJw"
    "cmVidWlsdC0xIiwic2lkIjoicHJlYnVpbHQtcyIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ."
    "5tg4PG8z11v5a5PgbNqdIgl4-CtPtZCLpjsCqmR6tTg";

/* Copies the string member `name` of a flat JSON object (token pairs hold no
 * escapes) into `to`; returns whether it was there. */
static int json_member(const char *json, const char *name, char *to, size_t size) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":\"", name);
    const char *start = json ? strstr(json, key) : NULL;
    const char *end = start ? strchr(start + strlen(key), '"') : NULL;
    if (!end || (size_t)(end - start - strlen(key)) >= size) {
        to[0] = '\0';
        return 0;
    }
    start += strlen(key);
    memcpy(to, start, (size_t)(end - start));
    to[end - start] = '\0';
    return 1;
}

/* Issues a pair for `subject` and copies out its two tokens. */
static int issue(const pr_auth_issuer *issuer, const char *subject, char *access, char *refresh,
                 size_t size) {
    char *pair = NULL;
    pr_error *error = NULL;
    pr_status status = pr_auth_issuer_issue(issuer, subject, "{\"scope\": \"read write\"}",
                                            &pair, &error);
    if (status != PR_OK) {
        printf("# cannot issue: %s\n", pr_error_message(error));
    }
    int ok = status == PR_OK && json_member(pair, "access_token", access, size) &&
             json_member(pair, "refresh_token", refresh, size) &&
             strstr(pair, "\"token_type\":\"Bearer\"") != NULL;
    pr_string_free(pair);
    pr_error_free(error);
    return ok;
}

/* Verifies `token` with the issuer, expecting `want`; returns the claims
 * (for pr_string_free) when it verified. */
static char *verify(const char *name, const pr_auth_issuer *issuer, const char *token,
                    pr_status want) {
    char *claims = NULL;
    pr_error *error = NULL;
    expect_status(name, pr_auth_issuer_verify(issuer, token, &claims, &error), want, &error);
    return claims;
}

static void test_auth_config(void) {
    pr_auth_keyset *keyset = NULL;
    pr_error *error = NULL;
    expect_status("auth_keyset_null_out", pr_auth_keyset_new(NULL, &error), PR_ERR_NULL_ARGUMENT,
                  &error);
    expect_status("auth_keyset_new", pr_auth_keyset_new(&keyset, &error), PR_OK, &error);
    expect_status("auth_short_secret",
                  pr_auth_keyset_add_hmac(keyset, "short", "HS256",
                                          (const uint8_t *)AUTH_SECRET, 31, &error),
                  PR_ERR_CONFIG, &error);
    expect_status("auth_alg_none",
                  pr_auth_keyset_add_hmac(keyset, "none", "none", (const uint8_t *)AUTH_SECRET,
                                          32, &error),
                  PR_ERR_CONFIG, &error);
    expect_status("auth_null_secret", pr_auth_keyset_add_hmac(keyset, "k", "HS256", NULL, 32, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("auth_null_keyset",
                  pr_auth_keyset_add_hmac(NULL, "k", "HS256", (const uint8_t *)AUTH_SECRET, 32,
                                          &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("auth_bad_pem",
                  pr_auth_keyset_add_private_pem(keyset, "ec", "ES256", "not a PEM", &error),
                  PR_ERR_CONFIG, &error);
    pr_auth_keyset *bad = keyset;
    expect_status("auth_bad_jwks", pr_auth_keyset_new_from_jwks("{\"keys\": 7}", &bad, &error),
                  PR_ERR_CONFIG, &error);
    CHECK("a failed keyset creation leaves NULL behind", bad == NULL);
    pr_auth_issuer *issuer = NULL;
    expect_status("auth_no_signing_key", pr_auth_issuer_new(AUTH_CONFIG, keyset, &issuer, &error),
                  PR_ERR_CONFIG, &error);
    expect_status("auth_add_hmac",
                  pr_auth_keyset_add_hmac(keyset, "c-test", "HS256", (const uint8_t *)AUTH_SECRET,
                                          32, &error),
                  PR_OK, &error);
    expect_status("auth_sign_with_unknown", pr_auth_keyset_sign_with(keyset, "nope", &error),
                  PR_ERR_CONFIG, &error);
    expect_status("auth_sign_with", pr_auth_keyset_sign_with(keyset, "c-test", &error), PR_OK,
                  &error);
    expect_status("auth_config_unknown_field",
                  pr_auth_issuer_new("{\"issuer\": \"i\", \"audience\": [\"a\"], \"ttl\": 5}",
                                     keyset, &issuer, &error),
                  PR_ERR_CONFIG, &error);
    expect_status("auth_config_not_json", pr_auth_issuer_new("{issuer", keyset, &issuer, &error),
                  PR_ERR_INVALID_JSON, &error);
    expect_status("auth_config_null", pr_auth_issuer_new(NULL, keyset, &issuer, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    char *jwks = NULL;
    expect_status("auth_public_jwks", pr_auth_keyset_public_jwks(keyset, &jwks, &error), PR_OK,
                  &error);
    CHECK("an HMAC secret is never published", jwks && strcmp(jwks, "{\"keys\":[]}") == 0);
    pr_string_free(jwks);
    CHECK("no issuer was made from a bad configuration", issuer == NULL);
    pr_auth_keyset_free(keyset);
    pr_auth_keyset_free(NULL);
    pr_auth_issuer_free(NULL);
    pr_auth_verifier_free(NULL);
}

static void test_auth(void) {
    enum { SIZE = 2048 };
    pr_auth_keyset *keyset = NULL;
    pr_auth_issuer *issuer = NULL;
    pr_error *error = NULL;
    pr_auth_keyset_new(&keyset, NULL);
    pr_auth_keyset_add_hmac(keyset, "c-test", "HS256", (const uint8_t *)AUTH_SECRET, 32, NULL);
    pr_auth_keyset_sign_with(keyset, "c-test", NULL);
    expect_status("auth_issuer_new", pr_auth_issuer_new(AUTH_CONFIG, keyset, &issuer, &error),
                  PR_OK, &error);
    pr_auth_verifier *verifier = NULL;
    expect_status("auth_verifier_new",
                  pr_auth_verifier_new(keyset, "https://auth.c.test", "[\"c-api\"]", 60, "at+jwt",
                                       &verifier, &error),
                  PR_OK, &error);
    pr_auth_keyset_free(keyset); /* the issuer and the verifier keep their own copy */
    if (!issuer || !verifier) {
        pr_auth_issuer_free(issuer);
        pr_auth_verifier_free(verifier);
        return;
    }

    static char access[SIZE], refresh[SIZE], access2[SIZE], refresh2[SIZE], tampered[SIZE];
    CHECK("issue gives an access and a refresh token", issue(issuer, "alice", access, refresh, SIZE));
    char *claims = verify("auth_verify", issuer, access, PR_OK);
    printf("fact auth.claims %s\n", claims ? claims : "-");
    CHECK("the claims name the subject, scope, issuer and audience",
          claims && strstr(claims, "\"sub\":\"alice\"") && strstr(claims, "\"scope\":\"read write\"") &&
              strstr(claims, "\"iss\":\"https://auth.c.test\"") && strstr(claims, "\"aud\":\"c-api\""));
    pr_string_free(claims);
    claims = NULL;
    expect_status("auth_verifier_verify", pr_auth_verifier_verify(verifier, access, &claims, &error),
                  PR_OK, &error);
    CHECK("the stateless verifier accepts the issuer's token",
          claims && strstr(claims, "\"sub\":\"alice\""));
    pr_string_free(claims);
    expect_status("auth_verifier_refresh_typ", pr_auth_verifier_verify(verifier, refresh, &claims, &error),
                  PR_ERR_AUTH_BAD_CLAIM, &error);
    pr_error *typ_error = NULL;
    pr_auth_verifier_verify(verifier, refresh, &claims, &typ_error);
    CHECK("a refresh token is not an access token: the error names typ",
          pr_error_claim(typ_error) && strcmp(pr_error_claim(typ_error), "typ") == 0);
    pr_error_free(typ_error);

    /* Flip one character in the middle of the signature. */
    snprintf(tampered, sizeof tampered, "%s", access);
    size_t at = strlen(tampered) - 10;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    pr_string_free(verify("auth_tampered", issuer, tampered, PR_ERR_AUTH_BAD_SIGNATURE));
    pr_string_free(verify("auth_expired", issuer, TOKEN_EXPIRED, PR_ERR_AUTH_EXPIRED));
    pr_string_free(
        verify("auth_not_yet_valid", issuer, TOKEN_NOT_YET_VALID, PR_ERR_AUTH_NOT_YET_VALID));
    pr_string_free(
        verify("auth_bad_algorithm", issuer, TOKEN_BAD_ALGORITHM, PR_ERR_AUTH_BAD_ALGORITHM));
    pr_string_free(verify("auth_unknown_key", issuer, TOKEN_UNKNOWN_KEY, PR_ERR_AUTH_UNKNOWN_KEY));
    pr_string_free(verify("auth_wrong_audience", issuer, TOKEN_WRONG_AUDIENCE, PR_ERR_AUTH_BAD_CLAIM));
    pr_string_free(verify("auth_malformed", issuer, "not-a-token", PR_ERR_AUTH_MALFORMED));
    pr_string_free(verify("auth_null_token", issuer, NULL, PR_ERR_NULL_ARGUMENT));
    pr_string_free(verify("auth_utf8_token", issuer, "\xff\xfe.x.y", PR_ERR_INVALID_UTF8));
    pr_string_free(verify("auth_null_issuer", NULL, access, PR_ERR_NULL_ARGUMENT));
    expect_status("auth_verify_null_out", pr_auth_issuer_verify(issuer, access, NULL, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("auth_verifier_expired",
                  pr_auth_verifier_verify(verifier, TOKEN_EXPIRED, &claims, &error),
                  PR_ERR_AUTH_EXPIRED, &error);
    CHECK("a failed verification leaves NULL behind", claims == NULL);
    expect_status("auth_issue_registered_claim",
                  pr_auth_issuer_issue(issuer, "alice", "{\"exp\": 1}", &claims, &error),
                  PR_ERR_CONFIG, &error);
    expect_status("auth_issue_claims_not_object",
                  pr_auth_issuer_issue(issuer, "alice", "[1]", &claims, &error),
                  PR_ERR_INVALID_JSON, &error);
    expect_status("auth_issue_null_subject", pr_auth_issuer_issue(issuer, NULL, NULL, &claims, &error),
                  PR_ERR_NULL_ARGUMENT, &error);

    /* Rotation: the refresh token is spent, the new pair works. */
    char *pair = NULL;
    expect_status("auth_refresh", pr_auth_issuer_refresh(issuer, refresh, &pair, &error), PR_OK,
                  &error);
    CHECK("refresh gives a new pair",
          json_member(pair, "access_token", access2, SIZE) &&
              json_member(pair, "refresh_token", refresh2, SIZE) && strcmp(refresh, refresh2) != 0);
    pr_string_free(pair);
    pr_string_free(verify("auth_verify_refreshed", issuer, access2, PR_OK));
    pair = NULL;
    /* Reuse: the spent refresh token again revokes the whole login. */
    expect_status("auth_reused", pr_auth_issuer_refresh(issuer, refresh, &pair, &error),
                  PR_ERR_AUTH_REUSED, &error);
    CHECK("a reused refresh token yields no pair", pair == NULL);
    expect_status("auth_refresh_after_reuse", pr_auth_issuer_refresh(issuer, refresh2, &pair, &error),
                  PR_ERR_AUTH_REVOKED, &error);
    pr_string_free(verify("auth_verify_after_reuse", issuer, access2, PR_ERR_AUTH_REVOKED));
    expect_status("auth_refresh_access_token", pr_auth_issuer_refresh(issuer, access2, &pair, &error),
                  PR_ERR_AUTH_BAD_CLAIM, &error);

    /* Revocation of one token, then of a login. */
    CHECK("a second login", issue(issuer, "bob", access, refresh, SIZE));
    expect_status("auth_revoke", pr_auth_issuer_revoke(issuer, access, &error), PR_OK, &error);
    pr_string_free(verify("auth_verify_revoked", issuer, access, PR_ERR_AUTH_REVOKED));
    expect_status("auth_refresh_sibling_of_revoked",
                  pr_auth_issuer_refresh(issuer, refresh, &pair, &error), PR_OK, &error);
    CHECK("revoking an access token leaves its login alive",
          json_member(pair, "access_token", access2, SIZE) &&
              json_member(pair, "refresh_token", refresh2, SIZE));
    pr_string_free(pair);
    pair = NULL;
    expect_status("auth_revoke_session", pr_auth_issuer_revoke_session(issuer, access2, &error),
                  PR_OK, &error);
    pr_string_free(verify("auth_verify_logged_out", issuer, access2, PR_ERR_AUTH_REVOKED));
    expect_status("auth_refresh_logged_out", pr_auth_issuer_refresh(issuer, refresh2, &pair, &error),
                  PR_ERR_AUTH_REVOKED, &error);
    expect_status("auth_revoke_tampered", pr_auth_issuer_revoke(issuer, tampered, &error),
                  PR_ERR_AUTH_BAD_SIGNATURE, &error);
    expect_status("auth_revoke_null", pr_auth_issuer_revoke(issuer, NULL, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    CHECK("auth status names are the core's error names",
          strcmp(pr_status_name(PR_ERR_AUTH_REUSED), "reused") == 0 &&
              strcmp(pr_status_name(PR_ERR_AUTH_NOT_YET_VALID), "not_yet_valid") == 0 &&
              strcmp(pr_status_name(PR_ERR_AUTH_UNAVAILABLE), "unavailable") == 0);

    pr_auth_verifier_free(verifier);
    pr_auth_issuer_free(issuer);
}

int main(void) {
    const char *emulator = getenv("POLYRELAY_EMULATOR_URL");
    if (!emulator) {
        fprintf(stderr, "POLYRELAY_EMULATOR_URL is not set\n");
        return 2;
    }
    pr_client *client = NULL;
    pr_error *error = NULL;
    if (pr_client_new(&client, &error) != PR_OK) {
        fprintf(stderr, "cannot create the client: %s\n", pr_error_message(error));
        pr_error_free(error);
        return 2;
    }
    pr_client *down = client_from(emulator, DOWN_CONFIG);
    pr_client *hang = client_from(emulator, HANG_CONFIG);
    pr_client *throttled = client_from(emulator, THROTTLE_CONFIG);
    /* Fake keys, read from the environment when the client is made. */
    setenv("OPENAI_API_KEY", "sk-test-c-abi-openai", 1);
    setenv("MISTRAL_API_KEY", "test-c-abi-mistral", 1);
    pr_client *refusing = client_from(emulator, REFUSE_CONFIG);
    pr_client *budgeted = client_from(emulator, BUDGET_CONFIG);

    test_version();
    test_bad_input(client);
    test_fallback(down);
    test_errors(down);
    test_rate_limited(throttled);
    test_content_filtered(refusing);
    test_budget(budgeted);
    test_async(client, down);
    test_cancel(hang);
    test_shutdown(emulator);
    test_threads(client);
    test_views(down);
    test_metrics(budgeted);
    test_catalog(refusing);
    test_auth_config();
    test_auth();

    pr_client_free(budgeted);
    pr_client_free(refusing);
    pr_client_free(throttled);
    pr_client_free(hang);
    pr_client_free(down);
    pr_client_free(client);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
