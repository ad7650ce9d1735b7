/*
 * Exchange rates with the callback API: start a call, do other work, and let
 * the callback hand the outcome back. The callback runs exactly once, on a
 * polyrelay thread, and owns the result or error it receives.
 *
 *   cc async_rates.c $(pkg-config --cflags --libs polyrelay) -pthread -o async_rates
 */
#include <polyrelay.h>
#include <pthread.h>
#include <stdio.h>

struct outcome {
    pthread_mutex_t lock;
    pthread_cond_t done_changed;
    int done;
    pr_status status;
    pr_result *result;
    pr_error *error;
};

static void on_rates(void *user_data, pr_status status, pr_result *result, pr_error *error) {
    struct outcome *outcome = user_data;
    pthread_mutex_lock(&outcome->lock);
    outcome->status = status;
    outcome->result = result; /* ownership moves to the main thread */
    outcome->error = error;
    outcome->done = 1;
    pthread_cond_signal(&outcome->done_changed);
    pthread_mutex_unlock(&outcome->lock);
}

int main(void) {
    pr_client *client = NULL;
    if (pr_client_new(&client, NULL) != PR_OK) {
        fprintf(stderr, "cannot create the client\n");
        return 1;
    }

    struct outcome outcome = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, PR_OK,
                              NULL, NULL};
    pr_error *error = NULL;
    pr_status started = pr_call_async(client, "finance.fx_rates",
                                      "{\"base\": \"USD\", \"symbols\": [\"EUR\", \"JPY\"]}",
                                      on_rates, &outcome, NULL, &error);
    if (started != PR_OK) {
        fprintf(stderr, "not started: %s\n", pr_error_message(error));
        pr_error_free(error);
        pr_client_free(client);
        return 1;
    }
    printf("call started; waiting for the callback\n");

    pthread_mutex_lock(&outcome.lock);
    while (!outcome.done) {
        pthread_cond_wait(&outcome.done_changed, &outcome.lock);
    }
    pthread_mutex_unlock(&outcome.lock);

    if (outcome.status == PR_OK) {
        printf("rates from %s: %s\n", pr_result_provider(outcome.result),
               pr_result_data_json(outcome.result));
    } else {
        fprintf(stderr, "failed (%s): %s\n", pr_status_name(outcome.status),
                pr_error_message(outcome.error));
    }
    pr_result_free(outcome.result);
    pr_error_free(outcome.error);
    pr_client_free(client);
    return outcome.status == PR_OK ? 0 : 1;
}
