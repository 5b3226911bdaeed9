# relay in a container: the README's install, then `relay serve`.
# Inside a container 127.0.0.1 is unreachable from outside, so the listeners bind all addresses;
# mount a config (RELAY_* variables override it) that sets [smtp] trusted_networks or users.
FROM debian:bookworm-slim
WORKDIR /opt/relay
COPY . .
RUN ./scripts/install
ENV RELAY_SMTP__LISTEN=0.0.0.0:2525 \
    RELAY_HTTP__LISTEN=0.0.0.0:8025 \
    RELAY_STATE_DIR=/var/lib/relay
VOLUME /var/lib/relay
EXPOSE 2525 2526 8025
ENTRYPOINT [".venv/bin/relay"]
CMD ["serve"]
