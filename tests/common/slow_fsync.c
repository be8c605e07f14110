/* Slow fsync for the fault harness (tests/faults.rs): loaded into a confab node with
 * LD_PRELOAD, it delays every fsync and fdatasync by the number of milliseconds written in the
 * file named by CONFAB_SLOW_FSYNC_FILE (0, or no file: no delay), read at each call so the
 * harness can slow a running node's disk down and heal it. The device-mapper delay target would
 * do this below the filesystem, but the test machines have no device-mapper. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long delay_ms(void) {
    const char *path = getenv("CONFAB_SLOW_FSYNC_FILE");
    if (path == NULL) {
        return 0;
    }
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        return 0;
    }
    long ms = 0;
    if (fscanf(file, "%ld", &ms) != 1) {
        ms = 0;
    }
    fclose(file);
    return ms;
}

static void wait_ms(long ms) {
    if (ms > 0) {
        struct timespec time = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&time, NULL);
    }
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    wait_ms(delay_ms());
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    wait_ms(delay_ms());
    return real(fd);
}
