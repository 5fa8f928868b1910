/* The error paths of libdbx: bad URLs, NULL and invalid UTF-8 arguments,
 * the buffer-too-small protocol, the last-error getter, backend errors
 * mapped to status codes, and unreachable / wrongly authenticated servers
 * with short timeouts. Exits 1 on the first unexpected status.
 *
 *   ./errors [redis-url]      (default redis://127.0.0.1:6379)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbx.h"

static int failures = 0;

static void expect_status(int got, int want, const char *what, int line) {
    char msg[512];
    dbx_last_error(msg, sizeof msg, NULL);
    if (got != want) {
        fprintf(stderr, "errors.c:%d: %s: got %s (%d), want %s (%d): %s\n", line, what,
                dbx_status_name(got), got, dbx_status_name(want), want, msg);
        failures++;
    } else {
        printf("ok   %-58s %-16s %s\n", what, dbx_status_name(got), msg);
        /* Every failure leaves a message; every success leaves none. */
        if ((want == DBX_OK) != (msg[0] == '\0')) {
            fprintf(stderr, "errors.c:%d: %s: last error %s\n", line, what,
                    want == DBX_OK ? "not cleared" : "missing");
            failures++;
        }
    }
}
#define EXPECT_STATUS(call, want) expect_status((call), (want), #call, __LINE__)
#define EXPECT(cond)                                                            \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "errors.c:%d: expected %s\n", __LINE__, #cond);     \
            failures++;                                                         \
        }                                                                       \
    } while (0)

