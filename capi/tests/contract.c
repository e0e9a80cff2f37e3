/* The C contract of libfiberalloc_malloc, checked through the exported
 * functions themselves: this program is run with the library in
 * LD_PRELOAD (tests/c_abi.rs), and checks first that it really is.
 *
 * Each check prints "ok  <what>" or "FAIL <what>" and the program exits
 * with the number of failures. `contract invalid-free` instead frees a
 * pointer the library never handed out, which must abort the process. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dlfcn.h>

void *reallocarray(void *, size_t, size_t);
void *pvalloc(size_t);
void *valloc(size_t);

static int failures;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok)
        failures++;
}

/* Hides a constant from the compiler's allocation-size warnings. */
static size_t opaque(size_t x) {
    volatile size_t v = x;
    return v;
}

static int aligned(void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* xorshift: the random operations are the same on every run. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t random_size(void) {
    uint64_t r = rnd();
    switch (r % 16) {
    case 0: return 0;
    case 1: return (r >> 8) % (600 << 10); /* up to 600 KiB: large blocks too */
    case 2: case 3: return (r >> 8) % 4096;
    default: return (r >> 8) % 256;
    }
}

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 31);
}

static int holds(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 31))
            return 0;
    return 1;
}

static void loaded(void) {
    void *p = malloc(24);
    Dl_info info;
    int ours = dladdr((void *)malloc, &info) && info.dli_fname && strstr(info.dli_fname, "fiberalloc_malloc");
    check(ours, "malloc resolves to libfiberalloc_malloc (LD_PRELOAD is in effect)");
    free(p);
}

static void alignment(void) {
    int ok = 1;
    for (size_t n = 0; n < 5000; n += 7) {
        void *a = malloc(n), *c = calloc(1, n), *r = realloc(NULL, n);
        void *ra = reallocarray(NULL, 1, n + 1);
        ok &= a && c && r && ra && aligned(a, 16) && aligned(c, 16) && aligned(r, 16) && aligned(ra, 16);
        r = realloc(r, n + 100);
        ok &= r && aligned(r, 16);
        free(a), free(c), free(r), free(ra);
    }
    check(ok, "malloc, calloc, realloc and reallocarray return 16-aligned blocks");
    ok = 1;
    for (size_t a = sizeof(void *); a <= (1 << 16); a *= 2) {
        for (size_t n = 0; n < 70000; n = n * 3 + 1) {
            void *p = NULL, *q = aligned_alloc(a, n), *m = memalign(a, n);
            ok &= posix_memalign(&p, a, n) == 0 && p && aligned(p, a);
            ok &= q && aligned(q, a) && m && aligned(m, a);
            ok &= malloc_usable_size(p) >= n && malloc_usable_size(q) >= n;
            if (p) memset(p, 1, n);
            free(p), free(q), free(m);
        }
    }
    long page = sysconf(_SC_PAGESIZE);
    void *v = valloc(100), *pv = pvalloc(100), *pv0 = pvalloc(0);
    ok &= v && aligned(v, page) && pv && aligned(pv, page) && malloc_usable_size(pv) >= (size_t)page;
    ok &= pv0 && malloc_usable_size(pv0) >= (size_t)page;
    free(v), free(pv), free(pv0);
    check(ok, "posix_memalign, aligned_alloc, memalign, valloc and pvalloc align as asked");
    void *odd = memalign(24, 40);
    check(odd && aligned(odd, 32), "memalign rounds an alignment that is not a power of two up");
    free(odd);
}

static void usable(void) {
    int ok = 1;
    for (size_t n = 0; n < (1 << 20); n = n < 2048 ? n + 1 : n * 5 / 4) {
        unsigned char *p = malloc(n);
        size_t u = malloc_usable_size(p);
        ok &= p && u >= n;
        if (p && u) memset(p, 0xAB, u); /* every usable byte is writable */
        free(p);
    }
    check(ok, "malloc_usable_size is at least the size asked, and all of it is writable");
    check(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) is 0");
}

