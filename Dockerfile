# zerohttp serving /srv as a non-root user.
#   docker build -t zerohttp .
#   docker run --rm -p 8000:8000 -v "$PWD/examples/site:/srv:ro" zerohttp
# Docker Hub is unreachable on the project's build machines: pass a local base image with
#   docker build --build-arg PYTHON_IMAGE=<local debian+python image> -t zerohttp .
ARG PYTHON_IMAGE=python:3.12-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/zerohttp
COPY pyproject.toml README.md ./
COPY zerohttp ./zerohttp
RUN python3 -m pip install --no-compile . && rm -rf /opt/zerohttp
COPY examples/site /srv

RUN useradd --system --uid 10001 --no-create-home zerohttp
USER 10001
EXPOSE 8000
ENTRYPOINT ["zerohttp"]
CMD ["/srv", "--host", "0.0.0.0", "--port", "8000"]
