/*
 * The C test program of polyrelay's streaming C API (pr_stream_*), run by
 * ffi/tests/c_abi.rs against the emulator (POLYRELAY_EMULATOR_URL), linked
 * with the shared and the static library, and under valgrind.
 *
 * The driver serves the recorded streams of openai, mistral and deepseek
 * under /stream/, openai's cut before its fourth event under /cut/ and
 * stalled before its fourth event under /stall/, and answers 503 under
 * /down/. Clients made from configuration text point providers there.
 *
 * Prints "ok - NAME" / "not ok - NAME" per check, "fact KEY VALUE" lines the
 * driver checks on its own, and "N passed, N failed" last; exits 1 on failure.
 * Frees everything it is given, so valgrind can tell a leak of ours.
 */
#define _POSIX_C_SOURCE 200809L
#include <polyrelay.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int passed, failed;

static void check(int ok, const char *name, int line) {
    if (ok) {
        passed++;
        printf("ok - %s\n", name);
    } else {
        failed++;
        printf("not ok - %s (stream_test.c:%d)\n", name, line);
    }
    fflush(stdout);
}
#define CHECK(name, condition) check((condition) ? 1 : 0, (name), __LINE__)

static void sleep_ms(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

static const char *or_dash(const char *text) { return text ? text : "-"; }

/* A chat question; each test asks its own, so that none is answered from
 * the cache of another. */
static void question(char *to, size_t size, const char *content) {
    snprintf(to, size, "{\"messages\": [{\"role\": \"user\", \"content\": \"%s\"}]}", content);
}

/* A client for llm.chat from configuration text with every %s replaced by
 * the emulator URL. */
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

static const char *STREAM_CONFIG =
    "[providers.openai]\n"
    "base_url = \"%s/stream/openai\"\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"openai\"]\n";

static const char *REASONING_CONFIG =
    "[providers.deepseek]\n"
    "base_url = \"%s/stream/deepseek\"\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"deepseek\"]\n";

/* openai's stream is cut after "Hello!"; mid_stream = "error" (the default). */
static const char *CUT_CONFIG =
    "[providers.openai]\n"
    "base_url = \"%s/cut/openai\"\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"openai\"]\n";

/* openai's stream is cut after "Hello!" and mistral continues it. */
static const char *CONTINUE_CONFIG =
    "[providers.openai]\n"
    "base_url = \"%s/cut/openai\"\n"
    "[providers.mistral]\n"
    "base_url = \"%s/stream/mistral\"\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"openai\", \"mistral\"]\n"
    "mid_stream = \"continue\"\n";

/* openai's stream goes silent after "Hello!" (for longer than the tests). */
static const char *STALL_CONFIG =
    "[providers.openai]\n"
    "base_url = \"%s/stall/openai\"\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"openai\"]\n";

/* openai answers 503 before any token. */
static const char *DOWN_CONFIG =
    "[providers.openai]\n"
    "base_url = \"%s/down/openai\"\n"
    "retry = { max_attempts = 1 }\n"
    "[capabilities.\"llm.chat\"]\n"
    "chain = [\"openai\"]\n";

/* ---- push style: what one stream's callbacks saw ---- */

typedef struct {
    char text[1024];
    char reasoning[1024];
    atomic_int chunks;           /* text and reasoning chunks */
    int bad_chunks;              /* empty, or not NUL-terminated at len */
    int stop_after;              /* on_chunk returns 1 at this chunk; 0: never */
    pr_stream *pull_inside;      /* when set, on_chunk tries pr_stream_next on it */
    pr_status pull_inside_status;
    atomic_int done;
    atomic_int chunks_after_done;
    pr_status status;
    char kind[64];
    char partial[256];
    char data[1024];
    char parts[256];
    char provider[64];
    double ttft;
    double cost;
    int cached;
} push_state;

static void append(char *to, size_t size, const char *text, size_t len) {
    size_t used = strlen(to);
    if (used + len < size) {
        memcpy(to + used, text, len);
        to[used + len] = '\0';
    }
}

static void copy(char *to, size_t size, const char *from) {
    snprintf(to, size, "%s", from ? from : "");
}

static int on_chunk(void *user_data, const char *text, size_t len, pr_chunk_kind kind) {
    push_state *state = user_data;
    if (atomic_load(&state->done)) {
        atomic_fetch_add(&state->chunks_after_done, 1);
    }
    if (len == 0 || text[len] != '\0' || strlen(text) != len) {
        state->bad_chunks++;
    }
    if (kind == PR_CHUNK_REASONING) {
        append(state->reasoning, sizeof state->reasoning, text, len);
    } else {
        append(state->text, sizeof state->text, text, len);
    }
    if (state->pull_inside) {
        const char *inner = NULL;
        size_t inner_len = 0;
        pr_chunk_kind inner_kind;
        state->pull_inside_status =
            pr_stream_next(state->pull_inside, &inner, &inner_len, &inner_kind, NULL);
        state->pull_inside = NULL;
    }
    int seen = atomic_fetch_add(&state->chunks, 1) + 1;
    return state->stop_after != 0 && seen >= state->stop_after;
}

static void on_done(void *user_data, pr_status status, pr_result *result, pr_error *error) {
    push_state *state = user_data;
    state->status = status;
    copy(state->kind, sizeof state->kind, pr_error_kind(error));
    copy(state->partial, sizeof state->partial, pr_error_partial_text(error));
    copy(state->data, sizeof state->data, pr_result_data_json(result));
    copy(state->parts, sizeof state->parts, pr_result_stream_parts_json(result));
    copy(state->provider, sizeof state->provider, pr_result_provider(result));
    state->ttft = pr_result_time_to_first_token(result);
    state->cost = pr_result_cost_usd(result);
    state->cached = pr_result_cached(result);
    pr_result_free(result);
    pr_error_free(error);
    atomic_fetch_add(&state->done, 1);
}

/* Waits up to 60 s (valgrind is slow) until `*counter` reaches `count`. */
static int wait_for(atomic_int *counter, int count) {
    for (int i = 0; i < 30000 && atomic_load(counter) < count; i++) {
        sleep_ms(2);
    }
    return atomic_load(counter) >= count;
}

static pr_status start(const pr_client *client, const char *content, push_state *state,
                       pr_call_handle **handle) {
    char params[256];
    question(params, sizeof params, content);
    pr_error *error = NULL;
    pr_status status =
        pr_stream_start(client, "llm.chat", params, on_chunk, on_done, state, handle, &error);
    if (status != PR_OK) {
        printf("# not started: %s\n", pr_error_message(error));
    }
    pr_error_free(error);
    return status;
}

/* Prints what a finished push stream saw under `name`. */
static void push_facts(const char *name, push_state *state) {
    printf("fact %s.done %d %d %s\n", name, atomic_load(&state->done), (int)state->status,
           pr_status_name(state->status));
    printf("fact %s.chunks %d\n", name, atomic_load(&state->chunks));
    printf("fact %s.text %s\n", name, state->text);
    printf("fact %s.reasoning %s\n", name, state->reasoning);
    printf("fact %s.data %s\n", name, state->data[0] ? state->data : "-");
    printf("fact %s.parts %s\n", name, state->parts[0] ? state->parts : "-");
    printf("fact %s.partial %s\n", name, state->partial[0] ? state->partial : "-");
    printf("fact %s.cached %d\n", name, state->cached);
}

/* Whether `data` (a result's JSON) has `"text":"<text>"`: the texts here
 * need no JSON escapes. */
static int data_has_text(const char *data, const char *text) {
    char member[1100];
    snprintf(member, sizeof member, "\"text\":\"%s\"", text);
    return strstr(data, member) != NULL;
}

/* ---- the tests ---- */

static void test_push(const pr_client *client) {
    push_state state = {0};
    CHECK("a stream starts", start(client, "push", &state, NULL) == PR_OK);
    wait_for(&state.done, 1);
    sleep_ms(50);
    push_facts("push", &state);
    CHECK("on_done fires once with the answer", atomic_load(&state.done) == 1 &&
                                                    state.status == PR_OK &&
                                                    strcmp(state.provider, "openai") == 0);
    CHECK("chunks arrive one by one, NUL-terminated at their length",
          atomic_load(&state.chunks) > 1 && state.bad_chunks == 0 &&
              atomic_load(&state.chunks_after_done) == 0);
    CHECK("the chunks join into the final text", state.text[0] != '\0' &&
                                                     data_has_text(state.data, state.text));
    CHECK("the result says who wrote the text and when the first token came",
          strstr(state.parts, "\"provider\":\"openai\"") != NULL && state.ttft >= 0 &&
              !state.cached);
    CHECK("the result says what the answer cost", state.cost > 0);

    /* The same question again: replayed from the cache as one chunk. */
    push_state again = {0};
    start(client, "push", &again, NULL);
    wait_for(&again.done, 1);
    push_facts("cached", &again);
    CHECK("a cached answer is replayed as one chunk, then on_done",
          atomic_load(&again.done) == 1 && again.status == PR_OK && again.cached &&
              atomic_load(&again.chunks) == 1 && strcmp(again.text, state.text) == 0 &&
              again.ttft < 0);
    CHECK("a cached answer cost nothing", again.cost == 0);
}

static void test_reasoning(const pr_client *client) {
    push_state state = {0};
    start(client, "reasoning", &state, NULL);
    wait_for(&state.done, 1);
    push_facts("reasoning", &state);
    CHECK("reasoning comes in chunks of its own kind, apart from the answer",
          state.status == PR_OK && state.reasoning[0] != '\0' && state.text[0] != '\0' &&
              strstr(state.text, state.reasoning) == NULL && data_has_text(state.data, state.text));
}

static void test_interrupted(const pr_client *cut) {
    push_state state = {0};
    start(cut, "cut", &state, NULL);
    wait_for(&state.done, 1);
    sleep_ms(50);
    push_facts("interrupted", &state);
    CHECK("a stream cut mid-way ends once with PR_ERR_STREAM_INTERRUPTED",
          atomic_load(&state.done) == 1 && state.status == PR_ERR_STREAM_INTERRUPTED &&
              strcmp(state.kind, "stream_interrupted") == 0);
    CHECK("its error holds the text received before the cut",
          state.partial[0] != '\0' && strcmp(state.partial, state.text) == 0);
}

static void test_continued(const pr_client *continuing) {
    push_state state = {0};
    start(continuing, "continue", &state, NULL);
    wait_for(&state.done, 1);
    push_facts("continued", &state);
    CHECK("with mid_stream = continue another provider finishes a cut stream",
          atomic_load(&state.done) == 1 && state.status == PR_OK &&
              strcmp(state.provider, "mistral") == 0 && data_has_text(state.data, state.text));
    CHECK("the parts name both writers in order",
          strstr(state.parts, "openai") != NULL && strstr(state.parts, "mistral") != NULL &&
              strstr(state.parts, "openai") < strstr(state.parts, "mistral"));
}

static void test_failed_before_first_token(const pr_client *down) {
    push_state state = {0};
    start(down, "down", &state, NULL);
    wait_for(&state.done, 1);
    printf("fact down.push %d %d %s\n", atomic_load(&state.done), (int)state.status, state.kind);
    CHECK("a stream no provider opens fails like a call, without chunks",
          atomic_load(&state.done) == 1 && state.status == PR_ERR_PROVIDER_ERROR &&
              atomic_load(&state.chunks) == 0);

    char params[256];
    question(params, sizeof params, "down, pulled");
    pr_stream *stream = NULL;
    pr_error *error = NULL;
    const char *text = "unset";
    size_t len = 7;
    pr_chunk_kind kind;
    pr_stream_open(down, "llm.chat", params, &stream, NULL);
    pr_status status = pr_stream_next(stream, &text, &len, &kind, &error);
    printf("fact down.pull %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    CHECK("pulled, it fails at the first pr_stream_next",
          status == PR_ERR_PROVIDER_ERROR && text == NULL && len == 0 &&
              pr_stream_result(stream) == NULL);
    pr_error_free(error);
    pr_stream_free(stream);
}

static void test_cancel(const pr_client *stalling) {
    push_state state = {0};
    pr_call_handle *handle = NULL;
    start(stalling, "cancel", &state, &handle);
    CHECK("the first chunks of a stalled stream arrive", wait_for(&state.chunks, 2));
    sleep_ms(20);
    CHECK("a stream in flight has not called on_done", atomic_load(&state.done) == 0);
    CHECK("pr_call_cancel returns at once", pr_call_cancel(handle) == PR_OK);
    wait_for(&state.done, 1);
    pr_call_cancel(handle); /* twice: harmless */
    sleep_ms(100);
    push_facts("cancel", &state);
    CHECK("a cancelled stream calls on_done exactly once with PR_ERR_CANCELLED",
          atomic_load(&state.done) == 1 && state.status == PR_ERR_CANCELLED &&
              atomic_load(&state.chunks_after_done) == 0);
    pr_call_handle_free(handle);

    push_state stopped = {0};
    stopped.stop_after = 1;
    start(stalling, "stop from on_chunk", &stopped, NULL);
    wait_for(&stopped.done, 1);
    sleep_ms(100);
    push_facts("stop", &stopped);
    CHECK("a non-zero return from on_chunk cancels: no more chunks, on_done once",
          atomic_load(&stopped.done) == 1 && stopped.status == PR_ERR_CANCELLED &&
              atomic_load(&stopped.chunks) == 1);
}

/* Reads `stream` to its end into `text`; returns the last status. */
static pr_status pull_all(pr_stream *stream, char *to, size_t size, int *chunks, pr_error **error) {
    const char *text = NULL;
    size_t len = 0;
    pr_chunk_kind kind;
    pr_status status;
    while ((status = pr_stream_next(stream, &text, &len, &kind, error)) == PR_OK) {
        if (kind == PR_CHUNK_TEXT) {
            append(to, size, text, len);
        }
        (*chunks)++;
    }
    return status;
}

static void test_pull(const pr_client *client) {
    char params[256];
    question(params, sizeof params, "pull");
    pr_stream *stream = NULL;
    pr_error *error = NULL;
    pr_status status = pr_stream_open(client, "llm.chat", params, &stream, &error);
    CHECK("a stream opens", status == PR_OK && stream != NULL && error == NULL);
    if (!stream) {
        pr_error_free(error);
        return;
    }
    CHECK("no result before the end", pr_stream_result(stream) == NULL);
    char text[1024] = "";
    int chunks = 0;
    status = pull_all(stream, text, sizeof text, &chunks, &error);
    const pr_result *result = pr_stream_result(stream);
    printf("fact pull.status %d %s\n", (int)status, pr_status_name(status));
    printf("fact pull.chunks %d\n", chunks);
    printf("fact pull.text %s\n", text);
    printf("fact pull.data %s\n", or_dash(pr_result_data_json(result)));
    CHECK("pr_stream_next gives every chunk, then PR_STREAM_DONE",
          status == PR_STREAM_DONE && error == NULL && chunks > 1);
    CHECK("the chunks join into the final text",
          result && data_has_text(pr_result_data_json(result), text) &&
              strcmp(pr_result_provider(result), "openai") == 0 &&
              strstr(pr_result_stream_parts_json(result), "openai") != NULL);
    const char *more = "unset";
    size_t more_len = 9;
    pr_chunk_kind kind;
    CHECK("after the end pr_stream_next keeps returning PR_STREAM_DONE",
          pr_stream_next(stream, &more, &more_len, &kind, NULL) == PR_STREAM_DONE &&
              more == NULL && more_len == 0 && pr_stream_result(stream) == result);
    pr_stream_free(stream);
}

static void test_pull_interrupted(const pr_client *cut) {
    char params[256];
    question(params, sizeof params, "cut, pulled");
    pr_stream *stream = NULL;
    pr_stream_open(cut, "llm.chat", params, &stream, NULL);
    char text[1024] = "";
    int chunks = 0;
    pr_error *error = NULL;
    pr_status status = pull_all(stream, text, sizeof text, &chunks, &error);
    printf("fact pull_interrupted.status %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    printf("fact pull_interrupted.partial %s\n", or_dash(pr_error_partial_text(error)));
    CHECK("pulled, a cut stream ends with PR_ERR_STREAM_INTERRUPTED and its partial text",
          status == PR_ERR_STREAM_INTERRUPTED && chunks > 0 &&
              strcmp(or_dash(pr_error_partial_text(error)), text) == 0 &&
              pr_stream_result(stream) == NULL);
    pr_error_free(error);
    error = NULL;
    const char *more = NULL;
    size_t len = 0;
    pr_chunk_kind kind;
    status = pr_stream_next(stream, &more, &len, &kind, &error);
    CHECK("after a failure pr_stream_next returns the same error again",
          status == PR_ERR_STREAM_INTERRUPTED && pr_error_status(error) == status &&
              strcmp(or_dash(pr_error_partial_text(error)), text) == 0);
    pr_error_free(error);
    pr_stream_free(stream);
}

static void test_pull_freed_mid_stream(const pr_client *stalling) {
    char params[256];
    question(params, sizeof params, "freed mid-stream");
    pr_stream *stream = NULL;
    pr_stream_open(stalling, "llm.chat", params, &stream, NULL);
    const char *text = NULL;
    size_t len = 0;
    pr_chunk_kind kind;
    int chunks = 0;
    while (chunks < 2 && pr_stream_next(stream, &text, &len, &kind, NULL) == PR_OK) {
        chunks++;
    }
    printf("fact pull_freed.chunks %d\n", chunks);
    CHECK("a stream may be freed before its end", chunks == 2);
    pr_stream_free(stream);
}

static void test_pull_inside_callback(const pr_client *client) {
    char params[256];
    question(params, sizeof params, "pulled after a callback tried");
    pr_stream *pulled = NULL;
    pr_stream_open(client, "llm.chat", params, &pulled, NULL);
    push_state state = {0};
    state.pull_inside = pulled;
    start(client, "push with a pull inside", &state, NULL);
    wait_for(&state.done, 1);
    printf("fact pull_inside %d\n", (int)state.pull_inside_status);
    CHECK("pr_stream_next inside a callback returns PR_ERR_USAGE instead of blocking",
          state.pull_inside_status == PR_ERR_USAGE && state.status == PR_OK);
    char text[1024] = "";
    int chunks = 0;
    pr_status status = pull_all(pulled, text, sizeof text, &chunks, NULL);
    CHECK("and the stream is still whole afterwards", status == PR_STREAM_DONE &&
                                                        strcmp(text, state.text) == 0);
    pr_stream_free(pulled);
}

typedef struct {
    pr_stream *stream;
    atomic_int chunks;
    pr_status status;
} pull_thread;

static void *pull_in_thread(void *arg) {
    pull_thread *pull = arg;
    const char *text = NULL;
    size_t len = 0;
    pr_chunk_kind kind;
    while ((pull->status = pr_stream_next(pull->stream, &text, &len, &kind, NULL)) == PR_OK) {
        atomic_fetch_add(&pull->chunks, 1);
    }
    return NULL;
}

static void test_shutdown(const char *emulator) {
    pr_client *stalling = client_from(emulator, STALL_CONFIG);
    push_state pushed = {0};
    start(stalling, "shut down, pushed", &pushed, NULL);
    char params[256];
    question(params, sizeof params, "shut down, pulled");
    pull_thread pull = {NULL, 0, PR_OK};
    pr_stream_open(stalling, "llm.chat", params, &pull.stream, NULL);
    pthread_t thread;
    pthread_create(&thread, NULL, pull_in_thread, &pull);
    wait_for(&pushed.chunks, 2);
    wait_for(&pull.chunks, 2);
    sleep_ms(20);
    CHECK("streams are in flight before the shutdown",
          atomic_load(&pushed.done) == 0 && pull.status == PR_OK);
    CHECK("shutdown returns PR_OK", pr_client_shutdown(stalling) == PR_OK);
    printf("fact shutdown.push %d %d\n", atomic_load(&pushed.done), (int)pushed.status);
    CHECK("when shutdown returns on_done has fired once with PR_ERR_SHUTDOWN",
          atomic_load(&pushed.done) == 1 && pushed.status == PR_ERR_SHUTDOWN);
    pthread_join(thread, NULL);
    printf("fact shutdown.pull %d\n", (int)pull.status);
    CHECK("a blocked pr_stream_next returns PR_ERR_SHUTDOWN", pull.status == PR_ERR_SHUTDOWN);

    pr_stream *late = NULL;
    pr_error *error = NULL;
    pr_status status = pr_stream_open(stalling, "llm.chat", params, &late, &error);
    printf("fact status.open_after_shutdown %d %s\n", (int)status, or_dash(pr_error_kind(error)));
    CHECK("no stream opens after the shutdown", status == PR_ERR_SHUTDOWN && late == NULL);
    pr_error_free(error);
    push_state refused = {0};
    CHECK("nor starts", start(stalling, "late", &refused, NULL) == PR_ERR_SHUTDOWN);
    pr_stream_free(pull.stream);
    pr_client_free(stalling);
}

static void expect_status(const char *name, pr_status got, pr_status want, pr_error **out) {
    pr_error *error = *out;
    *out = NULL;
    printf("fact status.%s %d %s\n", name, (int)got, or_dash(pr_error_kind(error)));
    if (error) {
        printf("fact message.%s %s\n", name, pr_error_message(error));
    }
    CHECK(name, got == want && error != NULL && pr_error_status(error) == want);
    pr_error_free(error);
}

/* Bad input, on a client whose provider must never be asked. */
static void test_bad_input(const pr_client *never) {
    char params[256];
    question(params, sizeof params, "never sent");
    push_state state = {0};
    pr_call_handle *handle = NULL;
    pr_stream *stream = NULL;
    pr_error *error = NULL;
    expect_status("start_null_client",
                  pr_stream_start(NULL, "llm.chat", params, on_chunk, on_done, &state, &handle,
                                  &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("start_null_on_chunk",
                  pr_stream_start(never, "llm.chat", params, NULL, on_done, &state, &handle,
                                  &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("start_null_on_done",
                  pr_stream_start(never, "llm.chat", params, on_chunk, NULL, &state, &handle,
                                  &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("start_not_streaming",
                  pr_stream_start(never, "weather.current", "{\"lat\": 1, \"lon\": 2}", on_chunk,
                                  on_done, &state, &handle, &error),
                  PR_ERR_INVALID_REQUEST, &error);
    expect_status("start_no_messages",
                  pr_stream_start(never, "llm.chat", "{\"messages\": []}", on_chunk, on_done,
                                  &state, &handle, &error),
                  PR_ERR_INVALID_REQUEST, &error);
    expect_status("start_invalid_json",
                  pr_stream_start(never, "llm.chat", "{\"messages\":", on_chunk, on_done, &state,
                                  &handle, &error),
                  PR_ERR_INVALID_JSON, &error);
    expect_status("open_null_out", pr_stream_open(never, "llm.chat", params, NULL, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    expect_status("open_utf8", pr_stream_open(never, "llm.\xff", params, &stream, &error),
                  PR_ERR_INVALID_UTF8, &error);
    expect_status("open_unknown_capability",
                  pr_stream_open(never, "llm.dream", params, &stream, &error),
                  PR_ERR_INVALID_REQUEST, &error);
    const char *text = NULL;
    size_t len = 0;
    pr_chunk_kind kind;
    expect_status("next_null_stream", pr_stream_next(NULL, &text, &len, &kind, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    /* A stream opened but never read sends nothing. */
    CHECK("a valid stream opens", pr_stream_open(never, "llm.chat", params, &stream, NULL) == PR_OK);
    expect_status("next_null_text", pr_stream_next(stream, NULL, &len, &kind, &error),
                  PR_ERR_NULL_ARGUMENT, &error);
    pr_stream_free(stream);
    sleep_ms(50);
    CHECK("a stream that was not started never calls back",
          atomic_load(&state.done) == 0 && atomic_load(&state.chunks) == 0 && handle == NULL);
    CHECK("accessors of NULL and of non-stream objects are empty",
          pr_stream_result(NULL) == NULL && pr_error_partial_text(NULL) == NULL &&
              pr_result_stream_parts_json(NULL) == NULL &&
              pr_result_time_to_first_token(NULL) < 0 && pr_result_cost_usd(NULL) < 0);
    pr_stream_free(NULL);
    CHECK("status names", strcmp(pr_status_name(PR_STREAM_DONE), "stream_done") == 0 &&
                              strcmp(pr_status_name(PR_ERR_STREAM_INTERRUPTED),
                                     "stream_interrupted") == 0);
}

int main(void) {
    const char *emulator = getenv("POLYRELAY_EMULATOR_URL");
    if (!emulator) {
        fprintf(stderr, "POLYRELAY_EMULATOR_URL is not set\n");
        return 2;
    }
    /* Fake keys, read from the environment when a client is made. */
    setenv("OPENAI_API_KEY", "sk-test-c-stream-openai", 1);
    setenv("MISTRAL_API_KEY", "test-c-stream-mistral", 1);
    setenv("DEEPSEEK_API_KEY", "sk-test-c-stream-deepseek", 1);
    pr_client *streaming = client_from(emulator, STREAM_CONFIG);
    pr_client *reasoning = client_from(emulator, REASONING_CONFIG);
    pr_client *cut = client_from(emulator, CUT_CONFIG);
    pr_client *continuing = client_from(emulator, CONTINUE_CONFIG);
    pr_client *stalling = client_from(emulator, STALL_CONFIG);
    pr_client *down = client_from(emulator, DOWN_CONFIG);
    /* Its provider is served nowhere: the driver checks nothing reached it. */
    pr_client *never = client_from(emulator,
                                   "[providers.openai]\n"
                                   "base_url = \"%s/never/openai\"\n"
                                   "[capabilities.\"llm.chat\"]\n"
                                   "chain = [\"openai\"]\n");

    test_bad_input(never);
    test_push(streaming);
    test_reasoning(reasoning);
    test_interrupted(cut);
    test_continued(continuing);
    test_failed_before_first_token(down);
    test_cancel(stalling);
    test_pull(streaming);
    test_pull_interrupted(cut);
    test_pull_freed_mid_stream(stalling);
    test_pull_inside_callback(streaming);
    test_shutdown(emulator);

    pr_client_free(never);
    pr_client_free(down);
    pr_client_free(stalling);
    pr_client_free(continuing);
    pr_client_free(cut);
    pr_client_free(reasoning);
    pr_client_free(streaming);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
