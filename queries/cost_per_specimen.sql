-- Cost per saved specimen per run, counting what failed attempts cost too.
WITH spend AS (
    SELECT run_id, sum(cost) AS spend_usd FROM costs GROUP BY run_id
), saved AS (
    SELECT run_id, count(*) AS saved FROM results WHERE outcome = 'saved' GROUP BY run_id
)
SELECT r.run_id, r.model,
       round(coalesce(spend.spend_usd, 0), 6) AS spend_usd,
       coalesce(saved.saved, 0) AS saved,
       round(spend.spend_usd / nullif(saved.saved, 0), 6) AS cost_per_specimen_usd
FROM runs r
LEFT JOIN spend USING (run_id)
LEFT JOIN saved USING (run_id)
WHERE getvariable('run_id') IS NULL OR r.run_id = getvariable('run_id')
ORDER BY r.started_at;
