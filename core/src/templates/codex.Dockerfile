# `codex`: the OpenAI Codex CLI (npm `@openai/codex`). CLI_VERSION pins it;
# `bottle up --rebuild` fetches the newest when it is `latest`.
ARG CLI_VERSION=latest
RUN NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm install --global \
      --prefix /opt/agent --cache /tmp/npm-cache --no-fund --no-audit --loglevel=error \
      "@openai/codex@${CLI_VERSION}" \
 && rm -rf /tmp/npm-cache
COPY agent-shim /usr/local/bin/codex
USER agent
WORKDIR /workspace