int main(int argc, char **argv) {
    const char *redis_url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
    dbx_db *db = (dbx_db *)1; /* must be reset to NULL on failure */

    /* URLs */
    EXPECT_STATUS(dbx_connect("nosuchscheme://x", &db), DBX_ERR_INVALID_CONFIG);
    EXPECT(db == NULL);
    EXPECT_STATUS(dbx_connect("sqlite::memory:?no_such_option=1", &db), DBX_ERR_INVALID_CONFIG);
    EXPECT_STATUS(dbx_connect("sqlite::memory:?timeout=0s", &db), DBX_ERR_INVALID_CONFIG);
    EXPECT_STATUS(dbx_connect("", &db), DBX_ERR_INVALID_CONFIG);

    /* NULL and invalid UTF-8 arguments */
    EXPECT_STATUS(dbx_connect(NULL, &db), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_connect("sqlite::memory:", NULL), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_connect("sqlite::memory:\xff", &db), DBX_ERR_INVALID_UTF8);
    EXPECT_STATUS(dbx_close(NULL), DBX_OK);
    dbx_free_string(NULL);
    EXPECT(dbx_backend_name(NULL) == NULL);

    size_t len = 0;
    int found = 0, deleted = 0;
    int64_t v = 0;
    uint64_t n = 0;
    char *json = (char *)1;
    uint8_t buf[8];
    EXPECT_STATUS(dbx_kv_get(NULL, "k", buf, sizeof buf, &len, &found), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_set(NULL, "k", buf, 1, 0), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_delete(NULL, "k", &deleted), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_incr(NULL, "k", 1, &v), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_sql_execute(NULL, "SELECT 1", NULL, &n), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_sql_query(NULL, "SELECT 1", NULL, &json), DBX_ERR_NULL_ARGUMENT);
    EXPECT(json == NULL);
    EXPECT_STATUS(dbx_health(NULL, NULL), DBX_ERR_NULL_ARGUMENT);

    EXPECT_STATUS(dbx_connect("sqlite::memory:", &db), DBX_OK);
    EXPECT(db != NULL);
    EXPECT_STATUS(dbx_kv_get(db, NULL, buf, sizeof buf, &len, &found), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_get(db, "k", buf, sizeof buf, NULL, &found), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_get(db, "k", buf, sizeof buf, &len, NULL), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_get(db, "k", NULL, 8, &len, &found), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_set(db, "k", NULL, 3, 0), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_set(db, "k\xc3", buf, 1, 0), DBX_ERR_INVALID_UTF8);
    EXPECT_STATUS(dbx_kv_incr(db, "k", 1, NULL), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_sql_query(db, "SELECT 1", NULL, NULL), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_sql_execute(db, NULL, NULL, NULL), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_set(db, "", buf, 1, 0), DBX_ERR_INVALID_INPUT);

    /* Buffer too small: the needed length comes back, then a retry fits. */
    const char *big = "a value longer than eight bytes";
    EXPECT_STATUS(dbx_kv_set(db, "big", (const uint8_t *)big, strlen(big), 0), DBX_OK);
    EXPECT_STATUS(dbx_kv_get(db, "big", buf, sizeof buf, &len, &found), DBX_ERR_BUFFER_TOO_SMALL);
    EXPECT(found == 1 && len == strlen(big));
    EXPECT_STATUS(dbx_kv_get(db, "big", NULL, 0, &len, &found), DBX_ERR_BUFFER_TOO_SMALL);
    EXPECT(len == strlen(big));
    uint8_t *heap = malloc(len);
    EXPECT_STATUS(dbx_kv_get(db, "big", heap, len, &len, &found), DBX_OK);
    EXPECT(memcmp(heap, big, len) == 0);
    free(heap);
    /* Or let the library allocate it: one round trip, any size. */
    uint8_t *owned = (uint8_t *)1;
    EXPECT_STATUS(dbx_kv_get_alloc(db, "big", &owned, &len, &found), DBX_OK);
    EXPECT(found == 1 && len == strlen(big) && owned != NULL && memcmp(owned, big, len) == 0);
    dbx_free_bytes(owned, len);
    EXPECT_STATUS(dbx_kv_get_alloc(db, "missing", &owned, &len, &found), DBX_OK);
    EXPECT(found == 0 && len == 0 && owned == NULL);
    dbx_free_bytes(NULL, 0);
    EXPECT_STATUS(dbx_kv_get_alloc(db, "big", NULL, &len, &found), DBX_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(dbx_kv_get_alloc(NULL, "big", &owned, &len, &found), DBX_ERR_NULL_ARGUMENT);
    EXPECT(owned == NULL);
    /* An empty value exists and needs no buffer. */
    EXPECT_STATUS(dbx_kv_set(db, "empty", NULL, 0, 0), DBX_OK);
    EXPECT_STATUS(dbx_kv_get(db, "empty", NULL, 0, &len, &found), DBX_OK);
    EXPECT(found == 1 && len == 0);
    EXPECT_STATUS(dbx_kv_get_alloc(db, "empty", &owned, &len, &found), DBX_OK);
    EXPECT(found == 1 && len == 0 && owned != NULL);
    dbx_free_bytes(owned, len);

    /* The last error: cut to fit, with the full length reported. */
    EXPECT_STATUS(dbx_kv_incr(db, "big", 1, &v), DBX_ERR_WRONG_TYPE);
    char small[6];
    size_t msg_len = 0;
    EXPECT(dbx_last_error(small, sizeof small, &msg_len) == DBX_ERR_BUFFER_TOO_SMALL);
    EXPECT(msg_len > sizeof small && strlen(small) == sizeof small - 1);
    EXPECT(dbx_last_error(NULL, 0, &msg_len) == DBX_ERR_BUFFER_TOO_SMALL && msg_len > 0);
    char *msg = malloc(msg_len + 1);
    EXPECT(dbx_last_error(msg, msg_len + 1, NULL) == DBX_OK && strlen(msg) == msg_len);
    EXPECT(strncmp(msg, small, sizeof small - 1) == 0);
    free(msg);

    /* Backend errors */
    EXPECT_STATUS(dbx_kv_set(db, "n", (const uint8_t *)"9223372036854775807", 19, 0), DBX_OK);
    EXPECT_STATUS(dbx_kv_incr(db, "n", 1, &v), DBX_ERR_OUT_OF_RANGE);
    EXPECT_STATUS(dbx_sql_execute(db, "SELEC nonsense", NULL, &n), DBX_ERR_QUERY);
    EXPECT_STATUS(dbx_sql_query(db, "SELECT * FROM no_such_table", NULL, &json), DBX_ERR_QUERY);
    EXPECT(json == NULL);
    EXPECT_STATUS(dbx_sql_execute(db, "CREATE TABLE t (id INTEGER PRIMARY KEY)", NULL, &n), DBX_OK);
    EXPECT_STATUS(dbx_sql_execute(db, "INSERT INTO t VALUES ($1)", "[1]", &n), DBX_OK);
    EXPECT_STATUS(dbx_sql_execute(db, "INSERT INTO t VALUES ($1)", "[1]", &n), DBX_ERR_CONFLICT);
    EXPECT_STATUS(dbx_sql_execute(db, "INSERT INTO t VALUES ($1)", "{\"id\": 1}", &n), DBX_ERR_INVALID_INPUT);
    EXPECT_STATUS(dbx_sql_execute(db, "INSERT INTO t VALUES ($1)", "[1,", &n), DBX_ERR_INVALID_INPUT);
    EXPECT_STATUS(dbx_sql_execute(db, "INSERT INTO t VALUES ($1)", "[{\"$hex\": \"zz\"}]", &n), DBX_ERR_INVALID_INPUT);
    EXPECT_STATUS(dbx_sql_execute(db, "INSERT INTO t VALUES ($1)", "[1, 2]", &n), DBX_ERR_INVALID_INPUT);
    EXPECT_STATUS(dbx_close(db), DBX_OK);

    /* SQL on a key-value store */
    db = NULL;
    EXPECT_STATUS(dbx_connect(redis_url, &db), DBX_OK);
    if (db) {
        EXPECT_STATUS(dbx_sql_execute(db, "SELECT 1", NULL, &n), DBX_ERR_UNSUPPORTED);
        EXPECT_STATUS(dbx_close(db), DBX_OK);
    }

    /* Nothing listens on port 1 of the loopback; short timeouts. */
    db = (dbx_db *)1;
    EXPECT_STATUS(dbx_connect("redis://127.0.0.1:1?connect_timeout=500ms&retry_max_elapsed=1s", &db),
                  DBX_ERR_CONNECT);
    EXPECT(db == NULL);
    EXPECT_STATUS(
        dbx_connect("postgres://postgres@127.0.0.1:1/postgres?connect_timeout=500ms&retry_max_elapsed=1s", &db),
        DBX_ERR_CONNECT);
    /* Redis without a password configured rejects AUTH; the password never shows in the message. */
    char url[256];
    const char *host = strstr(redis_url, "://");
    snprintf(url, sizeof url, "redis://:s3cret-pw@%s?connect_timeout=1s", host ? host + 3 : "127.0.0.1:6379");
    int rc = dbx_connect(url, &db);
    char last[512];
    dbx_last_error(last, sizeof last, NULL);
    printf("     wrong password -> %s: %s\n", dbx_status_name(rc), last);
    EXPECT(rc == DBX_ERR_AUTH);
    EXPECT(strstr(last, "s3cret-pw") == NULL);
    if (rc == DBX_OK) dbx_close(db);

    /* Status names are stable */
    EXPECT(strcmp(dbx_status_name(DBX_OK), "ok") == 0);
    EXPECT(strcmp(dbx_status_name(DBX_ERR_BUFFER_TOO_SMALL), "buffer_too_small") == 0);
    EXPECT(strcmp(dbx_status_name(-42), "unknown") == 0);

    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("done\n");
    return 0;
}
