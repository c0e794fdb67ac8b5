/* tests/mockapi.c: a mock of the WhatsApp Cloud API for the runtime tests. An evhttp
 * server on 127.0.0.1 (port from argv, 0 = a free one; the port is printed on stdout) that
 * appends one line per request to a record file:
 *   METHOD PATH<TAB>AUTHORIZATION<TAB>BODY (the raw body, newlines as \n)
 * and answers a send with
 *   {"messaging_product":"whatsapp","contacts":[{"input":TO,"wa_id":TO}],
 *    "messages":[{"id":"wamid.mock.N"}]}
 * Usage: mockapi RECORD_FILE [PORT]. Stops on SIGTERM/SIGINT.
 */
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

static FILE *rec;
static unsigned long count;

static void on_request(struct evhttp_request *req, void *arg) {
  const char *uri = evhttp_request_get_uri(req);
  const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  const char *body = n ? (const char *)evbuffer_pullup(in, -1) : "";
  const char *m = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER";
  fprintf(rec, "%s %s\t%s\t", m, uri ? uri : "", auth ? auth : "-");
  for (size_t i = 0; i < n; i++) {
    if (body[i] == '\n') fputs("\\n", rec);
    else fputc(body[i], rec);
  }
  fputc('\n', rec);
  fflush(rec);
  json_t *j = json_loadb(body, n, 0, NULL);
  const char *to = json_string_value(json_object_get(j, "to"));
  char id[64];
  snprintf(id, sizeof id, "wamid.mock.%lu", ++count);
  json_t *ans = json_pack("{s:s,s:[{s:s,s:s}],s:[{s:s}]}", "messaging_product", "whatsapp",
                          "contacts", "input", to ? to : "", "wa_id", to ? to : "",
                          "messages", "id", id);
  char *s = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
  struct evbuffer *b = evbuffer_new();
  if (b && s) evbuffer_add(b, s, strlen(s));
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, 200, "OK", b);
  if (b) evbuffer_free(b);
  free(s);
  json_decref(ans);
  json_decref(j);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: mockapi RECORD_FILE [PORT]\n", stderr);
    return 1;
  }
  rec = fopen(argv[1], "a");
  if (!rec) {
    perror(argv[1]);
    return 1;
  }
  int port = argc > 2 ? atoi(argv[2]) : 0;
  struct event_base *base = event_base_new();
  struct evhttp *http = base ? evhttp_new(base) : NULL;
  if (!http) return 1;
  evhttp_set_gencb(http, on_request, NULL);
  struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1",
                                                                  (ev_uint16_t)port);
  if (!bs) {
    fputs("mockapi: cannot listen\n", stderr);
    return 1;
  }
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) == 0)
    port = ntohs(sa.sin_port);
  printf("%d\n", port);
  fflush(stdout);
  struct event *s1 = evsignal_new(base, SIGTERM, on_signal, base);
  struct event *s2 = evsignal_new(base, SIGINT, on_signal, base);
  evsignal_add(s1, NULL);
  evsignal_add(s2, NULL);
  event_base_dispatch(base);
  event_free(s1);
  event_free(s2);
  evhttp_free(http);
  event_base_free(base);
  fclose(rec);
  return 0;
}
