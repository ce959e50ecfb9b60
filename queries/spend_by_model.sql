-- Spend per model, from the costs the API reported (local reads at $0).
SELECT model, round(sum(cost), 6) AS spend_usd, count(*) AS priced_responses
FROM costs
WHERE getvariable('run_id') IS NULL OR run_id = getvariable('run_id')
GROUP BY model
ORDER BY spend_usd DESC;
