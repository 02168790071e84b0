# One image for every CMS process; the command picks which one (see docker-compose.yml).
FROM node:20-bookworm-slim AS ui
WORKDIR /src/gateway/ui
COPY gateway/ui/ ./
RUN if [ -f package.json ]; then npm ci --no-audit --no-fund && npm run build; else mkdir -p dist; fi

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY shared/ shared/
COPY services/ services/
COPY gateway/ gateway/
COPY --from=ui /src/gateway/ui/dist/ gateway/ui/dist/
RUN pip install -c constraints.txt . \
 && useradd --system --uid 10001 cms
USER cms
EXPOSE 8000
CMD ["cms", "serve", "gateway"]
