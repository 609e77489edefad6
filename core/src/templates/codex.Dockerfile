# `codex`: the OpenAI Codex CLI (npm `@openai/codex`). CLI_VERSION pins it;
# `bottle up --rebuild` fetches the newest when it is `latest`.
ARG CLI_VERSION=latest
RUN npm install --global --prefix /opt/agent --no-fund --no-audit --loglevel=error \
      "@openai/codex@${CLI_VERSION}"
COPY agent-shim /usr/local/bin/codex
USER agent
WORKDIR /workspace
