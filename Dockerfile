# The code location image: the Dagster gRPC server for pipelines.definitions, and the image every
# K8sRunLauncher run and k8s_job_executor step runs in. Built from requirements.lock, so the image has
# exactly the versions the tests ran with (dagster 1.13.27, dagster-k8s 0.29.27, dagster-postgres 0.29.27).
#
#   docker build -t ghcr.io/example/resilience-fabric:0.1.0 .
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    QLRF_HOME=/opt/dagster/qlrf

WORKDIR /opt/dagster/app

# Dependencies first (a layer that changes only with the lock file), with the uv release the Makefile pins.
COPY requirements.lock pyproject.toml ./
RUN python -m pip install "uv==0.13.8" \
 && uv pip sync --system --compile-bytecode requirements.lock

# Then the project itself, without re-resolving anything; editable, so policy/ and the other data
# folders the code reads relative to the project root are where it looks.
COPY . .
RUN uv pip install --system --no-deps -e . \
 && mkdir -p "$DAGSTER_HOME" "$QLRF_HOME" \
 && useradd --system --uid 10001 --home-dir /opt/dagster dagster \
 && chown -R dagster "$DAGSTER_HOME" "$QLRF_HOME"
USER dagster

EXPOSE 3030
# The chart's user deployment passes its own dagsterApiGrpcArgs; this default serves the same location.
CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "3030", "--module-name", "pipelines.definitions", "--attribute", "defs"]
