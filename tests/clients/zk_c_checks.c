/*
 * The Apache ZooKeeper C client (Debian's libzookeeper-mt, 3.8) against a
 * server. Driven by tests/test_c_client.py, which compiles this file with gcc
 * at test time and runs one check per process:
 *
 *     zk_c_checks <check> <host:port> <base path>
 *
 * checks: crud, watch, ephemeral, multi, async, restart (which prints "ready"
 * and then expects the driver to restart the server). Each prints "ok: <check>" and
 * exits 0 only when every outcome it asserts held; the first failed assertion
 * prints "FAIL: ..." and exits 1. Every wait has a deadline.
 *
 * Ordering used for "no more events": the multi-threaded client hands watch
 * events and asynchronous completions to one completion thread in the order
 * their frames arrived, and a server sends a txn's events before the reply to
 * any later request on the same connection; so when the completion of a
 * zoo_async (sync) sent after a write's acknowledgement has run, every event
 * that write caused on that connection has been delivered. (Synchronous calls
 * are completed on the I/O thread, so they cannot serve as that barrier.)
 */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the synchronous API of libzookeeper_mt is declared only for threaded builds */
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#define WAIT_SECONDS 20
#define EVENTS_MAX 64
#define ASYNC_OPS 50

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    exit(1);
}

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("line %d: %s: ", __LINE__, #cond);                               \
            fail(__VA_ARGS__);                                                      \
        }                                                                           \
    } while (0)

#define CHECK_RC(expr, expected)                                                    \
    do {                                                                            \
        int rc_ = (expr);                                                           \
        if (rc_ != (expected))                                                      \
            fail("line %d: %s returned %d (%s), expected %d (%s)", __LINE__, #expr, \
                 rc_, zerror(rc_), (expected), zerror(expected));                   \
    } while (0)

/* Waits on `changed` until *value >= target; fails after WAIT_SECONDS. */
static void wait_at_least(const int *value, int target, const char *what) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&lock);
    while (*value < target) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT && *value < target) {
            pthread_mutex_unlock(&lock);
            fail("timed out after %d s waiting for %s", WAIT_SECONDS, what);
        }
    }
    pthread_mutex_unlock(&lock);
}

/* --- sessions ------------------------------------------------------------------ */

struct session {
    int connected; /* how many times the session (re)connected */
    int disconnected; /* how many times it lost its connection */
    int expired;
};

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    (void)path;
    struct session *s = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&lock);
    if (state == ZOO_CONNECTED_STATE)
        s->connected++;
    else if (state == ZOO_CONNECTING_STATE)
        s->disconnected++;
    else if (state == ZOO_EXPIRED_SESSION_STATE)
        s->expired = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static zhandle_t *open_session(const char *hosts, struct session *s) {
    memset(s, 0, sizeof *s);
    zhandle_t *zh = zookeeper_init(hosts, session_watcher, 30000, NULL, s, 0);
    CHECK(zh != NULL, "zookeeper_init: %s", strerror(errno));
    wait_at_least(&s->connected, 1, "the session to connect");
    return zh;
}

/* --- watch events -------------------------------------------------------------- */

struct event {
    int type;
    int state;
    char path[256];
};

struct recorder {
    struct event events[EVENTS_MAX];
    int count;
};

