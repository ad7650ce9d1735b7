/*
 * The current weather in Berlin through polyrelay's fallback chain, with the
 * blocking API: one call, then what answered and what each provider did.
 *
 *   cc weather.c $(pkg-config --cflags --libs polyrelay) -o weather && ./weather
 */
#include <polyrelay.h>
#include <stdio.h>

int main(void) {
    printf("polyrelay %s (header %d.%d.%d)\n", pr_version(), POLYRELAY_VERSION_MAJOR,
           POLYRELAY_VERSION_MINOR, POLYRELAY_VERSION_PATCH);

    pr_client *client = NULL;
    pr_error *error = NULL;
    if (pr_client_new(&client, &error) != PR_OK) {
        fprintf(stderr, "cannot create the client: %s\n", pr_error_message(error));
        pr_error_free(error);
        return 1;
    }

    pr_result *result = NULL;
    pr_status status = pr_call(client, "weather.current", "{\"lat\": 52.52, \"lon\": 13.41}",
                               &result, &error);
    if (status == PR_OK) {
        printf("answered by: %s%s\n", pr_result_provider(result),
               pr_result_cached(result) ? " (cached)" : "");
        printf("weather: %s\n", pr_result_data_json(result));
        printf("attempts: %s\n", pr_result_attempts_json(result));
        pr_result_free(result);
    } else {
        fprintf(stderr, "failed (%s): %s\n", pr_error_kind(error), pr_error_message(error));
        pr_error_free(error);
    }

    pr_client_free(client);
    return status == PR_OK ? 0 : 1;
}
