# One image recipe for the three services: docker build --build-arg SERVICE=gateway -t cxr-gateway .
FROM node:20-bookworm-slim
ARG SERVICE
RUN test -n "$SERVICE" || (echo "build with --build-arg SERVICE=gateway|inference|results" >&2; exit 1)
WORKDIR /app
ENV NODE_ENV=production ONNXRUNTIME_NODE_INSTALL=skip SERVICE=${SERVICE}
COPY package.json package-lock.json .npmrc tsconfig.base.json tsconfig.json ./
COPY libs libs
COPY services services
COPY infra/tools infra/tools
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
USER node
CMD ["sh", "-c", "exec node --import tsx services/$SERVICE/src/server.ts"]