static void reallocs(void) {
    int ok = 1;
    size_t sizes[] = {1, 8, 16, 17, 64, 65, 200, 1024, 1500, 5000, 70000, 262144, 262145, 400000, 3 << 20, 100, 3, 0};
    size_t n = 0;
    unsigned char *p = NULL;
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t m = sizes[i];
        if (m == 0) break;
        unsigned char *q = realloc(p, m);
        ok &= q != NULL;
        if (!q) break;
        size_t keep = n < m ? n : m;
        ok &= holds(q, keep, 7);
        fill(q, m, 7);
        p = q, n = m;
    }
    check(ok, "realloc keeps the contents growing and shrinking, small to large and back");
    errno = 0;
    check(realloc(p, 0) == NULL, "realloc(p, 0) frees p and returns NULL (glibc)");
    void *z1 = malloc(0), *z2 = malloc(0);
    check(z1 && z2 && z1 != z2, "malloc(0) returns a unique pointer");
    free(z1), free(z2);
    free(NULL);
    /* glibc no longer links `cfree`; the library still exports it. */
    void (*cf)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "cfree");
    void *c = malloc(10);
    if (cf)
        cf(c);
    check(cf != NULL, "cfree is exported, and frees");
}

static void zeroing(void) {
    int ok = 1;
    for (size_t n = 8; n < 300000; n = n * 2 + 8) {
        unsigned char *p = malloc(n);
        memset(p, 0xFF, n);
        free(p);
        unsigned char *c = calloc(n, 1);
        for (size_t i = 0; c && i < n; i++)
            ok &= c[i] == 0;
        ok &= c != NULL;
        free(c);
    }
    check(ok, "calloc zeroes a block that is being reused");
}

