# `claude-code`: Claude Code (npm `@anthropic-ai/claude-code`). CLI_VERSION
# pins it; `bottle up --rebuild` fetches the newest when it is `latest`.
ARG CLI_VERSION=latest
RUN NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm install --global \
      --prefix /opt/agent --cache /tmp/npm-cache --no-fund --no-audit --loglevel=error \
      "@anthropic-ai/claude-code@${CLI_VERSION}" \
 && rm -rf /tmp/npm-cache
COPY agent-shim /usr/local/bin/claude
COPY --chown=agent:agent claude.json /home/agent/.claude.json
# Nothing but the API: no telemetry, error reports or self-updates (the
# bottle would refuse them anyway; this keeps them from being tried).
ENV DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
USER agent
WORKDIR /workspace
