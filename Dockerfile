# syntax=docker/dockerfile:1
# agent-gate container Action. Builder caches dependency builds separately from sources.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/it \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && echo 'fn main() {}' > benches/scope.rs && touch tests/it/main.rs \
 && cargo build --release --locked --bin agent-gate \
 && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin agent-gate

FROM debian:bookworm-slim
# Debian stable only ships security fixes for these packages; pinning exact versions would
# break the build at every point release, so the image takes the current ones.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git bash ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /src/target/release/agent-gate /usr/local/bin/agent-gate
# The runner mounts the workspace at /github/workspace and sets it as the working directory.
# Runs as root (container actions must); checks drop to an unprivileged uid.
ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/agent-gate"]
CMD ["run"]
