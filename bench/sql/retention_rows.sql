-- Old rows for the retention measurements (docs/decisions/0032-retention.md), generated in SQL:
-- :messages messages spread over :days days before now, one delivery (succeeded) and two
-- attempts each, one app and 10 endpoints. Ids are hookpost's (domain.ids): 48 bits of ms and
-- 80 bits of randomness as 22 base62 digits, so they sort by time as the store expects.
CREATE OR REPLACE FUNCTION pg_temp.hp_id(prefix text, ms bigint, salt bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  alphabet CONSTANT text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  v numeric := ms::numeric * 1208925819614629174706176 + salt;  -- ms << 80 | salt
  out text := '';
BEGIN
  FOR i IN 1..22 LOOP
    out := substr(alphabet, (mod(v, 62))::int + 1, 1) || out;
    v := div(v, 62);
  END LOOP;
  RETURN prefix || '_' || out;
END $$;

INSERT INTO applications (id, name, created_at, updated_at)
VALUES ('app_bench_retention', 'retention', 0, 0) ON CONFLICT DO NOTHING;
INSERT INTO endpoints (id, app_id, url, keys, created_at, updated_at)
SELECT 'ep_bench_retention_' || e, 'app_bench_retention', 'http://127.0.0.1:9/', '[]', 0, 0
FROM generate_series(0, 9) e ON CONFLICT DO NOTHING;

CREATE TEMP TABLE gen AS
SELECT g AS n,
       (extract(epoch FROM now()) * 1000)::bigint - (:days::bigint * 86400000 * g / :messages) AS at
FROM generate_series(1, :messages) g;
UPDATE gen SET at = at;  -- (keeps psql's variables out of the function calls below)
ALTER TABLE gen ADD COLUMN id text;
UPDATE gen SET id = pg_temp.hp_id('msg', at, n);

INSERT INTO messages (id, app_id, event_type, payload, created_at, payload_sha256,
                      payload_expires_at)
SELECT id, 'app_bench_retention', 'bench.old', convert_to('{"n":' || n || ',"pad":"'
       || repeat('x', 200) || '"}', 'UTF8'), at, md5(id), at + 90::bigint * 86400000
FROM gen;
INSERT INTO deliveries (app_id, message_id, endpoint_id, status, attempts, trigger, due_at,
                        next_attempt_at, updated_at)
SELECT 'app_bench_retention', id, 'ep_bench_retention_' || (n % 10), 2, 2, 0, NULL, NULL, at
FROM gen;
INSERT INTO attempts (id, app_id, message_id, endpoint_id, url, status, trigger,
                      response_status_code, response, duration_ms, created_at)
SELECT pg_temp.hp_id('atmpt', at + k, n * 2 + k), 'app_bench_retention', id,
       'ep_bench_retention_' || (n % 10), 'http://127.0.0.1:9/', CASE k WHEN 0 THEN 1 ELSE 0 END,
       0, CASE k WHEN 0 THEN 500 ELSE 200 END, repeat('r', 100), 12, at + k
FROM gen, generate_series(0, 1) k;
ANALYZE messages; ANALYZE deliveries; ANALYZE attempts;
