# The CQRS backend image: one image, three services (the Deployments pass `serve api|submitter|projector`).
# Build from the repository root:  docker build -f k8s/images/backend.Dockerfile -t gx-backend:0.1.0 .
FROM python:3.11-slim
WORKDIR /opt/gxlib
# gxlib's package set includes the chaincode's packages (pyproject: where = [".", "chaincode"]).
COPY pyproject.toml README.md ./
COPY gxlib ./gxlib
COPY chaincode/gxshim ./chaincode/gxshim
COPY chaincode/gxchaincode ./chaincode/gxchaincode
RUN pip install --no-cache-dir . && rm -rf /root/.cache
RUN useradd --uid 10001 --no-create-home gx
USER 10001
# Settings come from the environment (GX_BACKEND_*: ConfigMap backend-settings, Secrets backend-secrets and,
# for the API only, backend-api-tokens).
ENV PYTHONUNBUFFERED=1 \
    GX_BACKEND_API_HOST=0.0.0.0 \
    GX_BACKEND_METRICS_HOST=0.0.0.0
EXPOSE 8080 9101 9102
ENTRYPOINT ["gx"]
CMD ["serve", "api"]
