-- Spend per day (UTC), from the costs the API reported (local reads at $0).
SELECT day, round(sum(cost), 6) AS spend_usd, count(*) AS priced_responses
FROM costs
WHERE getvariable('run_id') IS NULL OR run_id = getvariable('run_id')
GROUP BY day
ORDER BY day;
