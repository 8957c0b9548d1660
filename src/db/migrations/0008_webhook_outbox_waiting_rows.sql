DROP INDEX "webhook_outbox_endpoint_due_idx";--> statement-breakpoint
DROP INDEX "webhook_outbox_leased_idx";--> statement-breakpoint
CREATE INDEX "webhook_outbox_waiting_idx" ON "webhook_outbox" USING btree ("endpoint_id","next_attempt_at") WHERE "webhook_outbox"."state" = 'pending' and "webhook_outbox"."lease_owner" is null;--> statement-breakpoint
CREATE INDEX "webhook_outbox_leased_idx" ON "webhook_outbox" USING btree ("endpoint_id","lease_expires_at") WHERE "webhook_outbox"."state" = 'pending' and "webhook_outbox"."lease_owner" is not null;