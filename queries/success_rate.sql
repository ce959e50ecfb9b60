-- Success rate per run: specimens finished, saved, failed.
SELECT run_id,
       count(*) AS finished,
       count(*) FILTER (WHERE outcome = 'saved') AS saved,
       count(*) FILTER (WHERE outcome = 'failed') AS failed,
       round(count(*) FILTER (WHERE outcome = 'saved') / count(*), 4) AS success_rate
FROM results
WHERE getvariable('run_id') IS NULL OR run_id = getvariable('run_id')
GROUP BY run_id
ORDER BY min(finished_at);
