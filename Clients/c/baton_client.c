/* See baton_client.h. Frames: a big-endian uint32 length (1 .. 4 MiB), then a serialized baton.rpc.v1.Frame. */
#include "baton_client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "baton/rpc/v1/frame.pb-c.h"

static void fail(char *error, size_t error_len, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error, error_len, format, args);
    va_end(args);
}

static int64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int baton_connect(const char *path, char *error, size_t error_len) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof address.sun_path) {
        fail(error, error_len, "socket path '%s' is longer than %zu bytes", path, sizeof address.sun_path - 1);
        return -1;
    }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(error, error_len, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fail(error, error_len, "cannot connect to '%s': %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const uint8_t *bytes, size_t len) {
    while (len > 0) {
        ssize_t written = send(fd, bytes, len, MSG_NOSIGNAL);
        if (written < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        bytes += written;
        len -= (size_t)written;
    }
    return 0;
}

/* Reads exactly `len` bytes before `deadline` (ms, monotonic; 0 for none). Returns 0, or -1 with errno set. */
static int read_all(int fd, uint8_t *bytes, size_t len, int64_t deadline) {
    while (len > 0) {
        int wait = -1;
        if (deadline != 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            wait = (int)left;
        }
        struct pollfd readable = {.fd = fd, .events = POLLIN};
        int ready = poll(&readable, 1, wait);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return -1;
        if (ready == 0) continue; /* the deadline check above ends the wait */
        ssize_t got = recv(fd, bytes, len, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return -1;
        if (got == 0) {
            errno = ECONNRESET;
            return -1;
        }
        bytes += got;
        len -= (size_t)got;
    }
    return 0;
}

static void read_failed(char *error, size_t error_len, uint32_t timeout_ms) {
    if (errno == ETIMEDOUT) {
        fail(error, error_len, "DEADLINE_EXCEEDED: no reply within %u ms", timeout_ms);
    } else {
        fail(error, error_len, "cannot read the reply: %s", strerror(errno));
    }
}

int baton_unary(int fd, uint64_t call_id, const char *method, const uint8_t *request, size_t request_len,
                uint32_t timeout_ms, BatonReply *reply, char *error, size_t error_len) {
    memset(reply, 0, sizeof *reply);
    Baton__Rpc__V1__Frame frame = BATON__RPC__V1__FRAME__INIT;
    frame.call_id = call_id;
    frame.kind = BATON__RPC__V1__KIND__REQUEST;
    frame.method = (char *)method;
    frame.timeout_ms = timeout_ms;
    frame.payload.data = (uint8_t *)request;
    frame.payload.len = request_len;

    size_t body_len = baton__rpc__v1__frame__get_packed_size(&frame);
    if (body_len == 0 || body_len > BATON_MAX_FRAME_LENGTH) {
        fail(error, error_len, "request frame of %zu bytes is outside 1 .. %u", body_len, BATON_MAX_FRAME_LENGTH);
        return -1;
    }
    uint8_t *out = malloc(4 + body_len);
    if (out == NULL) {
        fail(error, error_len, "out of memory");
        return -1;
    }
    out[0] = (uint8_t)(body_len >> 24);
    out[1] = (uint8_t)(body_len >> 16);
    out[2] = (uint8_t)(body_len >> 8);
    out[3] = (uint8_t)body_len;
    baton__rpc__v1__frame__pack(&frame, out + 4);
    int written = write_all(fd, out, 4 + body_len);
    free(out);
    if (written != 0) {
        fail(error, error_len, "cannot send the request: %s", strerror(errno));
        return -1;
    }

    int64_t deadline = timeout_ms == 0 ? 0 : now_ms() + timeout_ms;
    for (;;) {
        uint8_t prefix[4];
        if (read_all(fd, prefix, sizeof prefix, deadline) != 0) {
            read_failed(error, error_len, timeout_ms);
            return -1;
        }
        uint32_t len = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 | (uint32_t)prefix[2] << 8 | prefix[3];
        if (len == 0 || len > BATON_MAX_FRAME_LENGTH) {
            fail(error, error_len, "server sent a frame of %u bytes, outside 1 .. %u", len, BATON_MAX_FRAME_LENGTH);
            return -1;
        }
        uint8_t *body = malloc(len);
        if (body == NULL) {
            fail(error, error_len, "out of memory");
            return -1;
        }
        if (read_all(fd, body, len, deadline) != 0) {
            read_failed(error, error_len, timeout_ms);
            free(body);
            return -1;
        }
        Baton__Rpc__V1__Frame *received = baton__rpc__v1__frame__unpack(NULL, len, body);
        free(body);
        if (received == NULL) {
            fail(error, error_len, "server sent a frame that does not decode as baton.rpc.v1.Frame");
            return -1;
        }
        /* Frames for other calls, and MESSAGE frames, are not this call's END: skip them. */
        if (received->call_id != call_id || received->kind != BATON__RPC__V1__KIND__END) {
            baton__rpc__v1__frame__free_unpacked(received, NULL);
            continue;
        }
        reply->code = received->status ? received->status->code : 0;
        const char *message = received->status && received->status->message ? received->status->message : "";
        reply->message = strdup(message);
        if (received->payload.len > 0) {
            reply->payload = malloc(received->payload.len);
            if (reply->payload != NULL) {
                memcpy(reply->payload, received->payload.data, received->payload.len);
                reply->payload_len = received->payload.len;
            }
        }
        baton__rpc__v1__frame__free_unpacked(received, NULL);
        return 0;
    }
}

void baton_reply_free(BatonReply *reply) {
    free(reply->message);
    free(reply->payload);
    memset(reply, 0, sizeof *reply);
}

const char *baton_status_name(uint32_t code) {
    static const char *names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    };
    static char unknown[32];
    if (code < sizeof names / sizeof names[0]) return names[code];
    snprintf(unknown, sizeof unknown, "CODE_%u", code);
    return unknown;
}
