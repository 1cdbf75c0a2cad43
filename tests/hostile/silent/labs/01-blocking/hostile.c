/* Listen and announce it like a real server, accept everyone, answer no one. */
#include "hostile.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

__attribute__((constructor)) static void attack(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 128) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        return;
    printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int c = accept(fd, NULL, NULL);
        (void)c; /* held open, never read, never answered */
    }
}