static void record(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh;
    struct recorder *r = ctx;
    /* the C client tells every registered watcher about connection state changes
     * too (ZOO_SESSION_EVENT); only node events are recorded */
    if (type == ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&lock);
    if (r->count < EVENTS_MAX) {
        struct event *e = &r->events[r->count];
        e->type = type;
        e->state = state;
        snprintf(e->path, sizeof e->path, "%s", path ? path : "");
    }
    r->count++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits for event number `n` (1-based) and checks its type and path. */
static void expect_event(struct recorder *r, int n, int type, const char *path) {
    wait_at_least(&r->count, n, path);
    struct event *e = &r->events[n - 1];
    CHECK(e->type == type && e->state == ZOO_CONNECTED_STATE && strcmp(e->path, path) == 0,
          "event %d is (type %d, state %d, %s), expected (type %d, connected, %s)", n, e->type, e->state,
          e->path, type, path);
}

struct done {
    int done;
    int rc;
};

static void sync_completion(int rc, const char *value, const void *data) {
    (void)value;
    struct done *d = (struct done *)data;
    pthread_mutex_lock(&lock);
    d->rc = rc;
    d->done = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* A sync round trip through the completion thread (see the file comment). */
static void barrier(zhandle_t *zh) {
    struct done d = {0, 0};
    CHECK_RC(zoo_async(zh, "/", sync_completion, &d), ZOK);
    wait_at_least(&d.done, 1, "the sync completion");
    CHECK_RC(d.rc, ZOK);
}

static void path_join(char *out, size_t n, const char *base, const char *name) {
    snprintf(out, n, "%s/%s", base, name);
}

/* --- checks -------------------------------------------------------------------- */

/* create, get, set, exists, getChildren and delete with their versions and errors;
 * sequential names; null data stays null. */
static void check_crud(const char *hosts, const char *base) {
    struct session s;
    zhandle_t *zh = open_session(hosts, &s);
    char path[512], child[512], got[512], buf[64];
    int len;
    struct Stat stat;

    CHECK_RC(zoo_create(zh, base, "b", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, got, sizeof got), ZOK);
    CHECK(strcmp(got, base) == 0, "created %s", got);
    CHECK_RC(zoo_create(zh, base, "b", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZNODEEXISTS);

    path_join(path, sizeof path, base, "n");
    CHECK_RC(zoo_create(zh, path, "hello", 5, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    len = sizeof buf;
    CHECK_RC(zoo_get(zh, path, 0, buf, &len, &stat), ZOK);
    CHECK(len == 5 && memcmp(buf, "hello", 5) == 0, "read %d bytes", len);
    CHECK(stat.version == 0 && stat.dataLength == 5 && stat.czxid == stat.mzxid, "stat version %d", stat.version);

    CHECK_RC(zoo_set(zh, path, "world!", 6, 0), ZOK);
    CHECK_RC(zoo_set(zh, path, "stale", 5, 0), ZBADVERSION);
    CHECK_RC(zoo_set2(zh, path, "third", 5, 1, &stat), ZOK);
    CHECK(stat.version == 2 && stat.dataLength == 5 && stat.mzxid > stat.czxid, "set2 stat version %d", stat.version);
    len = sizeof buf;
    CHECK_RC(zoo_get(zh, path, 0, buf, &len, NULL), ZOK);
    CHECK(len == 5 && memcmp(buf, "third", 5) == 0, "read back %.*s", len, buf);

    path_join(child, sizeof child, path, "c");
    CHECK_RC(zoo_create(zh, child, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    CHECK_RC(zoo_delete(zh, path, -1), ZNOTEMPTY);
    struct String_vector children;
    CHECK_RC(zoo_get_children(zh, path, 0, &children), ZOK);
    CHECK(children.count == 1 && strcmp(children.data[0], "c") == 0, "%d children", children.count);
    deallocate_String_vector(&children);
    CHECK_RC(zoo_delete(zh, child, 0), ZOK);
    CHECK_RC(zoo_delete(zh, path, 1), ZBADVERSION);
    CHECK_RC(zoo_delete(zh, path, 2), ZOK);
    CHECK_RC(zoo_exists(zh, path, 0, &stat), ZNONODE);
    len = sizeof buf;
    CHECK_RC(zoo_get(zh, path, 0, buf, &len, NULL), ZNONODE);
    CHECK_RC(zoo_delete(zh, path, -1), ZNONODE);
    path_join(child, sizeof child, base, "missing/child");
    CHECK_RC(zoo_create(zh, child, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZNONODE);

    /* sequential: %010d suffixes, consecutive */
    char first[512], second[512];
    path_join(path, sizeof path, base, "s-");
    CHECK_RC(zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL, first, sizeof first), ZOK);
    CHECK_RC(zoo_create(zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL, second, sizeof second), ZOK);
    size_t prefix = strlen(path);
    CHECK(strlen(first) == prefix + 10 && strlen(second) == prefix + 10, "sequential names %s %s", first, second);
    CHECK(strtol(second + prefix, NULL, 10) == strtol(first + prefix, NULL, 10) + 1, "%s then %s", first, second);

    /* null data (valuelen -1) reads back as null (-1) with dataLength 0 */
    path_join(path, sizeof path, base, "null");
    CHECK_RC(zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    len = sizeof buf;
    CHECK_RC(zoo_get(zh, path, 0, buf, &len, &stat), ZOK);
    CHECK(len == -1 && stat.dataLength == 0, "null data read back as %d bytes", len);

    CHECK_RC(zookeeper_close(zh), ZOK);
}

/* One-shot data, exist and child watches fire once each, with the right type and
 * path, for changes made by another session; nothing else arrives. */
static void check_watch(const char *hosts, const char *base) {
    struct session s1, s2;
    zhandle_t *watcher = open_session(hosts, &s1);
    zhandle_t *writer = open_session(hosts, &s2);
    struct recorder r;
    memset(&r, 0, sizeof r);
    char path[512], missing[512], buf[64];
    int len = sizeof buf;

    CHECK_RC(zoo_create(writer, base, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    path_join(path, sizeof path, base, "w");
    CHECK_RC(zoo_create(writer, path, "0", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);

    CHECK_RC(zoo_wget(watcher, path, record, &r, buf, &len, NULL), ZOK);
    CHECK_RC(zoo_set(writer, path, "1", 1, -1), ZOK);
    expect_event(&r, 1, ZOO_CHANGED_EVENT, path);
    CHECK_RC(zoo_set(writer, path, "2", 1, -1), ZOK); /* the watch was one-shot */
    barrier(watcher);
    CHECK(r.count == 1, "%d events after a second change", r.count);

    path_join(missing, sizeof missing, base, "later");
    CHECK_RC(zoo_wexists(watcher, missing, record, &r, NULL), ZNONODE);
    CHECK_RC(zoo_create(writer, missing, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    expect_event(&r, 2, ZOO_CREATED_EVENT, missing);

    struct String_vector children;
    CHECK_RC(zoo_wget_children(watcher, base, record, &r, &children), ZOK);
    CHECK(children.count == 2, "%d children", children.count);
    deallocate_String_vector(&children);
    path_join(missing, sizeof missing, base, "kid");
    CHECK_RC(zoo_create(writer, missing, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    expect_event(&r, 3, ZOO_CHILD_EVENT, base);

    CHECK_RC(zoo_wexists(watcher, path, record, &r, NULL), ZOK);
    CHECK_RC(zoo_delete(writer, path, -1), ZOK);
    expect_event(&r, 4, ZOO_DELETED_EVENT, path);

    CHECK_RC(zoo_delete(writer, missing, -1), ZOK); /* the child watch was consumed */
    barrier(watcher);
    CHECK(r.count == 4, "%d events at the end", r.count);

    CHECK_RC(zookeeper_close(watcher), ZOK);
    CHECK_RC(zookeeper_close(writer), ZOK);
}

/* Ephemerals belong to their session, refuse children, and go (firing watches) when
 * the session is closed. */
static void check_ephemeral(const char *hosts, const char *base) {
    struct session s1, s2;
    zhandle_t *owner = open_session(hosts, &s1);
    zhandle_t *other = open_session(hosts, &s2);
    struct recorder r;
    memset(&r, 0, sizeof r);
    char path[512], seq[512], child[512];
    struct Stat stat;

    CHECK_RC(zoo_create(other, base, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    path_join(path, sizeof path, base, "e");
    CHECK_RC(zoo_create(owner, path, "x", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
    path_join(seq, sizeof seq, base, "es-");
    CHECK_RC(zoo_create(owner, seq, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL, seq, sizeof seq), ZOK);
    int64_t owner_id = zoo_client_id(owner)->client_id;
    CHECK(owner_id != 0 && owner_id != zoo_client_id(other)->client_id, "distinct session ids");

    CHECK_RC(zoo_wexists(other, path, record, &r, &stat), ZOK);
    CHECK(stat.ephemeralOwner == owner_id, "ephemeralOwner %llx, owner %llx", (long long)stat.ephemeralOwner,
          (long long)owner_id);
    CHECK_RC(zoo_exists(other, seq, 0, &stat), ZOK);
    CHECK(stat.ephemeralOwner == owner_id, "sequential ephemeral's owner");
    path_join(child, sizeof child, path, "c");
    CHECK_RC(zoo_create(owner, child, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0),
             ZNOCHILDRENFOREPHEMERALS);

    CHECK_RC(zookeeper_close(owner), ZOK); /* sends closeSession */
    expect_event(&r, 1, ZOO_DELETED_EVENT, path);
    CHECK_RC(zoo_exists(other, path, 0, NULL), ZNONODE);
    CHECK_RC(zoo_exists(other, seq, 0, NULL), ZNONODE);
    struct String_vector children;
    CHECK_RC(zoo_get_children(other, base, 0, &children), ZOK);
    CHECK(children.count == 0, "%d children left", children.count);
    deallocate_String_vector(&children);
    CHECK_RC(zookeeper_close(other), ZOK);
}

/* A multi of create, create, setData, check and delete commits as a whole with a
 * result per op; a multi whose check fails changes nothing and reports OK for the
 * ops before, the error for the check and RUNTIMEINCONSISTENCY after. */
static void check_multi(const char *hosts, const char *base) {
    struct session s;
    zhandle_t *zh = open_session(hosts, &s);
    char m1[512], m2[512], m3[512], out1[512], out2[512], buf[64];
    struct Stat set_stat;
    int len;

    CHECK_RC(zoo_create(zh, base, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    path_join(m1, sizeof m1, base, "m1");
    path_join(m2, sizeof m2, base, "m2");
    path_join(m3, sizeof m3, base, "m3");

    zoo_op_t ops[5];
    zoo_op_result_t results[5];
    zoo_create_op_init(&ops[0], m1, "a", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, out1, sizeof out1);
    zoo_create_op_init(&ops[1], m2, "b", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, out2, sizeof out2);
    zoo_set_op_init(&ops[2], m1, "x", 1, 0, &set_stat);
    zoo_check_op_init(&ops[3], m2, 0);
    zoo_delete_op_init(&ops[4], m2, 0);
    CHECK_RC(zoo_multi(zh, 5, ops, results), ZOK);
    for (int i = 0; i < 5; i++)
        CHECK(results[i].err == ZOK, "op %d answered %d", i, results[i].err);
    CHECK(strcmp(out1, m1) == 0 && strcmp(out2, m2) == 0, "created %s and %s", out1, out2);
    CHECK(set_stat.version == 1 && set_stat.dataLength == 1, "setData in multi: version %d", set_stat.version);
    len = sizeof buf;
    CHECK_RC(zoo_get(zh, m1, 0, buf, &len, NULL), ZOK);
    CHECK(len == 1 && buf[0] == 'x', "m1 holds %.*s", len, buf);
    CHECK_RC(zoo_exists(zh, m2, 0, NULL), ZNONODE);

    zoo_create_op_init(&ops[0], m3, "c", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, out1, sizeof out1);
    zoo_check_op_init(&ops[1], m1, 99);
    zoo_set_op_init(&ops[2], m1, "y", 1, -1, &set_stat);
    CHECK_RC(zoo_multi(zh, 3, ops, results), ZBADVERSION);
    CHECK(results[0].err == ZOK && results[1].err == ZBADVERSION && results[2].err == ZRUNTIMEINCONSISTENCY,
          "per-op codes %d %d %d", results[0].err, results[1].err, results[2].err);
    CHECK_RC(zoo_exists(zh, m3, 0, NULL), ZNONODE);
    len = sizeof buf;
    CHECK_RC(zoo_get(zh, m1, 0, buf, &len, NULL), ZOK);
    CHECK(len == 1 && buf[0] == 'x', "m1 changed by a failed multi: %.*s", len, buf);
    CHECK_RC(zookeeper_close(zh), ZOK);
}

struct async_state {
    int completed;
    int order[ASYNC_OPS + 2];
    int rc[ASYNC_OPS + 2];
    char value[ASYNC_OPS + 2][64];
};

struct async_call {
    struct async_state *state;
    int index;
};

static void note(struct async_call *call, int rc, const char *value, int value_len) {
    struct async_state *st = call->state;
    pthread_mutex_lock(&lock);
    st->order[st->completed] = call->index;
    st->rc[call->index] = rc;
    if (value && value_len > 0)
        snprintf(st->value[call->index], sizeof st->value[0], "%.*s", value_len, value);
    st->completed++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void string_done(int rc, const char *value, const void *data) {
    note((struct async_call *)data, rc, value, value ? (int)strlen(value) : 0);
}

static void data_done(int rc, const char *value, int value_len, const struct Stat *stat, const void *data) {
    (void)stat;
    note((struct async_call *)data, rc, value, value_len);
}

static void stat_done(int rc, const struct Stat *stat, const void *data) {
    (void)stat;
    note((struct async_call *)data, rc, NULL, 0);
}

/* 50 pipelined zoo_acreate calls, then a zoo_aset and a zoo_aget of the same node:
 * every completion runs, in submission order, with the created path; the get sees
 * the set before it. */
static void check_async(const char *hosts, const char *base) {
    struct session s;
    zhandle_t *zh = open_session(hosts, &s);
    static struct async_state st;
    static struct async_call calls[ASYNC_OPS + 2];
    static char paths[ASYNC_OPS][512];
    memset(&st, 0, sizeof st);

    CHECK_RC(zoo_create(zh, base, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    for (int i = 0; i < ASYNC_OPS; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/a%02d", base, i);
        calls[i] = (struct async_call){&st, i};
        CHECK_RC(zoo_acreate(zh, paths[i], "v", 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, string_done, &calls[i]),
                 ZOK);
    }
    calls[ASYNC_OPS] = (struct async_call){&st, ASYNC_OPS};
    calls[ASYNC_OPS + 1] = (struct async_call){&st, ASYNC_OPS + 1};
    CHECK_RC(zoo_aset(zh, paths[0], "new", 3, 0, stat_done, &calls[ASYNC_OPS]), ZOK);
    CHECK_RC(zoo_aget(zh, paths[0], 0, data_done, &calls[ASYNC_OPS + 1]), ZOK);
    wait_at_least(&st.completed, ASYNC_OPS + 2, "all async completions");
    for (int i = 0; i < ASYNC_OPS + 2; i++)
        CHECK(st.order[i] == i, "completion %d was call %d", i, st.order[i]);
    for (int i = 0; i < ASYNC_OPS; i++) {
        CHECK(st.rc[i] == ZOK, "acreate %d answered %d", i, st.rc[i]);
        CHECK(strcmp(st.value[i], paths[i]) == 0, "acreate %d returned %s", i, st.value[i]);
    }
    CHECK(st.rc[ASYNC_OPS] == ZOK, "aset answered %d", st.rc[ASYNC_OPS]);
    CHECK(st.rc[ASYNC_OPS + 1] == ZOK && strcmp(st.value[ASYNC_OPS + 1], "new") == 0, "aget read %s",
          st.value[ASYNC_OPS + 1]);

    struct String_vector children;
    CHECK_RC(zoo_get_children(zh, base, 0, &children), ZOK);
    CHECK(children.count == ASYNC_OPS, "%d children", children.count);
    deallocate_String_vector(&children);
    CHECK_RC(zookeeper_close(zh), ZOK);
}

/* Rides through a server restart that the driver performs after "ready": the
 * session reconnects (same id, not expired), nothing fires on the reconnect
 * (nothing changed), and the data, child and exist watches set before the
 * restart -- which the client re-sends in setWatches -- fire for changes another
 * session makes after it; the ephemeral survived. */
static void check_restart(const char *hosts, const char *base) {
    struct session s1, s2;
    zhandle_t *zh = open_session(hosts, &s1);
    struct recorder data_events, child_events, exist_events;
    memset(&data_events, 0, sizeof data_events);
    memset(&child_events, 0, sizeof child_events);
    memset(&exist_events, 0, sizeof exist_events);
    char data[512], parent[512], later[512], eph[512], kid[512], buf[64];
    int len = sizeof buf;

    path_join(data, sizeof data, base, "data");
    path_join(parent, sizeof parent, base, "parent");
    path_join(later, sizeof later, base, "later");
    path_join(eph, sizeof eph, base, "eph");
    path_join(kid, sizeof kid, parent, "new");
    CHECK_RC(zoo_create(zh, base, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    CHECK_RC(zoo_create(zh, data, "before", 6, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    CHECK_RC(zoo_create(zh, parent, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    CHECK_RC(zoo_create(zh, eph, "mine", 4, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0), ZOK);
    CHECK_RC(zoo_wget(zh, data, record, &data_events, buf, &len, NULL), ZOK);
    struct String_vector children;
    CHECK_RC(zoo_wget_children(zh, parent, record, &child_events, &children), ZOK);
    deallocate_String_vector(&children);
    CHECK_RC(zoo_wexists(zh, later, record, &exist_events, NULL), ZNONODE);
    int64_t session_id = zoo_client_id(zh)->client_id;

    printf("ready\n");
    fflush(stdout);
    wait_at_least(&s1.disconnected, 1, "the connection to drop");
    wait_at_least(&s1.connected, 2, "the session to reconnect");
    CHECK(!s1.expired, "the session expired");
    CHECK(zoo_client_id(zh)->client_id == session_id, "session id changed");
    barrier(zh);
    CHECK(data_events.count + child_events.count + exist_events.count == 0,
          "watches fired on reconnect with nothing changed: %d %d %d", data_events.count, child_events.count,
          exist_events.count);
    printf("reconnected\n");
    fflush(stdout);

    zhandle_t *writer = open_session(hosts, &s2);
    struct Stat stat;
    CHECK_RC(zoo_exists(writer, eph, 0, &stat), ZOK);
    CHECK(stat.ephemeralOwner == session_id, "ephemeral owner after the restart");
    CHECK_RC(zoo_set(writer, data, "after", 5, -1), ZOK);
    CHECK_RC(zoo_create(writer, kid, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    CHECK_RC(zoo_create(writer, later, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0), ZOK);
    expect_event(&data_events, 1, ZOO_CHANGED_EVENT, data);
    expect_event(&child_events, 1, ZOO_CHILD_EVENT, parent);
    expect_event(&exist_events, 1, ZOO_CREATED_EVENT, later);
    barrier(zh);
    CHECK(data_events.count == 1 && child_events.count == 1 && exist_events.count == 1, "events: %d %d %d",
          data_events.count, child_events.count, exist_events.count);
    CHECK_RC(zookeeper_close(writer), ZOK);
    CHECK_RC(zookeeper_close(zh), ZOK);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s crud|watch|ephemeral|multi|async|restart <host:port> <base path>\n", argv[0]);
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    const char *check = argv[1], *hosts = argv[2], *base = argv[3];
    if (strcmp(check, "crud") == 0)
        check_crud(hosts, base);
    else if (strcmp(check, "watch") == 0)
        check_watch(hosts, base);
    else if (strcmp(check, "ephemeral") == 0)
        check_ephemeral(hosts, base);
    else if (strcmp(check, "multi") == 0)
        check_multi(hosts, base);
    else if (strcmp(check, "async") == 0)
        check_async(hosts, base);
    else if (strcmp(check, "restart") == 0)
        check_restart(hosts, base);
    else
        fail("unknown check %s", check);
    printf("ok: %s\n", check);
    return 0;
}
