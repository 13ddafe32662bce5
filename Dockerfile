# Production images, one per service, each a target of this file:
#   docker build --target gateway -t cxr-classify/gateway:0.1.0 .
#   (likewise inference, results, and setup: the one-shot RabbitMQ accounts and topology)
# The build stage compiles the TypeScript (npm run build: one bundle per entry point in dist/);
# each image holds its service's bundle and only its production dependencies, installed from the
# lock file (results has no sharp and no ONNX Runtime), runs as uid 1000 with NODE_ENV=production,
# and reports healthy when GET /ready answers 200.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The CUDA add-on of onnxruntime-node downloads from outside the npm registry; the CPU build is in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY . .
RUN npm ci --no-audit --no-fund && npm run build

# Each service's production dependencies alone: npm ci of its workspace (which takes the
# workspace libraries' dependencies too). The @cxr/* links point at sources the bundles inline.
FROM build AS deps
RUN for ws in services/gateway services/inference services/results libs/broker; do \
      npm ci --omit=dev --no-audit --no-fund --workspace "$ws" && rm -rf node_modules/@cxr && \
      mkdir -p "/deps/${ws#*/}" && mv node_modules "/deps/${ws#*/}/"; \
    done

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# The node image's unprivileged user, by number so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# Healthy while GET /ready answers 200: on the gateway's HTTP port, on the workers' health port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||process.env.PORT)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "dist/server.js"]

FROM runtime AS gateway
COPY --from=deps /deps/gateway/node_modules node_modules
COPY --from=build /src/dist/gateway dist
ENV PORT=8080
EXPOSE 8080

FROM runtime AS inference
COPY --from=deps /deps/inference/node_modules node_modules
COPY --from=build /src/dist/inference dist
ENV HEALTH_PORT=8081
EXPOSE 8081

FROM runtime AS setup
COPY --from=deps /deps/broker/node_modules node_modules
COPY --from=build /src/dist/setup dist
HEALTHCHECK NONE
CMD ["sh", "-c", "node dist/provision-rabbitmq.js && node dist/declare-topology.js"]

# Last, so a plain `docker build .` makes the smallest image.
FROM runtime AS results
COPY --from=deps /deps/results/node_modules node_modules
COPY --from=build /src/dist/results dist
ENV HEALTH_PORT=8082
EXPOSE 8082
