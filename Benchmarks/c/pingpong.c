/*
 * The floor for the RPC benchmark: 100-byte ping-pong between two processes over a raw Unix socket, with no
 * framing library and no protobuf.
 *   pingpong server PATH                  echo fixed 100-byte messages, one read and one write each
 *   pingpong client PATH CALLS INFLIGHT   INFLIGHT=1: prints "p50_us p99_us"; otherwise prints "calls_per_s"
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MESSAGE 100

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void address_of(const char *path, struct sockaddr_un *address) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    strncpy(address->sun_path, path, sizeof address->sun_path - 1);
}

static int write_all(int fd, const char *bytes, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, bytes, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        bytes += n;
        len -= (size_t)n;
    }
    return 0;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int serve(const char *path) {
    struct sockaddr_un address;
    address_of(path, &address);
    unlink(path);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 16) != 0) {
        perror("pingpong server");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    int fd = accept(listener, NULL, NULL);
    char message[MESSAGE];
    for (;;) {
        size_t got = 0;
        while (got < MESSAGE) {
            ssize_t n = read(fd, message + got, MESSAGE - got);
            if (n <= 0) goto done;
            got += (size_t)n;
        }
        if (write_all(fd, message, MESSAGE) != 0) break;
    }
done:
    close(fd);
    close(listener);
    unlink(path);
    return 0;
}

static int client(const char *path, long calls, long inflight) {
    struct sockaddr_un address;
    address_of(path, &address);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror("pingpong client");
        return 1;
    }
    char message[MESSAGE];
    memset(message, 'x', sizeof message);
    static char buffer[1 << 16];
    if (inflight == 1) {
        double *samples = malloc(sizeof(double) * (size_t)calls);
        for (long i = 0; i < calls; i++) {
            double start = now_us();
            write_all(fd, message, MESSAGE);
            size_t got = 0;
            while (got < MESSAGE) {
                ssize_t n = read(fd, buffer + got, MESSAGE - got);
                if (n <= 0) return 1;
                got += (size_t)n;
            }
            samples[i] = now_us() - start;
        }
        qsort(samples, (size_t)calls, sizeof(double), compare);
        printf("%.1f %.1f\n", samples[calls / 2], samples[calls * 99 / 100]);
        free(samples);
    } else {
        /* One write per request and one read per reply, as a simple client without batching does. */
        double start = now_us();
        long sent = 0, received = 0;
        for (; sent < inflight && sent < calls; sent++) write_all(fd, message, MESSAGE);
        while (received < calls) {
            size_t got = 0;
            while (got < MESSAGE) {
                ssize_t n = read(fd, buffer + got, MESSAGE - got);
                if (n <= 0) return 1;
                got += (size_t)n;
            }
            received++;
            if (sent < calls) {
                write_all(fd, message, MESSAGE);
                sent++;
            }
        }
        printf("%.0f\n", calls / ((now_us() - start) / 1e6));
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "server") == 0) return serve(argv[2]);
    if (argc == 5 && strcmp(argv[1], "client") == 0) return client(argv[2], atol(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: pingpong server PATH | pingpong client PATH CALLS INFLIGHT\n");
    return 2;
}
