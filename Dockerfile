# syntax=docker/dockerfile:1
# Build stage: compiles TypeScript, better-sqlite3 (native) and plugvisor-spawner with the toolchain.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY routes ./routes
# plugvisor-spawner (C) is built here with the same toolchain; the runtime stage gets it in dist/.
COPY native ./native
RUN npm run build && npm prune --omit=dev

# Runtime stage: no compiler, non-root, only what runs.
FROM node:20-bookworm-slim
# tini as PID 1 reaps the zombies of orphaned plugin grandchildren (Node does not) and passes
# signals on, so docker stop reaches the daemon's graceful shutdown.
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# One of the daemon's launch settings (src/bin.cts says why): two malloc arenas, not one per thread.
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY schemas ./schemas
COPY config ./config
COPY examples ./examples
COPY ui ./ui
RUN mkdir -p /var/lib/plugvisor && chown node:node /var/lib/plugvisor
USER node
EXPOSE 7070
VOLUME ["/var/lib/plugvisor"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:7070/health/liveness').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Graceful stop of plugins takes up to their stop.timeoutMs: give docker stop at least that long
# (docker stop -t 30). The API needs a token: docker run -e PLUGVISOR_ADMIN_TOKEN=... (>= 16 chars).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=4", "--no-allocation-site-pretenuring", "--no-memory-reducer", "--heap-growing-percent=15", "dist/src/bin.cjs"]
CMD ["serve", "--config", "config/container.yaml"]
