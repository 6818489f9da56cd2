#!/usr/bin/env bash
# Start cost of the container Action on this machine: the image's size, and the time from
# starting `docker run` (as the runner does, mounts and `-e` variables included) to the
# gate's first API request. The runner's pull of a published image, or its build of the
# Dockerfile, comes before that and is not measured here (it depends on the network).
#
#   bench/container-start.sh [IMAGE] [RUNS]     # default agent-gate:ci, 10 runs
#
# Needs a Docker engine (.ci/docker-engine up) and the image (.ci/container builds it).
# A small Python listener on 127.0.0.1 plays the API: it records when the first request
# arrives and answers 401, so each run ends right after it with `api-error`.
set -euo pipefail
image="${1:-agent-gate:ci}"
runs="${2:-10}"
work="$(mktemp -d)"
trap 'kill "$listener" 2>/dev/null || true; rm -rf "$work"' EXIT

git init -q --bare -b main "$work/origin.git"
git clone -q "$work/origin.git" "$work/ws" 2>/dev/null
mkdir -p "$work/ws/.github" "$work/temp/_github_home" "$work/temp/_github_workflow" \
  "$work/temp/_runner_file_commands"
printf 'version: 1\n' >"$work/ws/.github/agent-gate.yml"
git -C "$work/ws" -c user.name=b -c user.email=b@example.com add -A
git -C "$work/ws" -c user.name=b -c user.email=b@example.com commit -qm policy
git -C "$work/ws" push -q origin main
echo '{}' >"$work/temp/_github_workflow/event.json"

cat >"$work/listener.py" <<'PY'
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        pass
    def do_any(self):
        with open(sys.argv[1], "a") as f:
            f.write(f"{time.time_ns()}\n")
        body = b'{"message":"Bad credentials"}'
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = do_any
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$work/listener.py" "$work/hits" >"$work/port" &
listener=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port="$(cat "$work/port")"

# Variables go by name (`-e NAME`) with their values in the client's environment, as the
# runner passes them; `INPUT_API-URL` is not a shell name, so env(1) sets that one.
export INPUT_INSTRUCTION="measure the start" INPUT_TOKEN=ghp_bench \
  GITHUB_ACTIONS=true CI=true GITHUB_REPOSITORY=octo/bench GITHUB_RUN_ID=1 GITHUB_RUN_ATTEMPT=1 \
  GITHUB_JOB=bench GITHUB_WORKSPACE=/github/workspace RUNNER_TEMP=/github/runner_temp \
  HOME=/github/home GITHUB_EVENT_PATH=/github/workflow/event.json \
  GITHUB_OUTPUT=/github/file_commands/set_output GITHUB_STEP_SUMMARY=/github/file_commands/step_summary
times=()
for i in $(seq "$runs"); do
  : >"$work/temp/_runner_file_commands/set_output"
  : >"$work/temp/_runner_file_commands/step_summary"
  rm -f "$work/hits"
  start=$(date +%s%N)
  env "INPUT_API-URL=http://127.0.0.1:$port" docker run --rm --workdir /github/workspace \
    --network host \
    -e INPUT_INSTRUCTION -e INPUT_TOKEN -e INPUT_API-URL -e GITHUB_ACTIONS -e CI \
    -e GITHUB_REPOSITORY -e GITHUB_RUN_ID -e GITHUB_RUN_ATTEMPT -e GITHUB_JOB \
    -e GITHUB_WORKSPACE -e RUNNER_TEMP -e HOME -e GITHUB_EVENT_PATH -e GITHUB_OUTPUT \
    -e GITHUB_STEP_SUMMARY \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -v "$work/temp:/github/runner_temp" -v "$work/temp/_github_home:/github/home" \
    -v "$work/temp/_github_workflow:/github/workflow" \
    -v "$work/temp/_runner_file_commands:/github/file_commands" \
    -v "$work/ws:/github/workspace" -v "$work/origin.git:$work/origin.git" \
    "$image" run >/dev/null 2>&1 || true
  [ -s "$work/hits" ] || { echo "run $i: no API request arrived" >&2; exit 1; }
  first=$(head -1 "$work/hits")
  times+=($(( (first - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
size=$(docker image inspect "$image" --format '{{.Size}}')
echo "image $image: $((size / 1000000)) MB"
echo "docker run → first API request, $runs runs: median ${sorted[$((runs / 2))]} ms, min ${sorted[0]} ms, max ${sorted[$((runs - 1))]} ms"
