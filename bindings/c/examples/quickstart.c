/* A tour of libdbx from C: SQL with bound parameters on SQLite, key-value on
 * SQLite and Redis, health, and one handle shared by several threads.
 * Every result is checked; the program exits 1 on the first mismatch.
 *
 *   ./quickstart [sqlite-url] [redis-url]
 *   (defaults: sqlite::memory: and redis://127.0.0.1:6379)
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbx.h"

#define CHECK(call)                                                        \
    do {                                                                   \
        int rc_ = (call);                                                  \
        if (rc_ != DBX_OK) {                                               \
            char msg_[512];                                                \
            dbx_last_error(msg_, sizeof msg_, NULL);                       \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__,   \
                    #call, dbx_status_name(rc_), msg_);                    \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

#define EXPECT(cond)                                                       \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__,    \
                    #cond);                                                \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

static void sql_tour(dbx_db *db) {
    uint64_t n = 0;
    CHECK(dbx_sql_execute(db,
                          "CREATE TABLE c_people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                          "score REAL, photo BLOB)",
                          NULL, &n));
    /* Parameters are a JSON array bound to $1, $2...; bytes are {"$hex": ...}. */
    CHECK(dbx_sql_execute(db, "INSERT INTO c_people VALUES ($1, $2, $3, $4)",
                          "[1, \"Ada\", 1.5, {\"$hex\": \"00ff\"}]", &n));
    EXPECT(n == 1);
    CHECK(dbx_sql_execute(db, "INSERT INTO c_people VALUES ($1, $2, $3, $4)",
                          "[2, \"Bob ' OR 1=1 --\", null, null]", &n));
    EXPECT(n == 1);

    char *json = NULL;
    CHECK(dbx_sql_query(db, "SELECT id, name, score, photo FROM c_people WHERE id >= $1 ORDER BY id",
                        "[1]", &json));
    printf("sql: %s\n", json);
    EXPECT(strcmp(json,
                  "{\"columns\":[\"id\",\"name\",\"score\",\"photo\"],\"rows\":"
                  "[[1,\"Ada\",1.5,{\"$hex\":\"00ff\"}],[2,\"Bob ' OR 1=1 --\",null,null]]}") == 0);
    dbx_free_string(json);

    CHECK(dbx_sql_query(db, "SELECT COUNT(*) AS n FROM c_people WHERE name = $1",
                        "[\"nobody\"]", &json));
    EXPECT(strcmp(json, "{\"columns\":[\"n\"],\"rows\":[[0]]}") == 0);
    dbx_free_string(json);
}

static void kv_tour(dbx_db *db, const char *prefix) {
    char key[128], counter[128];
    snprintf(key, sizeof key, "%s:greeting", prefix);
    snprintf(counter, sizeof counter, "%s:visits", prefix);

    const uint8_t value[] = {'h', 'i', 0, '!'}; /* binary-safe */
    CHECK(dbx_kv_set(db, key, value, sizeof value, 60000));

    uint8_t buf[16];
    size_t len = 0;
    int found = 0;
    CHECK(dbx_kv_get(db, key, buf, sizeof buf, &len, &found));
    EXPECT(found == 1 && len == sizeof value && memcmp(buf, value, len) == 0);

    int deleted = -1;
    CHECK(dbx_kv_delete(db, counter, NULL));
    int64_t v = 0;
    for (int i = 1; i <= 3; i++) {
        CHECK(dbx_kv_incr(db, counter, 2, &v));
        EXPECT(v == 2 * i);
    }
    CHECK(dbx_kv_incr(db, counter, -6, &v));
    EXPECT(v == 0);

    CHECK(dbx_kv_delete(db, key, &deleted));
    EXPECT(deleted == 1);
    CHECK(dbx_kv_delete(db, key, &deleted));
    EXPECT(deleted == 0);
    CHECK(dbx_kv_get(db, key, buf, sizeof buf, &len, &found));
    EXPECT(found == 0 && len == 0);
    CHECK(dbx_kv_delete(db, counter, NULL));
    printf("kv (%s): set/get/incr/delete ok\n", dbx_backend_name(db));
}

/* Several C threads share one handle. */
#define THREADS 4
#define INCRS 50
struct job { dbx_db *db; const char *key; int failed; };

static void *incr_many(void *arg) {
    struct job *job = arg;
    for (int i = 0; i < INCRS; i++) {
        int64_t v;
        if (dbx_kv_incr(job->db, job->key, 1, &v) != DBX_OK) {
            job->failed = 1;
            break;
        }
    }
    return NULL;
}

static void threads_tour(dbx_db *db, const char *key) {
    CHECK(dbx_kv_delete(db, key, NULL));
    pthread_t threads[THREADS];
    struct job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){db, key, 0};
        EXPECT(pthread_create(&threads[i], NULL, incr_many, &jobs[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        EXPECT(jobs[i].failed == 0);
    }
    int64_t v = 0;
    CHECK(dbx_kv_incr(db, key, 0, &v));
    EXPECT(v == THREADS * INCRS);
    CHECK(dbx_kv_delete(db, key, NULL));
    printf("threads (%s): %d threads x %d incr = %lld\n", dbx_backend_name(db), THREADS, INCRS,
           (long long)v);
}

int main(int argc, char **argv) {
    const char *sqlite_url = argc > 1 ? argv[1] : "sqlite::memory:";
    const char *redis_url = argc > 2 ? argv[2] : "redis://127.0.0.1:6379";

    dbx_db *sqlite = NULL;
    CHECK(dbx_connect(sqlite_url, &sqlite));
    EXPECT(strcmp(dbx_backend_name(sqlite), "sqlite") == 0);
    sql_tour(sqlite);
    kv_tour(sqlite, "c-example");
    threads_tour(sqlite, "c-example:threads");
    uint64_t latency_us = 0;
    CHECK(dbx_health(sqlite, &latency_us));
    CHECK(dbx_close(sqlite));

    dbx_db *redis = NULL;
    CHECK(dbx_connect(redis_url, &redis));
    EXPECT(strcmp(dbx_backend_name(redis), "redis") == 0);
    kv_tour(redis, "dbx-c-example");
    threads_tour(redis, "dbx-c-example:threads");
    CHECK(dbx_health(redis, &latency_us));
    printf("health (redis): ok\n");
    CHECK(dbx_close(redis));

    printf("done\n");
    return 0;
}
