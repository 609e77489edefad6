# `dev`: a Debian shell with git, curl, build tools and Python, for agents
# you install yourself.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential curl python3 python3-venv \
      openssh-client \
 && rm -rf /var/lib/apt/lists/*
USER agent
WORKDIR /workspace
