# syntax=docker/dockerfile:1
# The Nexus app image: the production build served by server.mjs on port 3000, as a non-root user, with the demo
# model built in. Migrations run when the app starts (on import of the server build), so a new image upgrades the
# database on its first start. docker-compose.yml runs it behind Caddy with PostgreSQL and MinIO.
#
#   docker build -t nexus-app .
#   docker run --rm -p 127.0.0.1:3000:3000 nexus-app          # embedded database in /var/lib/nexus (demo only)
#
# Operator commands are bundled into build/ops/ (no TypeScript runner in the final image), e.g.:
#   docker compose exec app node build/ops/user-create.mjs --role admin --email ops@hopital.example
#   docker compose exec app node build/ops/audit-verify.mjs

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: every dependency, the production build, the operator commands and the demo model ------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# onnxruntime-node would otherwise download CUDA libraries at install time; the CPU runtime ships in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    NPM_CONFIG_UPDATE_NOTIFIER=false
COPY package.json package-lock.json ./
# Patches applied to dependencies after install (patch-package; see patches/README.md).
COPY patches ./patches
# `npm install` with the lockfile, not `npm ci`: lockfiles written on the development machines lack some
# platform-specific optional packages, which `npm ci` refuses (shared/README.md).
RUN npm install --no-audit --no-fund --loglevel=error
COPY . .
RUN npm run build \
 && npx esbuild scripts/user-create.ts scripts/audit-verify.ts scripts/audit-archive.ts scripts/keys-rotate.ts \
      scripts/vault-sweep.ts scripts/db-migrate.ts \
      --bundle --platform=node --format=esm --target=node20 --packages=external \
      --outdir=build/ops --out-extension:.js=.mjs --log-level=warning \
 && npm run model:demo

# ---- production dependencies only ------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip \
    NPM_CONFIG_UPDATE_NOTIFIER=false
COPY package.json package-lock.json ./
# Patches applied to dependencies after install (patch-package; see patches/README.md).
COPY patches ./patches
RUN npm install --omit=dev --no-audit --no-fund --loglevel=error \
 && npm cache clean --force

# ---- runtime -----------------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# ORT_DISABLE_TELEMETRY: ONNX Runtime never reports to Microsoft (app/inference/offline.ts sets it in the app too).
ENV NODE_ENV=production \
    ORT_DISABLE_TELEMETRY=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/var/lib/nexus \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# A dedicated system user; the application files stay owned by root, so the process cannot change its own code.
# DATA_DIR is the only place it may write (the embedded database and generated secrets when nothing is
# configured; behind docker-compose.yml every secret comes from the environment and nothing is written there).
RUN groupadd --system --gid 10001 nexus \
 && useradd --system --uid 10001 --gid nexus --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin nexus \
 && mkdir -p /var/lib/nexus \
 && chown nexus:nexus /var/lib/nexus \
 && chmod 0700 /var/lib/nexus
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/build ./build
COPY --from=build /app/models ./models
COPY package.json server.mjs http-edge.mjs ./
COPY drizzle ./drizzle
USER nexus
EXPOSE 3000
# Liveness: /healthz answers 200 while the process serves requests (readiness, with database and storage, is /readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# server.mjs stops cleanly on SIGTERM (docker stop) and SIGINT.
CMD ["node", "server.mjs"]
