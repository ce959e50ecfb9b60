-- Spend per key fingerprint, from the costs the API reported.
SELECT key_fp, round(sum(cost), 6) AS spend_usd, count(*) AS priced_responses
FROM costs
WHERE key_fp IS NOT NULL  -- the local engine's reads use no key
  AND (getvariable('run_id') IS NULL OR run_id = getvariable('run_id'))
GROUP BY key_fp
ORDER BY spend_usd DESC;
