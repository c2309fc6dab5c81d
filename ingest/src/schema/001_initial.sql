-- Initial schema of the AccoReboot edge ingest (TimescaleDB Apache edition only).
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Every position ever acknowledged, once: the hypertable.
CREATE TABLE IF NOT EXISTS positions (
    device_id   text             NOT NULL,
    time        timestamptz      NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    alt         double precision,
    speed       double precision,
    heading     double precision,
    accuracy    double precision,
    satellites  smallint,
    battery     double precision,
    attributes  jsonb,
    received_at timestamptz      NOT NULL
);
SELECT create_hypertable('positions', by_range('time', INTERVAL '{{CHUNK_INTERVAL}}'), if_not_exists => TRUE);
-- A tracker that resends a point (QoS 1 redelivery, offline buffer flushed twice) must not
-- create a second row. Unique indexes on a hypertable must include the time column.
CREATE UNIQUE INDEX IF NOT EXISTS positions_device_time ON positions (device_id, time DESC);

-- Latest position per device: a plain table (PowerSync cannot replicate hypertables) that only
-- ever moves forward in time.
CREATE TABLE IF NOT EXISTS device_latest (
    device_id   text PRIMARY KEY,
    time        timestamptz      NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    alt         double precision,
    speed       double precision,
    heading     double precision,
    accuracy    double precision,
    satellites  smallint,
    battery     double precision,
    updated_at  timestamptz      NOT NULL DEFAULT now()
);

-- Messages (or single points) that failed validation: kept with the reason and the raw bytes.
CREATE TABLE IF NOT EXISTS rejects (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    device_id   text,
    topic       text        NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    payload     bytea       NOT NULL,
    wal_id      uuid        NOT NULL,
    wal_lsn     bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_received_at ON rejects (received_at);

-- Device registry (filled by `ingest device add`).
CREATE TABLE IF NOT EXISTS devices (
    device_id    text PRIMARY KEY,
    secret_hash  text        NOT NULL,
    enabled      boolean     NOT NULL DEFAULT true,
    kind         text        NOT NULL DEFAULT 'device' CHECK (kind IN ('device', 'service')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz
);

-- How far each write-ahead log has been written into this database. Updated in the same
-- transaction as the rows, so a crash between commit and checkpoint cannot duplicate.
CREATE TABLE IF NOT EXISTS ingest_checkpoints (
    wal_id     uuid PRIMARY KEY,
    lsn        bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
