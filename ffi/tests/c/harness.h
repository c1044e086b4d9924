/* What the C test programs share: failing with the library's last error, a game loop's
 * frame, and polling until an event of one kind arrives. */
#ifndef SWITCHBOARD_TEST_HARNESS_H
#define SWITCHBOARD_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "switchboard.h"

#define S(str) (const uint8_t *)(str), strlen(str)

static void fail(const char *what) {
    char buf[512];
    size_t n = sb_last_error((uint8_t *)buf, sizeof buf - 1);
    buf[n < sizeof buf - 1 ? n : sizeof buf - 1] = 0;
    fprintf(stderr, "FAIL: %s (last error: %s)\n", what, buf);
    exit(1);
}

static void nap(void) {
    struct timespec t = {0, 1000000}; /* 1 ms: a game loop's frame, much shortened */
    nanosleep(&t, NULL);
}

/* Polls `c` until an event of `kind` arrives (up to 5 s), skipping others; fails on
 * an unexpected error event. */
static SbEvent wait_for(SbClient *c, uint32_t kind, const char *what) {
    SbEvent e;
    for (int i = 0; i < 5000; i++) {
        int r = sb_poll(c, &e);
        if (r < 0) fail("sb_poll");
        if (r == 0) { nap(); continue; }
        if (e.kind == kind) return e;
        if (e.kind == SB_EVENT_ERROR && kind != SB_EVENT_ERROR) {
            fprintf(stderr, "unexpected error %d (op %u): %.*s\n", e.code, e.flags, (int)e.text_len,
                    (const char *)e.text);
            fail(what);
        }
    }
    fail(what);
    return e;
}

/* Whether the `n` bytes at `p` are the text `want`. */
static inline int bytes_are(const uint8_t *p, size_t n, const char *want) {
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

#endif
