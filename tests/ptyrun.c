/* tests/ptyrun.c: runs a command on a pseudo-terminal and types a script into it, for the
 * tests of interactive programs (tests/repl_pty.sh: `flowvm repl` with libedit). Each
 * script line is typed (then Enter) once the program shows a prompt: its output, without
 * escape sequences, ends in "> " or "? " and nothing more comes for a moment. A line
 * starting with '!' is not typed: it runs as a shell command at that point (to change a
 * file between two inputs). At the end of the script it types Ctrl-D and waits for the
 * program to exit. Writes everything the program printed, without escape sequences and
 * carriage returns, to standard output; exits with the program's status, or 2 when a
 * prompt did not come within 20 seconds.
 * Usage: ptyrun SCRIPT COMMAND [ARG...]
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[1 << 20];
static size_t nout;

/* Appends what the program wrote, dropping escape sequences and carriage returns. */
static void take(const char *b, size_t n) {
  static int esc = 0; /* 1: after ESC; 2: inside a CSI sequence */
  for (size_t i = 0; i < n && nout < sizeof out - 1; i++) {
    unsigned char c = (unsigned char)b[i];
    if (esc == 1) {
      esc = c == '[' ? 2 : 0;
      continue;
    }
    if (esc == 2) {
      if (c >= 0x40 && c <= 0x7e) esc = 0;
      continue;
    }
    if (c == 0x1b) {
      esc = 1;
      continue;
    }
    if (c == '\r' || c == '\a' || (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) continue;
    out[nout++] = (char)c;
  }
}

/* Reads for up to ms milliseconds; returns 1 when something came, 0 when not, -1 at EOF. */
static int pump(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int r = poll(&p, 1, ms);
  if (r <= 0) return 0;
  char b[4096];
  ssize_t n = read(fd, b, sizeof b);
  if (n <= 0) return -1;
  take(b, (size_t)n);
  return 1;
}

static int at_prompt(void) {
  return nout >= 2 && out[nout - 1] == ' ' && (out[nout - 2] == '>' || out[nout - 2] == '?');
}

/* Waits until the program shows a prompt and then stays quiet for 100 ms. */
static int wait_prompt(int fd) {
  for (int waited = 0; waited < 20000;) {
    int r = pump(fd, 100);
    if (r < 0) return -1;
    if (r == 0) {
      waited += 100;
      if (at_prompt()) return 0;
    }
  }
  return -2;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ptyrun SCRIPT COMMAND [ARG...]\n");
    return 2;
  }
  FILE *script = fopen(argv[1], "r");
  if (!script) {
    perror(argv[1]);
    return 2;
  }
  int fd;
  pid_t pid = forkpty(&fd, NULL, NULL, NULL);
  if (pid < 0) {
    perror("forkpty");
    return 2;
  }
  if (pid == 0) {
    setenv("TERM", "dumb", 1);
    execvp(argv[2], argv + 2);
    perror(argv[2]);
    _exit(127);
  }
  signal(SIGPIPE, SIG_IGN);
  char line[4096];
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof line, script)) {
    size_t n = strcspn(line, "\n");
    line[n] = 0;
    int w = wait_prompt(fd);
    if (w != 0) {
      rc = w == -2 ? 2 : 0;
      if (w == -2) fprintf(stderr, "ptyrun: no prompt before `%s`\n", line);
      break;
    }
    if (line[0] == '!') {
      if (system(line + 1) != 0) fprintf(stderr, "ptyrun: `%s` failed\n", line + 1);
      continue;
    }
    line[n] = '\r';
    if (write(fd, line, n + 1) != (ssize_t)(n + 1)) break;
  }
  fclose(script);
  if (rc == 0 && wait_prompt(fd) == 0) {
    if (write(fd, "\x04", 1) != 1) rc = 2;
  }
  for (int i = 0; i < 200 && pump(fd, 100) >= 0; i++) {
  }
  int status = 0;
  for (int i = 0; i < 100; i++) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (i == 99) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      rc = 2;
    }
    usleep(50000);
  }
  close(fd);
  fwrite(out, 1, nout, stdout);
  if (rc) return rc;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
