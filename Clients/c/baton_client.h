/*
 * A minimal Baton client in C, written from docs/PROTOCOL.md alone: connect to a process's Unix socket, make one unary
 * call, read its END frame. It is the proof that the wire protocol needs nothing but a socket and protobuf-c.
 */
#ifndef BATON_CLIENT_H
#define BATON_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* The largest frame body docs/PROTOCOL.md allows: 4 MiB. */
#define BATON_MAX_FRAME_LENGTH (4u * 1024u * 1024u)

/* The outcome of a unary call: the END frame's status and, when the status is OK, the reply payload. */
typedef struct {
    uint32_t code;        /* gRPC canonical code: 0 OK, 14 UNAVAILABLE, ... */
    char *message;        /* the status message, NUL-terminated; owned, free with baton_reply_free */
    uint8_t *payload;     /* the serialized reply; owned */
    size_t payload_len;
} BatonReply;

/* Connects to the socket at `path`. Returns the file descriptor, or -1 with a reason in `error`. */
int baton_connect(const char *path, char *error, size_t error_len);

/*
 * Sends one REQUEST for `method` with `request` as payload and reads frames until the END for that call.
 * `timeout_ms` is the call's deadline (0 for none); the client enforces it too, on its reads.
 * Returns 0 with `reply` filled, or -1 with a reason in `error` (the connection is then unusable).
 */
int baton_unary(int fd, uint64_t call_id, const char *method, const uint8_t *request, size_t request_len,
                uint32_t timeout_ms, BatonReply *reply, char *error, size_t error_len);

/* Frees what baton_unary put in `reply`. */
void baton_reply_free(BatonReply *reply);

/* The gRPC name of a status code, "OK", "UNAVAILABLE", ...; "CODE_n" beyond the known ones. */
const char *baton_status_name(uint32_t code);

#endif
