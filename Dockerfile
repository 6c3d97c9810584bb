# hookpost's container image. Its build steps are deploy/install.sh, which CI runs in a clean
# directory on every change (.ci/run); the image itself is not built by CI (no container
# engine there). Build: docker build -t hookpost .   Run: see compose.yaml and docs/deploy.md.
FROM python:3.11-slim-bookworm AS build
COPY . /src
RUN /src/deploy/install.sh /opt/hookpost

FROM python:3.11-slim-bookworm
# A system user without a login or a home to write to; the SQLite default lives in /data.
RUN useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin hookpost \
    && mkdir /data && chown hookpost:hookpost /data
COPY --from=build /opt/hookpost /opt/hookpost
ENV PATH=/opt/hookpost/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOOKPOST_HOST=0.0.0.0 \
    HOOKPOST_PORT=8071 \
    HOOKPOST_DATABASE_URL=sqlite:////data/hookpost.db \
    HOOKPOST_HEALTHCHECK_URL=http://127.0.0.1:8071/api/v1/health
USER hookpost
WORKDIR /data
VOLUME /data
EXPOSE 8071
# 2xx from the API's health check (its database too); a worker container points
# HOOKPOST_HEALTHCHECK_URL at its metrics port instead (compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HOOKPOST_HEALTHCHECK_URL'], timeout=4)"]
CMD ["hookpost", "serve"]
