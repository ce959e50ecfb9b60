-- Attempts, retries, key rotations and provisioned keys per run.
SELECT run_id,
       count(*) FILTER (WHERE type IN ('request_sent', 'ocr_read')) AS attempts,
       count(*) FILTER (WHERE type = 'retry_scheduled') AS retries,
       count(*) FILTER (WHERE type = 'key_rotated') AS rotations,
       count(*) FILTER (WHERE type = 'key_provisioned') AS keys_provisioned,
       count(*) FILTER (WHERE type = 'auth_rejected') AS auth_rejections
FROM events
WHERE type IN ('run_started', 'request_sent', 'ocr_read', 'retry_scheduled',
               'key_rotated', 'key_provisioned', 'auth_rejected')
  AND (getvariable('run_id') IS NULL OR run_id = getvariable('run_id'))
GROUP BY run_id
HAVING count(*) FILTER (WHERE type = 'run_started') > 0
ORDER BY run_id;
