/* runtime/redis_ev.h: hiredis's asynchronous context on a libevent loop, in place of the
 * adapter hiredis ships (hiredis/adapters/libevent.h). The difference is when commands are
 * written: the stock adapter waits for the socket to be reported writable (an epoll change
 * to watch it, a loop iteration, another change to stop); here the commands issued while
 * the loop runs its ready callbacks are written together by one event activated at once,
 * which runs after the callbacks already ready. Only when the socket will not take
 * everything is it watched for writing. Reading watches the socket all along.
 */
#ifndef FR_REDIS_EV_H
#define FR_REDIS_EV_H

#include <event2/event.h>
#include <hiredis/async.h>

/* Attaches ac to base: REDIS_OK, or REDIS_ERR (already attached, or out of memory). */
int fr_redis_ev_attach(redisAsyncContext *ac, struct event_base *base);

#endif
