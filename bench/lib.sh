# bench/lib.sh: what the load scripts share (sourced by bench/load.sh and bench/profile.sh):
# the processes they start, stopped when the script ends (add each pid to PIDS), and a free
# TCP port on the loopback interface.
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  for p in $PIDS; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
