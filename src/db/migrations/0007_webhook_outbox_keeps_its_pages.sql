-- The outbox holds only what is still to send, so it drains to nothing whenever receivers keep up.
-- VACUUM would then cut its file to zero pages, and every statement planned while it is empty — the
-- generic plans of prepared statements are kept until the table's statistics next change — reads
-- it by sequential scan, which is free on an empty table and costly once the next burst arrives.
-- Keeping its pages (they are reused by the next inserts) keeps those plans on the indexes, and
-- spares each vacuum the exclusive lock that truncation takes.
ALTER TABLE "webhook_outbox" SET (vacuum_truncate = false);
