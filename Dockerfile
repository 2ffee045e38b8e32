# syntax=docker/dockerfile:1
# rebalancerd image: the daemon on SQLite (volume /var/lib/rebalancerd) or PostgreSQL
# (REBALANCERD_DATABASE_URL). Build: docker build -t rebalancerd .
# No secrets are baked in: broker keys come from the environment at run time
# (docker --env-file, compose env_file). See docs/deploying.md.
#
# tests/e2e/test_image_smoke.py repeats the install below in a fresh venv and runs
# deploy/entrypoint.sh, since CI has no Docker engine; keep them in step.

# ---------------------------------------------------------------- build
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rebalancerd/ rebalancerd/
COPY migrations/ migrations/
# The project's wheel and one for every dependency its metadata names: the
# runtime stage installs from these alone, without an index.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---------------------------------------------------------------- runtime
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="rebalancerd" \
      org.opencontainers.image.description="Exit-management daemon for equity-trading bots" \
      org.opencontainers.image.documentation="docs/deploying.md"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH="/opt/rebalancerd/bin:${PATH}" \
    REBALANCERD_CONFIG=/etc/rebalancerd/rebalancerd.toml \
    REBALANCERD_DATABASE_URL=sqlite:////var/lib/rebalancerd/rebalancerd.db

# The same layout as the systemd unit: a venv in /opt/rebalancerd.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/rebalancerd \
    && /opt/rebalancerd/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
        /wheels/rebalancerd-*.whl \
    && python -c "import zoneinfo; zoneinfo.ZoneInfo('America/New_York')"

# A fixed non-root uid/gid, so volume ownership survives image upgrades.
RUN groupadd --system --gid 10001 rebalancerd \
    && useradd --system --uid 10001 --gid rebalancerd --no-create-home \
        --home-dir /var/lib/rebalancerd --shell /usr/sbin/nologin rebalancerd \
    && install -d -o rebalancerd -g rebalancerd -m 0700 /var/lib/rebalancerd

# The example config (two accounts on the simulated broker) as a working default;
# mount your own over /etc/rebalancerd.
COPY config/rebalancerd.example.toml /etc/rebalancerd/rebalancerd.toml
COPY config/demo-portfolio.json config/demo-portfolio-shorgan.json /etc/rebalancerd/config/
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/rebalancerd-entrypoint

WORKDIR /var/lib/rebalancerd
VOLUME ["/var/lib/rebalancerd"]
USER 10001:10001

STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["rebalancerd", "healthcheck"]
ENTRYPOINT ["rebalancerd-entrypoint"]
CMD ["run"]
