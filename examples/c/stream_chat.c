/*
 * A chat answer printed as the model writes it, with the pull API: no
 * callbacks and no threads. pr_stream_next blocks until the next chunk and
 * returns PR_STREAM_DONE at the end (pr_stream_start is the callback API).
 *
 *   cc stream_chat.c $(pkg-config --cflags --libs polyrelay) -o stream_chat
 *   ./stream_chat "Why is the sky blue?"
 *
 * The providers of llm.chat are tried in their fallback order (a local
 * Ollama first, then those whose API key is set in the environment).
 */
#include <polyrelay.h>
#include <stdio.h>

/* `text` as a JSON string (quotes, backslashes and control characters escaped). */
static void json_string(char *to, size_t size, const char *text) {
    size_t used = 0;
    to[used++] = '"';
    for (; *text && used + 8 < size; text++) {
        unsigned char c = (unsigned char)*text;
        if (c == '"' || c == '\\') {
            to[used++] = '\\';
            to[used++] = (char)c;
        } else if (c < 0x20) {
            used += (size_t)snprintf(to + used, size - used, "\\u%04x", c);
        } else {
            to[used++] = (char)c;
        }
    }
    to[used++] = '"';
    to[used] = '\0';
}

int main(int argc, char **argv) {
    const char *question = argc > 1 ? argv[1] : "Why is the sky blue?";
    char content[2048];
    char params[2200];
    json_string(content, sizeof content, question);
    snprintf(params, sizeof params, "{\"messages\": [{\"role\": \"user\", \"content\": %s}]}",
             content);

    pr_client *client = NULL;
    pr_error *error = NULL;
    if (pr_client_new(&client, &error) != PR_OK) {
        fprintf(stderr, "cannot create the client: %s\n", pr_error_message(error));
        pr_error_free(error);
        return 1;
    }
    pr_stream *stream = NULL;
    if (pr_stream_open(client, "llm.chat", params, &stream, &error) != PR_OK) {
        fprintf(stderr, "invalid request: %s\n", pr_error_message(error));
        pr_error_free(error);
        pr_client_free(client);
        return 1;
    }

    const char *text = NULL;
    size_t len = 0;
    pr_chunk_kind kind;
    pr_status status;
    while ((status = pr_stream_next(stream, &text, &len, &kind, &error)) == PR_OK) {
        if (kind == PR_CHUNK_TEXT) { /* reasoning chunks are not part of the answer */
            fwrite(text, 1, len, stdout);
            fflush(stdout);
        }
    }
    if (status == PR_STREAM_DONE) {
        const pr_result *result = pr_stream_result(stream);
        printf("\n\nanswered by: %s (first token after %.3f s)\n", pr_result_provider(result),
               pr_result_time_to_first_token(result));
    } else {
        fprintf(stderr, "\nthe stream failed (%s): %s\n", pr_status_name(status),
                pr_error_message(error));
        if (status == PR_ERR_STREAM_INTERRUPTED) {
            fprintf(stderr, "received before the failure: %s\n", pr_error_partial_text(error));
        }
        pr_error_free(error);
    }
    pr_stream_free(stream);
    pr_client_free(client);
    return status == PR_STREAM_DONE ? 0 : 1;
}
