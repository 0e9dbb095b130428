FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir /app
ENV MASH_DATA_DIR=/data
EXPOSE 8000
CMD ["mash-hub", "serve", "--host", "0.0.0.0", "--port", "8000"]
