# zerohttp serving /srv on port 8000 as a non-root user, configured by ZEROHTTP_* variables.
#
#   docker build -t zerohttp .
#   docker run --rm -p 8000:8000 -v "$PWD/examples/site:/srv:ro" zerohttp
#   docker run --rm -p 8080:8080 -e ZEROHTTP_PORT=8080 -e ZEROHTTP_ACCESS_LOG=json zerohttp
#   docker run --rm -p 8000:8000 zerohttp --autoindex      # arguments are zerohttp's flags
#
# Every flag has a ZEROHTTP_<FLAG> variable (zerohttp --help lists them); a flag given as an
# argument wins over the variable. Docker Hub is unreachable on the project's build machines:
# pass a local base image there (see ../shared/tools/docker-base.sh):
#   docker build --network host --build-arg PYTHON_IMAGE=zerohttp-local/python:bookworm -t zerohttp .
ARG PYTHON_IMAGE=python:3.12-slim

# --- build: a virtual environment without pip, bytecode compiled (the root file system may
#     be read-only at run time, and every health check starts a Python) ---------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv --without-pip /opt/zerohttp
WORKDIR /src
COPY pyproject.toml README.md ./
COPY zerohttp ./zerohttp
RUN python3 -m pip --python /opt/zerohttp/bin/python install . \
    && site="$(/opt/zerohttp/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && find /opt/zerohttp -name '*.dist-info' -prune -o -name 'tests' -type d -prune -exec rm -rf {} + \
    && /opt/zerohttp/bin/python -m compileall -q "$site/zerohttp"

# --- run ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin zerohttp
COPY --from=build /opt/zerohttp /opt/zerohttp
COPY examples/site /srv

# ZEROHTTP_TIMEOUT_GRACEFUL_SHUTDOWN stays under `docker stop`'s 10 s, so a stalled download
# cannot turn a clean stop into a SIGKILL. ZEROHTTP_HEALTH_PATH: /healthz answers 200 ok
# whatever /srv holds (a folder without index.html is still healthy), and is never logged.
ENV PATH=/opt/zerohttp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ZEROHTTP_HOST=0.0.0.0 \
    ZEROHTTP_PORT=8000 \
    ZEROHTTP_ROOT=/srv \
    ZEROHTTP_TIMEOUT_GRACEFUL_SHUTDOWN=8 \
    ZEROHTTP_HEALTH_PATH=/healthz

USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Shell form, so the variables are the running container's: the port, the health path and
# TLS (https when ZEROHTTP_SSL_CERTFILE is set; --check does not verify the certificate).
# --check exits 0 on 2xx/3xx, 1 otherwise. With ZEROHTTP_HEALTH_PATH emptied (health path
# off) it fetches / instead, which then needs an index.html in /srv (or --autoindex).
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
    CMD zerohttp --check \
        "http${ZEROHTTP_SSL_CERTFILE:+s}://127.0.0.1:${ZEROHTTP_PORT:-8000}${ZEROHTTP_HEALTH_PATH:-/}" \
        || exit 1
# Exec form: zerohttp is PID 1 and gets SIGTERM itself (graceful drain, exit status 0).
ENTRYPOINT ["zerohttp"]
CMD []
