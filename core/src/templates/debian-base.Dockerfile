# Bottlebar agent templates share this start: a Debian image (BASE: an
# official `debian` image from your registry by default; the tests build one
# with debootstrap), the tools an agent works with, a non-root user `agent`
# (AGENT_UID) and /workspace as its working directory. `extra-roots.crt` is
# the bottle's `tls.extra_roots` (empty without them), trusted while
# building too, for networks that inspect TLS; it comes after the packages
# so a change of roots does not fetch them again.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}
ARG AGENT_UID=1000
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git less procps nodejs npm \
 && rm -rf /var/lib/apt/lists/*
COPY extra-roots.crt /usr/local/share/ca-certificates/bottlebar-extra-roots.crt
RUN update-ca-certificates >/dev/null 2>&1; \
    useradd --create-home --uid "${AGENT_UID}" --shell /bin/bash agent \
 && mkdir -p /workspace && chown agent:agent /workspace
