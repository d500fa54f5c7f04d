# Production image: compiled JavaScript, production dependencies only (no embedded PostgreSQL: it is
# a development dependency, so DATABASE_URL is required), non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# patches/ before the install: `prepare` applies them (postgres.js, see README "Dependencies we patch").
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# The pruned, already patched dependencies (a second install would run `prepare` without patch-package).
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
USER node
EXPOSE 3000
# node is PID 1 (exec form, no shell in between), so `docker stop`'s SIGTERM reaches it: it stops
# accepting, finishes requests in flight and exits within SHUTDOWN_TIMEOUT_MS (default 10 s; give
# the container a longer stop timeout). It applies the migrations itself at start, under an
# advisory lock, so several replicas may start together.
CMD ["node", "dist/server.js"]
