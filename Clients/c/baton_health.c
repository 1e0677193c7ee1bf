/*
 * baton-health SOCKET [SERVICE]: asks a Baton process for its health over the wire protocol.
 * Prints the serving status and exits 0 when it is SERVING, 1 when it is anything else, 2 when the call fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "baton_client.h"
#include "grpc/health/v1/health.pb-c.h"

static const char *serving_status_name(Grpc__Health__V1__HealthCheckResponse__ServingStatus status) {
    switch (status) {
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN: return "UNKNOWN";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING: return "SERVING";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING: return "NOT_SERVING";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
    default: return "UNRECOGNIZED";
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(stderr, "usage: baton-health SOCKET [SERVICE]\n"
                        "Asks the Baton process on SOCKET (e.g. var/run/router.sock) whether it is SERVING.\n"
                        "Exit status: 0 SERVING, 1 any other status, 2 the call failed.\n");
        return 2;
    }
    char error[512];
    int fd = baton_connect(argv[1], error, sizeof error);
    if (fd < 0) {
        fprintf(stderr, "baton-health: %s\n", error);
        return 2;
    }

    Grpc__Health__V1__HealthCheckRequest request = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    request.service = argc == 3 ? argv[2] : "";
    uint8_t packed[512];
    size_t packed_len = grpc__health__v1__health_check_request__get_packed_size(&request);
    if (packed_len > sizeof packed) {
        fprintf(stderr, "baton-health: service name too long\n");
        close(fd);
        return 2;
    }
    grpc__health__v1__health_check_request__pack(&request, packed);

    BatonReply reply;
    if (baton_unary(fd, 1, "/grpc.health.v1.Health/Check", packed, packed_len, 5000, &reply, error, sizeof error) != 0) {
        fprintf(stderr, "baton-health: %s\n", error);
        close(fd);
        return 2;
    }
    close(fd);
    if (reply.code != 0) {
        fprintf(stderr, "baton-health: %s: %s\n", baton_status_name(reply.code), reply.message);
        baton_reply_free(&reply);
        return 2;
    }
    Grpc__Health__V1__HealthCheckResponse *response =
        grpc__health__v1__health_check_response__unpack(NULL, reply.payload_len, reply.payload);
    baton_reply_free(&reply);
    if (response == NULL) {
        fprintf(stderr, "baton-health: the reply does not decode as grpc.health.v1.HealthCheckResponse\n");
        return 2;
    }
    Grpc__Health__V1__HealthCheckResponse__ServingStatus status = response->status;
    grpc__health__v1__health_check_response__free_unpacked(response, NULL);
    printf("%s\n", serving_status_name(status));
    return status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
}
