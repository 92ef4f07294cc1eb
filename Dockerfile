# TESS images: one multi-stage build, two runnable targets.
#   docker build --target gateway       -t tess/gateway:0.1.0 .
#   docker build --target crypto-worker -t tess/crypto-worker:0.1.0 .
# The gateway image also runs the schema migrations: `node dist/scripts/migrate.js up`.
#
# Base image: Node 24 LTS on Debian 12 (bookworm) slim, the same release as package.json's devDependency
# `node` (a test keeps them equal), pinned by tag AND by the digest of its multi-arch manifest list, so a
# rebuild uses exactly the same OS and Node bits. To update, change both together.
# Docker Hub is out of reach where this pin was made: the digest is the multi-arch index of this tag as
# published in other projects' pinned Dockerfiles, not re-read from the registry. Check it before a
# release with `docker buildx imagetools inspect node:24.21.0-bookworm-slim` (the index "Digest:").
ARG NODE_IMAGE=node:24.21.0-bookworm-slim@sha256:2fe369e969550cde8e867afc3fe370b260140cab4a23d467074295b42163d553

# ---------------------------------------------------------------------------------------------------
# build: install every dependency, compile TypeScript to dist/, then drop the dev dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# npm 11 honours package.json "allowScripts": only argon2 and msgpackr-extract (prebuilt linux
# binaries, no compiler needed) and the dev-only `node` runtime (fetches its platform's binary; pruned
# below) may run install scripts. Pinned to the exact npm the lockfile was written with.
ARG NPM_VERSION=11.19.1
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false \
    SCARF_ANALYTICS=false
RUN npm install --global "npm@${NPM_VERSION}"
# Dependencies first: this layer is reused until package.json or package-lock.json changes.
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY apps ./apps
COPY libs ./libs
COPY scripts ./scripts
RUN npm run build \
 && npm prune --omit=dev \
 && rm -rf node_modules/.cache

# ---------------------------------------------------------------------------------------------------
# runtime: what both apps share. No compiler, no npm cache, no sources; code owned by root, read-only
# for the app user (uid/gid 10001, numeric so Kubernetes runAsNonRoot can verify it).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    DATA_DIR=/var/lib/tess \
    TEMP_DIR=/var/lib/tess-tmp \
    NPM_CONFIG_UPDATE_NOTIFIER=false
# State directories owned by the app user: Docker copies this ownership into a named volume the first
# time the volume is mounted there (DATA_DIR holds the local master key file, TEMP_DIR the uploads).
RUN groupadd --system --gid 10001 tess \
 && useradd --system --uid 10001 --gid tess --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin tess \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/tess \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/tess-tmp
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist

# ---------------------------------------------------------------------------------------------------
# crypto-worker: BullMQ consumer; its only HTTP surface is /healthz and /readyz on WORKER_HEALTH_PORT.
FROM runtime AS crypto-worker
# cipher.update() returns a fresh buffer per call; with glibc's default thresholds every one of them is
# an mmap with a page fault per 4 KiB. Raising the mmap and trim thresholds doubled AES-GCM throughput
# in the measurements behind docs (STACK notes: 868 -> 1919 MB/s in a read loop). Same values as
# scripts/runtime-env.mjs (npm start, npm run bench); a test keeps them equal.
# NODE_OPTIONS caps V8's young generation (scripts/runtime-env.mjs: a lower peak for the same CPU).
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456 \
    NODE_OPTIONS=--max-semi-space-size=16 \
    WORKER_HEALTH_PORT=3001
USER 10001:10001
EXPOSE 3001
# Slim images have no curl: Node's own fetch is the probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.WORKER_HEALTH_PORT||3001)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM lets active jobs finish for up to WORKER_SHUTDOWN_TIMEOUT, then hands them back to the queue.
STOPSIGNAL SIGTERM
CMD ["node", "dist/apps/crypto-worker/src/main.js"]

# ---------------------------------------------------------------------------------------------------
# gateway: HTTP app (pages, /api/v1, Socket.IO). It finds its views and static files by walking up from
# dist/ to the folder holding package.json and apps/, so they sit at /app/apps/gateway/{views,public}.
FROM runtime AS gateway
COPY --from=build /app/apps/gateway/views ./apps/gateway/views
COPY --from=build /app/apps/gateway/public ./apps/gateway/public
# Memory settings measured by `npm run bench` (scripts/runtime-env.mjs explains them; a test keeps the two equal).
ENV GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072:glibc.malloc.arena_max=2 \
    NODE_OPTIONS=--max-semi-space-size=8 \
    PORT=3000
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# The old-generation floor of scripts/runtime-env.mjs (GATEWAY_NODE_ARGS): Node refuses it in NODE_OPTIONS.
CMD ["node", "--initial-old-space-size=80", "dist/apps/gateway/src/main.js"]
