-- Success rate per model, over all runs.
SELECT r.model,
       count(*) AS finished,
       count(*) FILTER (WHERE o.outcome = 'saved') AS saved,
       round(count(*) FILTER (WHERE o.outcome = 'saved') / count(*), 4) AS success_rate
FROM results o JOIN runs r USING (run_id)
WHERE getvariable('run_id') IS NULL OR o.run_id = getvariable('run_id')
GROUP BY r.model
ORDER BY r.model;
