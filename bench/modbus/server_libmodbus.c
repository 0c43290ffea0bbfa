/*
 * server_libmodbus: the C peer of bench/modbus/run.py, a Modbus TCP server built on libmodbus.
 *
 * usage: server_libmodbus PORT
 *
 * Serves holding registers 1000..1099 on 127.0.0.1: register pair k (addresses 1000 + 2k, +1) holds
 * the float32 k + 0.25, big-endian, high word first (homemeter's encoding). 1000..1019 is homemeter's
 * channel 0 block, where the measured reads go; the rest lets the peers also answer the 1 x 100 read
 * that homemeter refuses (its blocks are at most 20 registers). Other addresses get exception 02 from
 * libmodbus' own range check.
 *
 * One thread; select() over the listening socket and every client, then modbus_receive() and
 * modbus_reply() for the client that is readable: libmodbus' documented many-clients pattern.
 * Prints "listening" once ready; stops on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define FIRST 1000
#define NREGS 100

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: server_libmodbus PORT\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: select() returns with EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    modbus_t *ctx = modbus_new_tcp("127.0.0.1", atoi(argv[1]));
    modbus_mapping_t *map = modbus_mapping_new_start_address(0, 0, 0, 0, FIRST, NREGS, 0, 0);
    if (!ctx || !map) {
        fprintf(stderr, "server_libmodbus: %s\n", modbus_strerror(errno));
        return 1;
    }
    for (int k = 0; k < NREGS / 2; k++) {
        /* Not modbus_set_float_abcd(): in libmodbus 3.1.6 it swaps the bytes within each word. */
        float value = (float)k + 0.25f;
        uint32_t bits;
        memcpy(&bits, &value, sizeof bits);
        map->tab_registers[2 * k] = (uint16_t)(bits >> 16);
        map->tab_registers[2 * k + 1] = (uint16_t)bits;
    }

    int listener = modbus_tcp_listen(ctx, 64);
    if (listener < 0) {
        fprintf(stderr, "server_libmodbus: listen on port %s: %s\n", argv[1], modbus_strerror(errno));
        return 1;
    }
    printf("server_libmodbus %s listening on 127.0.0.1:%s\n", LIBMODBUS_VERSION_STRING, argv[1]);
    fflush(stdout);

    fd_set clients;
    FD_ZERO(&clients);
    FD_SET(listener, &clients);
    int maxfd = listener;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!g_stop) {
        fd_set ready = clients;
        if (select(maxfd + 1, &ready, NULL, NULL, NULL) < 0) {
            if (errno == EINTR)
                continue;
            perror("select");
            break;
        }
        for (int fd = 0; fd <= maxfd; fd++) {
            if (!FD_ISSET(fd, &ready))
                continue;
            if (fd == listener) {
                int s = listener;
                int client = modbus_tcp_accept(ctx, &s);
                if (client >= 0 && client < FD_SETSIZE) {
                    int one = 1; /* as homemeter and pymodbus do: never wait for Nagle's timer */
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    FD_SET(client, &clients);
                    if (client > maxfd)
                        maxfd = client;
                } else if (client >= 0) {
                    close(client);
                }
                continue;
            }
            modbus_set_socket(ctx, fd);
            int len = modbus_receive(ctx, query);
            if (len > 0) {
                modbus_reply(ctx, query, len, map);
            } else if (len < 0) { /* closed by the client, or a broken frame */
                close(fd);
                FD_CLR(fd, &clients);
            }
        }
    }
    close(listener);
    modbus_mapping_free(map);
    modbus_free(ctx);
    return 0;
}
