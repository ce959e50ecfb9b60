-- Failed attempts and failed specimens, by reason.
SELECT 'attempt' AS level, failure AS reason, count(*) AS count
FROM requests
WHERE failure IS NOT NULL
  AND (getvariable('run_id') IS NULL OR run_id = getvariable('run_id'))
GROUP BY failure
UNION ALL
SELECT 'specimen', reason, count(*)
FROM results
WHERE outcome = 'failed'
  AND (getvariable('run_id') IS NULL OR run_id = getvariable('run_id'))
GROUP BY reason
ORDER BY level, count DESC, reason;
