# A small image of rrfeed: built in the Rust image, run from Debian's slim image as a non-root user.
#   docker build -t rrfeed .
#   docker run --rm rrfeed upload --mock /usr/share/rrfeed/customers.csv
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a change to the sources alone rebuilds only rrfeed.
COPY Cargo.toml Cargo.lock rust-toolchain.toml build.rs ./
RUN mkdir -p src benches examples \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/core.rs \
    && echo 'fn main() {}' > examples/gen_customers.rs \
    && echo 'fn main() {}' > examples/transfer_floor.rs \
    && cargo build --release --locked --bin rrfeed \
    && rm -rf src benches examples
COPY . .
RUN touch src/main.rs src/lib.rs build.rs \
    && cargo build --release --locked --bin rrfeed \
    && cp target/release/rrfeed /rrfeed

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 rrfeed \
    && useradd --uid 10001 --gid 10001 --home-dir /var/lib/rrfeed --create-home --shell /usr/sbin/nologin rrfeed
COPY --from=build /rrfeed /usr/local/bin/rrfeed
COPY examples/customers.csv /usr/share/rrfeed/customers.csv
USER 10001:10001
ENV RRFEED_STATE_DIR=/var/lib/rrfeed
WORKDIR /var/lib/rrfeed
ENTRYPOINT ["rrfeed"]
CMD ["--help"]
