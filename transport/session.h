/* A session over an authenticated chan: HELLO exchange with version
 * negotiation, error frames. Request kinds (send a set, later restore or
 * migration handover) run after the hello; serve.c dispatches on the first
 * frame that follows it. */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/chan.h"
#include "transport/frame.h"

struct session_info {
	uint32_t version;    /* negotiated protocol version */
	bool peer_lz4;	     /* the peer decodes LZ4 chunks */
	char peer_name[256]; /* host name the peer announced */
	char peer_ferry[64]; /* its ferry version */
};

/* Client: send our HELLO, read the server's (which names the chosen version). */
int session_hello_client(struct chan *c, const char *my_name, struct session_info *si, ferr_t *err);
/* Server: read the client's HELLO, negotiate, answer. On no common version the
 * client gets an ERROR frame. */
int session_hello_server(struct chan *c, const char *my_name, struct session_info *si, ferr_t *err);

/* Tell the peer about e (best effort: errors stick to the chan). */
void session_send_error(struct chan *c, const ferr_t *e);
/* Turn a received ERROR frame into err, prefixed with who sent it. */
int session_peer_error(const struct frame_buf *fb, const char *who, ferr_t *err);
/* Unexpected frame type while waiting for something else. */
int session_unexpected(const struct frame_buf *fb, const char *who, const char *waiting,
		       ferr_t *err);

#endif
