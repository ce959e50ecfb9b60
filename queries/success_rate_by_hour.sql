-- Success rate per hour (UTC): how a run is going.
SELECT date_trunc('hour', finished_at) AS hour,
       count(*) AS finished,
       count(*) FILTER (WHERE outcome = 'saved') AS saved,
       round(count(*) FILTER (WHERE outcome = 'saved') / count(*), 4) AS success_rate
FROM results
WHERE getvariable('run_id') IS NULL OR run_id = getvariable('run_id')
GROUP BY hour
ORDER BY hour;