static void errors(void) {
    errno = 0;
    check(malloc(opaque(SIZE_MAX)) == NULL && errno == ENOMEM, "malloc(SIZE_MAX) is NULL with ENOMEM");
    errno = 0;
    check(malloc(opaque(PTRDIFF_MAX)) == NULL && errno == ENOMEM, "malloc(PTRDIFF_MAX) is NULL with ENOMEM");
    errno = 0;
    check(calloc(opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM, "calloc overflow is NULL with ENOMEM");
    void *p = malloc(10);
    errno = 0;
    check(reallocarray(p, opaque(SIZE_MAX / 2), 3) == NULL && errno == ENOMEM, "reallocarray overflow is NULL with ENOMEM");
    errno = 0;
    check(realloc(p, opaque(SIZE_MAX - 100)) == NULL && errno == ENOMEM, "realloc to a huge size is NULL with ENOMEM");
    check(malloc_usable_size(p) >= 10, "a failed realloc leaves the block");
    errno = EDOM;
    free(p);
    check(errno == EDOM, "free leaves errno unchanged");
    void *q = (void *)1;
    check(posix_memalign(&q, 24, 10) == EINVAL && q == (void *)1, "posix_memalign(24) is EINVAL and leaves *out");
    check(posix_memalign(&q, 4, 10) == EINVAL, "posix_memalign(4) is EINVAL (below sizeof(void *))");
    check(posix_memalign(&q, 64, opaque(SIZE_MAX)) == ENOMEM, "posix_memalign of a huge size is ENOMEM");
    errno = 0;
    check(aligned_alloc(3, 16) == NULL && errno == EINVAL, "aligned_alloc(3) is NULL with EINVAL");
    errno = 0;
    check(memalign(opaque((size_t)1 << 63 | 1), 8) == NULL && errno == EINVAL, "memalign of an alignment past 2^63 is EINVAL");
    errno = 0;
    check(pvalloc(opaque(SIZE_MAX - 10)) == NULL && errno == ENOMEM, "pvalloc overflow is NULL with ENOMEM");
}

/* Blocks made by one thread, freed by another; blocks that outlive the
 * thread that made them. */
#define HANDOFF 20000
static void *handed[HANDOFF];
static void *producer(void *arg) {
    (void)arg;
    for (int i = 0; i < HANDOFF; i++) {
        size_t n = (size_t)(i % 300) + 1;
        handed[i] = malloc(n);
        fill(handed[i], n, (unsigned)i);
    }
    return NULL;
}

struct pair { int from, to, ok; };
static void *consumer(void *arg) {
    struct pair *r = arg;
    for (int i = r->from; i < r->to; i++) {
        r->ok &= holds(handed[i], (size_t)(i % 300) + 1, (unsigned)i);
        free(handed[i]);
    }
    return NULL;
}

static void threads(void) {
    pthread_t t, c[2];
    pthread_create(&t, NULL, producer, NULL);
    pthread_join(t, NULL); /* the maker has exited: its blocks live on */
    struct pair halves[2] = {{0, HANDOFF / 2, 1}, {HANDOFF / 2, HANDOFF, 1}};
    for (int i = 0; i < 2; i++)
        pthread_create(&c[i], NULL, consumer, &halves[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(c[i], NULL);
    check(halves[0].ok && halves[1].ok, "blocks outlive their thread and are freed by two others, intact");
}

static void *short_lived(void *arg) {
    void *p = malloc((size_t)(uintptr_t)arg % 500 + 1);
    void *q = malloc(100);
    free(q);
    return p; /* freed by the joining thread */
}

static void many_threads(void) {
    int ok = 1;
    for (int round = 0; round < 40; round++) {
        pthread_t t[50];
        for (int i = 0; i < 50; i++)
            ok &= pthread_create(&t[i], NULL, short_lived, (void *)(uintptr_t)(round * 50 + i)) == 0;
        for (int i = 0; i < 50; i++) {
            void *p = NULL;
            pthread_join(t[i], &p);
            ok &= p != NULL;
            free(p);
        }
    }
    check(ok, "2,000 threads created and joined, each allocating, their blocks freed by the joiner");
}

static volatile int stop_churn;
static void *churn(void *arg) {
    (void)arg;
    void *keep[64] = {0};
    unsigned i = 0;
    while (!stop_churn) {
        free(keep[i % 64]);
        keep[i % 64] = malloc(i % 2000 + 1);
        i++;
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
    return NULL;
}

static void forks(void) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, churn, NULL);
    int ok = 1;
    for (int i = 0; i < 30; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            /* The child allocates in the state fork left. */
            void *p[100];
            for (int k = 0; k < 100; k++)
                p[k] = malloc((size_t)k * 50 + 1);
            for (int k = 0; k < 100; k++)
                free(p[k]);
            _exit(0);
        }
        int status = 0;
        ok &= pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    stop_churn = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    check(ok, "30 forks while two threads allocate: every child allocates and exits 0");
}

/* Random operations against a shadow of every live block's size and
 * contents. */
#define SLOTS 512
static void shadow(void) {
    unsigned char *p[SLOTS] = {0};
    size_t n[SLOTS] = {0};
    unsigned seed[SLOTS] = {0};
    int ok = 1;
    for (int step = 0; step < 200000 && ok; step++) {
        int i = (int)(rnd() % SLOTS);
        if (p[i]) {
            ok &= holds(p[i], n[i], seed[i]) && malloc_usable_size(p[i]) >= n[i];
            if (!ok) {
                printf("  slot %d (%zu bytes) changed at step %d\n", i, n[i], step);
                break;
            }
        }
        switch (rnd() % 5) {
        case 0: /* free */
            free(p[i]);
            p[i] = NULL, n[i] = 0;
            break;
        case 1: { /* realloc */
            size_t m = random_size() + 1;
            unsigned char *q = realloc(p[i], m);
            ok &= q != NULL && aligned(q, 16) && holds(q, n[i] < m ? n[i] : m, seed[i]);
            p[i] = q, n[i] = m;
            fill(q, m, seed[i]);
            break;
        }
        case 2: { /* calloc */
            free(p[i]);
            size_t m = random_size();
            p[i] = calloc(m, 1), n[i] = m, seed[i] = (unsigned)step;
            for (size_t k = 0; k < m; k++)
                ok &= p[i][k] == 0;
            fill(p[i], m, seed[i]);
            break;
        }
        case 3: { /* aligned */
            free(p[i]);
            size_t a = (size_t)16 << (rnd() % 9), m = random_size();
            ok &= posix_memalign((void **)&p[i], a, m) == 0 && aligned(p[i], a);
            n[i] = m, seed[i] = (unsigned)step;
            fill(p[i], m, seed[i]);
            break;
        }
        default: /* malloc */
            free(p[i]);
            n[i] = random_size(), seed[i] = (unsigned)step;
            p[i] = malloc(n[i]);
            ok &= p[i] != NULL && aligned(p[i], 16);
            fill(p[i], n[i], seed[i]);
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        ok &= p[i] == NULL || holds(p[i], n[i], seed[i]);
        free(p[i]);
    }
    check(ok, "200,000 random malloc/calloc/realloc/posix_memalign/free against a shadow model");
}

static void *free_twice(void *p) {
    free(p);
    free(p);
    malloc_trim(0); /* must abort with a message */
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "invalid-free") == 0) {
        int on_stack = 0;
        free(&on_stack); /* must abort with a message, at once: not a chunk's */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "double-free") == 0) {
        void *p = malloc(40);
        free(p);
        free(p);
        malloc_trim(0); /* the deferred frees done: must abort with a message */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "double-free-cached") == 0) {
        /* Not the last block: the first free caches it, the second must
         * find the mark. */
        void *p = malloc(40), *q = malloc(40);
        free(p);
        free(p);
        free(q);
        malloc_trim(0); /* must abort with a message */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "double-free-remote") == 0) {
        /* Freed twice by a thread that did not allocate it, after the
         * first free made a run of its own. */
        void *p = malloc(40);
        void *keep = malloc(40);
        pthread_t t;
        pthread_create(&t, NULL, free_twice, p);
        pthread_join(t, NULL);
        free(keep);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "double-free-later") == 0) {
        /* No trim: the deferred second free is done within the next
         * eight frees (DEFERRED in src/global/cabi.rs). */
        void *p = malloc(40), *more[9];
        for (int i = 0; i < 9; i++)
            more[i] = malloc(40);
        free(p);
        free(p);
        for (int i = 0; i < 9; i++)
            free(more[i]); /* must abort with a message before the last */
        printf("no abort after nine more frees\n");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "double-realloc") == 0) {
        void *p = malloc(40), *q = malloc(40);
        free(p);
        malloc_trim(0);
        p = realloc(p, 80); /* must abort with a message */
        free(q);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "stale-free") == 0) {
        char *a = malloc(8), *b = malloc(8);
        free(b);
        free(a);
        malloc_trim(0);
        char *c = malloc(40);
        if (c != a) {
            printf("the larger block did not take the freed place: %p, %p\n", (void *)a, (void *)c);
            return 1;
        }
        memset(c, 0, 40);
        free(b);
        malloc_trim(0); /* its header is zeroed user data now: must abort */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "interior-free") == 0) {
        char *p = malloc(64);
        free(p + 16);
        malloc_trim(0); /* inside a block, not its start: must abort */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "header-free") == 0) {
        /* Inside the chunk's header or past it, where no block starts
         * (the chunk is the 2 MiB-aligned region holding a small block):
         * must abort. */
        char *p = malloc(64);
        char *chunk = (char *)((uintptr_t)p & ~(uintptr_t)((2 << 20) - 1));
        free(chunk + 64);
        malloc_trim(0); /* must abort */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "chunk-start-free") == 0) {
        /* The chunk's very start: no word before it to read. */
        char *p = malloc(64);
        free((char *)((uintptr_t)p & ~(uintptr_t)((2 << 20) - 1)));
        malloc_trim(0); /* must abort */
        return 0;
    }
    loaded();
    alignment();
    usable();
    reallocs();
    zeroing();
    errors();
    threads();
    many_threads();
    forks();
    shadow();
    printf("%d failures\n", failures);
    return failures;
}
