# modelship: build with cargo on Debian, run on a distroless non-root image.
#   docker build -t modelship .
#   docker run --rm modelship run --help
FROM rust:1.89-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/render.rs \
 && cargo fetch --locked
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin modelship \
 && strip target/release/modelship

# glibc, libgcc and OpenSSL (git2's HTTPS and SSH transports), CA certificates, uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/modelship /usr/local/bin/modelship
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/modelship"]
CMD ["run", "--help"]
