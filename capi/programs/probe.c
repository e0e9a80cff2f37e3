/* The C rows of scripts/callgrind.sh: `probe ROW N` runs N operations of
 * ROW through whatever malloc is loaded (LD_PRELOAD picks it). The rows are
 * those of benches/bin/probe_global.rs, through the C interface:
 *   alloc   N malloc(48), kept          free    alloc, then freed in order
 *   ring    64 live blocks, each step frees the oldest and mallocs one
 *   medium  N malloc(200), kept         remote  a thread mallocs N, main frees
 *                                       (the thread alive till then)
 *   exited  as remote, the thread exited before the frees
 *   realloc one block grown by 16 bytes N times (to 128 KiB, then back)
 * The script runs each with two N and divides the difference. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

static void **make(size_t n, size_t size) {
    void **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        sink = v[i] = malloc(size);
    return v;
}

static size_t remote_n;
static void *maker(void *arg) { (void)arg; return make(remote_n, 48); }

/* A maker that hands its blocks over and lives on until main has freed
 * them (so their chunk's owner is alive). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static void **made;
static int done;
static void *live_maker(void *arg) {
    (void)arg;
    void **v = make(remote_n, 48);
    pthread_mutex_lock(&lock);
    made = v;
    pthread_cond_broadcast(&cond);
    while (!done) pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const char *row = argv[1];
    size_t n = strtoul(argv[2], NULL, 10);
    if (!strcmp(row, "alloc")) {
        make(n, 48);
    } else if (!strcmp(row, "free")) {
        void **v = make(n, 48);
        for (size_t i = 0; i < n; i++) free(v[i]);
    } else if (!strcmp(row, "ring")) {
        void **ring = make(64, 48);
        for (size_t i = 0; i < n; i++) {
            free(ring[i % 64]);
            sink = ring[i % 64] = malloc(48);
        }
    } else if (!strcmp(row, "medium")) {
        make(n, 200);
    } else if (!strcmp(row, "remote")) {
        pthread_t t;
        remote_n = n;
        pthread_create(&t, NULL, live_maker, NULL);
        pthread_mutex_lock(&lock);
        while (!made) pthread_cond_wait(&cond, &lock);
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++) free(made[i]);
        pthread_mutex_lock(&lock);
        done = 1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        pthread_join(t, NULL);
    } else if (!strcmp(row, "exited")) {
        pthread_t t;
        void *v;
        remote_n = n;
        pthread_create(&t, NULL, maker, NULL);
        pthread_join(t, &v);
        for (size_t i = 0; i < n; i++) free(((void **)v)[i]);
    } else if (!strcmp(row, "realloc")) {
        size_t size = 16;
        void *p = malloc(size);
        for (size_t i = 0; i < n; i++) {
            size = size == (128 << 10) ? 16 : size + 16;
            sink = p = realloc(p, size);
        }
        free(p);
    } else {
        return 2;
    }
    return 0;
}
