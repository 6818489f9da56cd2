# agent-gate container Action: a builder stage and a Debian slim runtime with the binary.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
# The image ships a stripped binary: no debug info, no symbol table.
ENV CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
# The dependencies are built in a layer of their own that depends on Cargo.toml and
# Cargo.lock alone: the manifest is copied without its target tables ([lib], [[bin]],
# [[test]], [[bench]], [[example]]) and a stub library and binary stand in for the sources,
# so a new target or a file the sources include never breaks or invalidates this step.
COPY Cargo.toml Cargo.lock ./
RUN awk '/^\[/ { skip = ($0 ~ /^\[\[?(lib|bin|test|bench|example)\]\]?[ \t]*$/) } !skip' \
      Cargo.toml > Cargo.deps.toml \
 && mv Cargo.deps.toml Cargo.toml \
 && mkdir src && touch src/lib.rs && echo 'fn main() {}' > src/main.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY . .
RUN cargo build --release --locked --bin agent-gate

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
