-- Response latency percentiles (ms) per run and model.
SELECT run_id, model,
       count(*) AS responses,
       round(quantile_cont(latency_ms, 0.5), 1) AS p50_ms,
       round(quantile_cont(latency_ms, 0.9), 1) AS p90_ms,
       round(quantile_cont(latency_ms, 0.99), 1) AS p99_ms,
       round(max(latency_ms), 1) AS max_ms
FROM requests
WHERE answered
  AND (getvariable('run_id') IS NULL OR run_id = getvariable('run_id'))
GROUP BY run_id, model
ORDER BY run_id, model;
