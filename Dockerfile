# The explorer's browser files (React, GraphiQL, its explorer plugin), pinned by the lockfile.
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir /app
COPY --from=web /web/node_modules /app/web/node_modules
ENV MASH_DATA_DIR=/data MASH_WEB_DIR=/app/web
EXPOSE 8000
CMD ["mash-hub", "serve", "--host", "0.0.0.0", "--port", "8000"]
