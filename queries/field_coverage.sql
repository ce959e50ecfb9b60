-- Share of saved specimens with a non-empty value, per Darwin Core field.
WITH saved AS (
    SELECT run_id, specimen_id, fields FROM results
    WHERE outcome = 'saved'
      AND (getvariable('run_id') IS NULL OR run_id = getvariable('run_id'))
), entries AS (
    SELECT unnest(map_entries(CAST(fields AS MAP(VARCHAR, JSON)))) AS entry
    FROM saved
)
SELECT entry.key AS term,
       count(*) FILTER (WHERE trim(coalesce(entry.value->>'value', '')) <> '') AS filled,
       (SELECT count(*) FROM saved) AS saved,
       round(
           count(*) FILTER (WHERE trim(coalesce(entry.value->>'value', '')) <> '')
           / (SELECT count(*) FROM saved),
           4
       ) AS coverage
FROM entries
GROUP BY term
ORDER BY filled DESC, term;
