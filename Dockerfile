# syntax=docker/dockerfile:1
# One image for the four services; docker-compose.yml picks the service with `command`.
#   docker build -t bsky-circles .
#   docker run --rm -e REDIS_URL=redis://host:6379 bsky-circles node services/firehose/dist/src/main.js
#   docker compose run --rm fart node packages/ops/dist/src/doctor-cli.js     the doctor (`pnpm run doctor`)
# Never built on the machines this was written on (no Docker daemon, no registry to pull the base from):
# packages/ops/test/image.test.ts checks this file and docker-compose.yml by parsing them.

# Pinned (the Node the project is tested with); a new version is a deliberate edit here.
ARG NODE_VERSION=26.12.1
ARG PNPM_VERSION=10.34.8

FROM node:${NODE_VERSION}-bookworm-slim AS base
ARG PNPM_VERSION
# corepack cannot verify current pnpm signatures (FIELD-NOTES §8): install the pinned pnpm with npm.
RUN npm install -g pnpm@${PNPM_VERSION}
ENV CI=true
WORKDIR /app

FROM base AS build
# The dev dependencies (the local PDS in tests) include better-sqlite3, which compiles when its prebuilt
# binary cannot be downloaded; the build stage is thrown away, so the compilers cost the image nothing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first, from the lockfile alone, so this layer is cached until the lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
RUN pnpm install --offline --frozen-lockfile
RUN pnpm exec tsc --build services/firehose services/indexer services/scheduler services/fart packages/ops
# Keep only what runs: the production dependencies of the four services, of the doctor (packages/ops) and of
# the packages they use (--filter-prod leaves out the test kit, TypeScript, vitest...); then drop what no
# process in the image imports.
RUN rm -rf node_modules packages/*/node_modules services/*/node_modules \
 && pnpm install --offline --frozen-lockfile --prod \
      --filter-prod "{./services/*}..." --filter-prod "{./packages/ops}..." \
 && rm -rf packages/testkit scripts packages/*/dist/test services/*/dist/test \
 && find packages services -name '*.tsbuildinfo' -delete

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# The PNG circles' text: resvg draws only fonts it finds, and the slim base has none. The API asks for
# DejaVu Sans (services/fart/src/render.ts), whose two files it hands resvg (or resvg scans /usr/share/fonts).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# The firehose's cursor checkpoint (a volume in docker-compose.yml): a new volume takes this owner.
RUN mkdir -p /state && chown node:node /state
USER node
EXPOSE 8080
# The services stop gracefully on SIGTERM (docker stop); compose gives them a grace period to drain.
# The API's GC flags, as ecosystem.config.cjs gives them (the image test checks the two agree).
CMD ["node", "--single-threaded-gc", "--max-semi-space-size=2", "services/fart/dist/src/main.js"]
