-- Spend per key fingerprint, from the costs the API reported (local reads: "local").
SELECT coalesce(key_fp, 'local') AS key_fp, round(sum(cost), 6) AS spend_usd,
       count(*) AS priced_responses
FROM costs
WHERE getvariable('run_id') IS NULL OR run_id = getvariable('run_id')
GROUP BY 1
ORDER BY spend_usd DESC;
